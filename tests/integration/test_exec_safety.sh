#!/bin/bash
# A `command` executor's program on a site (docs/jobs.md, "The command executor"): it gets only
# the documented environment, stdin from /dev/null and no descriptor beyond 0-2 (the site is
# started holding an extra one, fd 9, without close-on-exec), runs in a process group of its
# own, and that whole group (a child that ignores SIGTERM included) is gone 2 s after
# abort_job, after the job's end and after the site's SIGTERM. The weight a site reports is
# bounded: a program reporting 10^6 steps counts 1 (a command job without
# workflow.max_site_weight) or max_site_weight. In the ASan build no sanitizer report may
# appear in a site's log (the abort-during-training scenario was a use-after-free).
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
command -v python3 >/dev/null 2>&1 || { echo "skipped: no python3"; exit 77; }
command -v pgrep >/dev/null 2>&1 || { echo "skipped: no pgrep"; exit 77; }

export CFL_HEARTBEAT_S=1 CFL_DEAD_TIMEOUT_S=6 CFL_LOGIN_TIMEOUT_S=5
MARK="cfl-exec-marker-$$-$RANDOM$RANDOM"
# The interpreter itself: a `python3` on PATH may be a wrapper script (pyenv's shims) that
# adds variables of its own to the environment the test checks.
PY=$(python3 -c 'import sys; print(sys.executable)')
# Whatever happens (a failed check, a timeout), nothing of the probe outlives the test.
# Only a pid whose command line still holds the marker: the number may have been reused.
kill_probes() {
	local r p
	for r in "$T"/rec-*.json; do
		[ -s "$r" ] || continue
		for p in $("$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d["pid"], d["child"])' "$r"); do
			{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q -- "$MARK" &&
				kill -KILL "$p"
		done
	done
}
trap 'kill_probes; cleanup' EXIT

project_yml ex.yml ex mtls "site-1 site-2" "$PROJECT_ADMIN"
provision_or_exit ex.yml localhost

# The job's program. probe.py MODE RECORD MARKER GLOBAL OUTPUT:
#   sleep    records itself, starts a child (same group, ignores SIGTERM), sleeps
#   leave    the same, then writes its model and exits, the child left running
#   weights  writes a model of 1.0s (site index 0, 1 step) or 10.0s (index 1, 10^6 steps)
cat >probe.py <<'PY'
import json, os, shutil, signal, struct, subprocess, sys, time

mode, record, marker, glob, out = sys.argv[1:6]

def save(path, value):
    raw = open(glob, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    count = (len(raw) - 8 - n) // 4
    with open(path, "wb") as f:
        f.write(raw[:8 + n] + struct.pack("<%df" % count, *([value] * count)))

if mode == "weights":
    first = os.environ["CFL_SITE_INDEX"] == "0"
    save(out, 1.0 if first else 10.0)
    with open(out + ".json", "w") as f:
        json.dump({"steps": 1 if first else 1000000, "loss": 1.0 if first else 10.0}, f)
    sys.exit(0)

fds = []
for name in os.listdir("/proc/self/fd"):
    try:
        os.readlink("/proc/self/fd/" + name)  # the listing's own descriptor is closed by now
        fds.append(int(name))
    except OSError:
        pass
child = subprocess.Popen([sys.executable, "-c",
                          "import signal, time\n"
                          "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                          "time.sleep(1000)", marker + "-child"])
rec = {"pid": os.getpid(), "pgid": os.getpgid(0), "child": child.pid,
       "child_pgid": os.getpgid(child.pid), "env": dict(os.environ),
       "stdin": os.readlink("/proc/self/fd/0"), "fds": sorted(fds)}
with open(record + ".tmp", "w") as f:
    json.dump(rec, f)
os.rename(record + ".tmp", record)
print("probe: started as", os.getpid(), flush=True)
if mode == "leave":
    shutil.copyfile(glob, out)
    sys.exit(0)
time.sleep(1000)
PY

# job NAME MODE MIN_CLIENTS SITES [WORKFLOW_EXTRA]: a one-round command job running probe.py.
job() {
	mkdir -p "$1"
	cp "$CFL_SRC/examples/jobs/external-python/initial.safetensors" "$1/"
	cat >"$1/config.json" <<JSON
{"workflow": {"name": "fedavg", "num_rounds": 1, "min_clients": $3,
              "round_timeout_s": 300 ${5:-}},
 "executor": {"type": "command",
              "command": ["$PY", "$T/probe.py", "$2", "$T/rec-$1.json", "$MARK"],
              "initial_model": "initial.safetensors"},
 "sites": [$4]}
JSON
}

wait_file() { # wait_file FILE SECONDS
	local i=0
	while [ ! -s "$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ -s "$1" ]
}
no_sanitizer() { ! grep -Eq "ERROR: (Address|Leak)Sanitizer|runtime error:" "$1"; }

# A site holds fd 9 open without close-on-exec (as a careless parent would leave it) and has
# a secret in its environment: neither may reach a job's program.
start_site() { # start_site NAME LOG; sets LAST_PID
	start_bg "$2" env CFL_TEST_SECRET=hunter2 LANG=C.UTF-8 TZ=UTC \
		CFL_DATA_DIR="$CFL_SRC/data" CFL_DIGITS="$CFL_SRC/data/digits.csv.gz" \
		bash -c 'exec 9>>"$0"; exec "$@"' "$T/fd9-$1" \
		"$CFL_BIN" client "$P/$1" --server ":$FED_PORT"
	wait_log "$2" "logged in" 20 || fail "$1 did not log in: $(tail -n 3 "$2")"
}

start_server "$T/server.log" "$P/localhost" || { finish; exit 1; }
SPID=$LAST_PID
port=$FED_PORT
start_site site-1 "$T/site-1.log"
S1=$LAST_PID
start_site site-2 "$T/site-2.log"
S2=$LAST_PID

# --- abort_job during training ------------------------------------------------------------------
job abort sleep 1 '"site-1"'
id=$(submit abort)
check "abort: the job is accepted ($id)" test -n "$id"
check "abort: the program started and recorded itself" wait_file "$T/rec-abort.json" 60
R="$T/rec-abort.json"
# The environment: the documented variables the site has, and the task's; nothing else.
env -0 >"$T/test.env" # this shell's own (a python3 wrapper could change the checker's)
check "abort: the environment is exactly the documented one ($(js 'sorted(d["env"])' <"$R" | tr -d '"[] '))" \
	"$PY" - "$R" "$CFL_SRC" "$T/test.env" <<'PY'
import json, sys
d, src = json.load(open(sys.argv[1])), sys.argv[2]
mine = dict(v.split("=", 1) for v in open(sys.argv[3]).read().split("\0") if "=" in v)
kept = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "CFL_DATA_DIR", "CFL_DIGITS"]
site = dict(mine, LANG="C.UTF-8", TZ="UTC")  # as start_site starts the site
want = {k: site[k] for k in kept if k in site}
want.update(CFL_DATA_DIR=src + "/data", CFL_DIGITS=src + "/data/digits.csv.gz",
            CFL_SITE="site-1", CFL_ROUND="1", CFL_SITE_INDEX="0", CFL_SITE_COUNT="1")
sys.exit(0 if d["env"] == want else 1)
PY
check "abort: the site's secret is not in it" sh -c "! grep -q hunter2 '$R'"
check "abort: stdin is /dev/null ($(js 'd["stdin"]' <"$R"))" test "$(js 'd["stdin"]' <"$R")" = /dev/null
check "abort: no descriptor beyond 0-2 ($(js 'd["fds"]' <"$R"))" test "$(js 'd["fds"]' <"$R")" = "[0, 1, 2]"
own_group() {
	[ "$(js 'd["pid"] == d["pgid"] == d["child_pgid"]' <"$R")" = True ] &&
		[ "$(js 'd["pgid"]' <"$R")" != "$(ps -o pgid= "$S1" | tr -d ' ')" ]
}
check "abort: the program leads a process group of its own, its child in it" own_group
check "abort: its output is in the site's log under the job id" \
	wait_log "$T/site-1.log" "job $id round 1: probe: started as" 10
check "abort: the program and its child run ($(strays))" test "$(pgrep -f -- "$MARK" | wc -l)" -ge 2
out=$(adm "abort_job $id")
sleep 2
check "abort: abort_job answers ($out)" sh -c "echo '$out' | grep -q aborted"
check "abort: no process of the job 2 s after abort_job ($(strays))" no_strays
check "abort: the site ended the group" grep -q "job $id round 1: ending process group" "$T/site-1.log"
check "abort: the job is FINISHED:ABORTED" wait_status "$id" "FINISHED:ABORTED" 20
# The abort while the worker thread runs the program was a use-after-free (ASan: run_command).
bad=$(grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T/site-1.log" | head -n 1)
check "abort: no sanitizer report in site-1's log (${bad:-none})" test -z "$bad"
if ! kill -0 "$S1" 2>/dev/null; then
	fail "abort: site-1 is gone: $(tail -n 3 "$T/site-1.log")"
	finish
	exit 1
fi

# --- job end: the program leaves a child behind and exits ---------------------------------------
job leave leave 1 '"site-1"'
id=$(submit leave)
check "end: the job is accepted ($id)" test -n "$id"
check "end: the job completes" wait_status "$id" "FINISHED:COMPLETED" 90
sleep 2
check "end: no process of the job 2 s after its end ($(strays))" no_strays
check "end: the site ended what the program left behind" \
	grep -q "job $id round 1: ending process group [0-9]* (left behind by the program)" "$T/site-1.log"

# --- the weight a site reports ------------------------------------------------------------------
# site-1 (index 0) sends 1.0s with 1 step, site-2 (index 1) 10.0s claiming 10^6 steps.
model_values() { # the distinct values of job $1's global model
	python3 - "$P/localhost/jobs/$1/model.safetensors" <<'PY'
import struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
vals = struct.unpack("<%df" % ((len(raw) - 8 - n) // 4), raw[8 + n:])
print(" ".join(str(v) for v in sorted(set(vals))))
PY
}
job equal weights 2 '"site-1", "site-2"'
id=$(submit equal)
check "weights: the job is accepted ($id)" test -n "$id"
check "weights: the job completes" wait_status "$id" "FINISHED:COMPLETED" 90
v=$(model_values "$id")
check "weights: without max_site_weight a command job's sites count 1 each: model = 5.5 ($v)" test "$v" = 5.5
check "weights: the clamp is logged" \
	grep -q "job $id round 1: site-2 reported 1000000 steps; counted as 1 (max_site_weight)" "$T/server.log"
job capped weights 2 '"site-1", "site-2"' ', "max_site_weight": 3'
id=$(submit capped)
check "weights: max_site_weight 3: the job completes ($id)" wait_status "$id" "FINISHED:COMPLETED" 90
v=$(model_values "$id")
check "weights: site-2 counts 3: model = (1 + 3 * 10) / 4 = 7.75 ($v)" test "$v" = 7.75
check "weights: the clamp is logged with the cap" \
	grep -q "job $id round 1: site-2 reported 1000000 steps; counted as 3 (max_site_weight)" "$T/server.log"
check "weights: site-1's honest report is not logged" sh -c "! grep -q 'site-1 reported' '$T/server.log'"

# --- the site stops (SIGTERM) during training ---------------------------------------------------
rm -f "$T/rec-stop.json"
job stop sleep 1 '"site-1"'
id=$(submit stop)
check "stop: the job is accepted ($id)" test -n "$id"
check "stop: the program started" wait_file "$T/rec-stop.json" 60
t0=$(date +%s.%N)
stop_check "stop: site-1 during training" "$S1"
left=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { d = 2 - (b - a); print (d > 0 ? d : 0) }')
sleep "$left"
check "stop: no process of the job 2 s after the site's SIGTERM ($(strays))" no_strays
adm "abort_job $id" >/dev/null

stop_check "site-2" "$S2"
stop_check "the server" "$SPID"
for f in site-1 site-2 server; do
	bad=$(grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T/$f.log" | head -n 1)
	check "no sanitizer report in the $f log (${bad:-none})" test -z "$bad"
done
finish
