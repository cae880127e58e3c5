#!/bin/bash
# Site sovereignty (SPEC §10, docs/security.md): each site decides what runs on it and what
# leaves it. Two orgs: the server and site-a in org a, site-b in org b; admins: a project_admin,
# a lead of each org, a member. A command job (it brings its own code: byoc) leaves a marker per
# site it ran on.
#  - NVFlare's default policy: lead@a's command job runs on both sites;
#  - site-b's policy grants byoc to a lead only o:site (reloaded on SIGHUP): the same job runs
#    on site-a only, site-b refuses it naming the right and the rule, nothing of it ran there;
#    lead@b's job still runs on site-b;
#  - privacy: ExcludeVars on linear.bias at both sites keeps that tensor of the global model
#    bit for bit while the weights move; a job naming a scope no site defines is refused;
#  - a malformed policy stops a site at start, naming the file and line.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

export CFL_HEARTBEAT_S=1 CFL_DEAD_TIMEOUT_S=6 CFL_LOGIN_TIMEOUT_S=5
export CFL_DATA_DIR="$CFL_SRC/data" CFL_DIGITS="$CFL_SRC/data/digits.csv.gz"
PY=$(command -v python3) || { echo "SKIP: no python3"; exit 77; }

two_org_project sov.yml sov
provision_or_exit sov.yml localhost

ADMIN=admin@a.org
wait_done() { # id: waits (120 s at most) until the job is finished; prints its status
	local i=0 st=""
	while [ $i -lt 480 ]; do
		st=$(job_json "$1" | js 'd["status"]')
		case "$st" in FINISHED*) break ;; esac
		sleep 0.25
		i=$((i + 1))
	done
	echo "$st"
}

declare -A SITE_PID
start_site() { # name: starts it and waits for its login
	start_bg "$T/$1.log" "$CFL_BIN" client "$P/$1" --server ":$port"
	SITE_PID[$1]=$LAST_PID
	wait_log "$T/$1.log" "logged in" 20
}

# A command job: the example's Python trainer behind a wrapper that leaves a marker named after
# the site in MARKS/<tag>/ (the program's environment holds CFL_SITE, nothing of ours).
command_job() { # folder tag
	mkdir -p "$1" "$T/marks/$2"
	cp "$CFL_SRC/examples/jobs/external-python/"{train.py,initial.safetensors,meta.json} "$1/"
	cat >"$1/mark.sh" <<'SH'
#!/bin/sh
dir=$1
shift
: >"$dir/$CFL_SITE"
exec python3 train.py "$@"
SH
	cat >"$1/config.json" <<JSON
{"workflow": {"name": "fedavg", "num_rounds": 1, "min_clients": 1, "round_timeout_s": 120},
 "executor": {"type": "command", "command": ["sh", "mark.sh", "$T/marks/$2"],
              "initial_model": "initial.safetensors"},
 "sites": ["@ALL"]}
JSON
}

start_server "$T/server.log" "$P/localhost" || { finish; exit 1; }
SERVER_PID=$LAST_PID
port=$FED_PORT
check "site-a logs in" start_site site-a
check "site-b logs in" start_site site-b

# --- 1. NVFlare's default policy: a lead's command job runs everywhere ---------------------------
command_job job1 run1
id=$(submit_as lead@a.org "$T/job1")
st=$(wait_done "$id")
check "default policy: lead@a's command job completes ($st)" test "$st" = FINISHED:COMPLETED
check "it ran on site-a" test -e "$T/marks/run1/site-a"
check "it ran on site-b" test -e "$T/marks/run1/site-b"

# --- 2. site-b grants byoc to leads of its own org only --------------------------------------------
sed 's/"byoc": "any"/"byoc": "o:site"/' "$P/site-b/local/authorization.json.default" \
	>"$P/site-b/local/authorization.json"
check "site-b's policy differs from the default only in the lead's byoc" \
	test "$(diff "$P/site-b/local/authorization.json.default" "$P/site-b/local/authorization.json" | grep -c '^[<>]')" -eq 2
kill -HUP "${SITE_PID[site-b]}"
check "site-b reloads its policy on SIGHUP" wait_log "$T/site-b.log" "SIGHUP: site policy reloaded" 10
command_job job2 run2
id=$(submit_as lead@a.org "$T/job2")
st=$(wait_done "$id")
j=$(job_json "$id")
why=$(echo "$j" | js 'd["sites"]["site-b"]["reason"]')
check "the job goes on with site-a ($st)" test "$st" = FINISHED:COMPLETED
check "site-b's refusal is reported: $why" \
	test "$why" = "site-b: byoc not granted to lead@a.org (lead: o:site)"
check "list_jobs shows site-b refused, site-a accepted" \
	test "$(echo "$j" | js 'd["sites"]["site-b"]["state"] + " " + d["sites"]["site-a"]["state"]')" = "refused accepted"
check "the console's table names the refusal" \
	sh -c "timeout 30 '$CFL_BIN' admin '$P/admin@a.org' --server ':$port' --cmd 'list_jobs $id' | grep -q 'site-b .*refused .*byoc not granted to lead@a.org (lead: o:site)'"
check "it ran on site-a" test -e "$T/marks/run2/site-a"
check "nothing of it ran on site-b (no marker)" test ! -e "$T/marks/run2/site-b"
check "site-b unpacked nothing of it" test ! -e "$P/site-b/jobs/$id"
check "site-b logged why" grep -q "job $id refused: site-b: byoc not granted to lead@a.org" "$T/site-b.log"
command_job job3 run3
id=$(submit_as lead@b.org "$T/job3")
st=$(wait_done "$id")
check "lead@b's command job runs on site-b, its own org ($st)" \
	sh -c "test '$st' = FINISHED:COMPLETED && test -e '$T/marks/run3/site-b'"

# --- 3. privacy: ExcludeVars at both sites; a scope nobody defines -----------------------------
for s in site-a site-b; do
	cat >"$P/$s/local/privacy.json" <<'JSON'
{"scopes": [{"name": "private",
             "task_result_filters": [{"name": "nvflare.app_common.filters.exclude_vars.ExcludeVars",
                                      "args": {"exclude_vars": ["linear.bias"]}}]},
            {"name": "broken", "task_result_filters": [{"name": "NoSuchFilter"}]}],
 "default_scope": "private"}
JSON
	kill -HUP "${SITE_PID[$s]}"
done
check "both sites reload their privacy policy" sh -c "
	for i in \$(seq 50); do
		[ \$(grep -c 'SIGHUP: site policy reloaded' '$T/site-a.log') -ge 1 ] &&
		[ \$(grep -c 'SIGHUP: site policy reloaded' '$T/site-b.log') -ge 2 ] && exit 0
		sleep 0.1
	done; exit 1"
mkdir -p priv
cp "$CFL_SRC/examples/jobs/external-python/"{train.py,initial.safetensors,meta.json} priv/
sed 's/"num_rounds": 3/"num_rounds": 2/' "$CFL_SRC/examples/jobs/external-python/config.json" \
	>priv/config.json
id=$(submit_as admin@a.org "$T/priv")
st=$(wait_done "$id")
check "the job under ExcludeVars completes ($st)" test "$st" = FINISHED:COMPLETED
adm_as admin@a.org "download_job $id" >/dev/null
final="$P/admin@a.org/transfer/$id/model.safetensors"
same() { # the raw bytes of tensor $3 in files $1 and $2 are equal: prints 1 or 0
	"$PY" - "$1" "$2" "$3" <<'PY'
import json, struct, sys
def tensor(path, name):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    a, b = h[name]["data_offsets"]
    return raw[8 + n + a:8 + n + b]
print(int(tensor(sys.argv[1], sys.argv[3]) == tensor(sys.argv[2], sys.argv[3])))
PY
}
check "linear.bias of the global model is the initial one, bit for bit" \
	test "$(same "$T/priv/initial.safetensors" "$final" linear.bias)" = 1
check "linear.weight changed" test "$(same "$T/priv/initial.safetensors" "$final" linear.weight)" = 0
mkdir -p noscope
cp priv/* noscope/
printf '{"name": "noscope", "scope": "nosuch"}\n' >noscope/meta.json
id=$(submit_as admin@a.org "$T/noscope")
st=$(wait_done "$id")
err=$(job_json "$id" | js 'd["error"]')
check "a job with a scope no site defines is refused ($st): $err" \
	sh -c "test '$st' = FINISHED:EXECUTION_EXCEPTION && echo \"\$1\" | grep -q \"site-[ab]: scope 'nosuch' is not defined by this site\"" _ "$err"

printf '{"name": "broken", "scope": "broken"}\n' >noscope/meta.json
id=$(submit_as admin@a.org "$T/noscope")
st=$(wait_done "$id")
err=$(job_json "$id" | js 'd["error"]')
check "a job in a scope whose filter is unknown is refused, the other scopes still work ($st): $err" \
	sh -c "test '$st' = FINISHED:EXECUTION_EXCEPTION && echo \"\$1\" | grep -q 'site-[ab]: .*NoSuchFilter'" _ "$err"

# --- 4. a malformed policy stops a site at start -------------------------------------------------
stop_check "site-b" "${SITE_PID[site-b]}"
printf '{"format_version": "1.0",\n "permissions": {"lead": {"byoc": "sometimes"}}}\n' \
	>"$P/site-b/local/authorization.json"
out=$(timeout 20 "$CFL_BIN" client "$P/site-b" --server ":$port" 2>&1)
rc=$?
check "site-b with a malformed policy exits 1 (exit $rc)" test $rc -eq 1
check "and says which file, line and why: $(echo "$out" | tail -n 1)" \
	sh -c "echo \"\$1\" | grep -q 'authorization.json: line 2: '" _ "$out"

stop_check "site-a" "${SITE_PID[site-a]}"
stop_check "the server" "$SERVER_PID"
bad=$(grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T"/*.log 2>/dev/null | tr '\n' ' ')
check "no sanitizer report in any log (${bad:-none})" test -z "$bad"
finish
