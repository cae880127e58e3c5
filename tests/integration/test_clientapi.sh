#!/bin/bash
# The client_api executor (docs/jobs.md, "The client_api executor") with the real cfl.client
# package (python/cfl) and numpy: one script per job and site, kept across rounds. The
# numpy example and a job of exact arithmetic give exactly the global model expected after
# their rounds (FULL and DIFF results, with workflow.result weights and diff, and the initial
# weights from a site); a script that crashes in round 2, one that never sends, one that sends
# a tensor of the wrong shape and one that sends garbage each fail only their site's round,
# with the reason in list_jobs --json; metrics reach list_jobs and metrics.csv; no process of
# a script outlives its job, an abort or its site.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
command -v pgrep >/dev/null 2>&1 || { echo "skipped: no pgrep"; exit 77; }
PY=""
for c in /usr/bin/python3 python3; do
	if "$c" -c 'import numpy' >/dev/null 2>&1; then
		PY=$("$c" -c 'import sys; print(sys.executable)')
		break
	fi
done
[ -n "$PY" ] || { echo "skipped: no python3 with numpy"; exit 77; }
[ -f "$CFL_SRC/python/cfl/client/__init__.py" ] || { echo "skipped: no python/cfl/client"; exit 77; }
D="$CFL_SRC/tests/integration/clientapi"
export CFL_HEARTBEAT_S=1 CFL_DEAD_TIMEOUT_S=6 CFL_LOGIN_TIMEOUT_S=5
MARK="cfl-capi-marker-$$-$RANDOM$RANDOM"
kill_strays() { local p; for p in $(pgrep -f -- "$MARK"); do kill -KILL "$p" 2>/dev/null; done; }
trap 'kill_strays; cleanup' EXIT

project_yml ca.yml ca mtls "site-1 site-2" "$PROJECT_ADMIN"
provision_or_exit ca.yml localhost

reason() { adm "list_jobs $1" | js "d['jobs'][0]['sites']['$2']['reason']"; }
model() { PYTHONPATH="$CFL_SRC/python" "$PY" "$D/readmodel.py" "$P/localhost/jobs/$1/${3:-model.safetensors}" "$2"; }
# wait_gone SECONDS: no process of the test's scripts is left (they carry the marker).
wait_gone() {
	local i=0
	while ! no_strays && [ $i -lt $(($1 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	no_strays
}

# job NAME MODE ROUNDS MIN_CLIENTS TIMEOUT RESULT INITIAL: a job running arith.py on both sites.
job() {
	mkdir -p "$1"
	cp "$D/arith.py" "$1/"
	PYTHONPATH="$CFL_SRC/python" "$PY" -c 'import sys, numpy as np
from cfl import safetensors
safetensors.save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, sys.argv[1])' "$1/initial.safetensors"
	cat >"$1/config.json" <<JSON
{"workflow": {"name": "fedavg", "num_rounds": $3, "min_clients": $4, "round_timeout_s": $5,
              "result": "$6"},
 "executor": {"type": "client_api", "command": ["$PY", "arith.py", "$2", "$MARK"],
              "params_format": "numpy", "initial_model": "$7"},
 "sites": ["site-1", "site-2"]}
JSON
}
# The global model of arith.py after R rounds from arange(6): every value + 1.5 R.
want() { "$PY" -c 'import sys; print([float(i) + 1.5 * int(sys.argv[1]) for i in range(6)])' "$1"; }

start_server "$T/server.log" "$P/localhost" || { finish; exit 1; }
SPID=$LAST_PID
port=$FED_PORT
for s in site-1 site-2; do
	start_bg "$T/$s.log" "$CFL_BIN" client "$P/$s" --server ":$FED_PORT"
	eval "PID_${s#site-}=$LAST_PID"
	wait_log "$T/$s.log" "logged in" 20 || fail "$s did not log in: $(tail -n 3 "$T/$s.log")"
done

# --- the numpy example: exactly the arithmetic's model after 3 rounds --------------------------
cp -r "$CFL_SRC/examples/jobs/hello-numpy" hello
"$PY" - hello/config.json "$PY" <<'PYX'
import json, sys
c = json.load(open(sys.argv[1]))
c["executor"]["command"][0] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"))
PYX
id=$(submit hello)
check "hello-numpy: accepted ($id)" test -n "$id"
check "hello-numpy: FINISHED:COMPLETED" wait_status "$id" "FINISHED:COMPLETED" 120
got=$(model "$id" numpy_key)
check "hello-numpy: the global model is [5.5 .. 13.5] ($got)" \
	test "$got" = "$("$PY" -c 'print([i + 4.5 for i in range(1, 10)])')"
check "hello-numpy: the script's output is in the site's log with the job id" \
	grep -q "job $id: hello-numpy on site-1" "$T/site-1.log"
check "hello-numpy: one script per site for the job (started once)" \
	test "$(grep -c "job $id: started" "$T/site-1.log")" = 1
rows=$(adm "list_jobs $id" | js 'len([r for m in d["jobs"][0]["metrics"] for r in m.get("site_metrics", []) if r["tag"] == "weight_mean" and r["step"] >= 0])')
check "hello-numpy: its metrics are in list_jobs --json (${rows:-none} weight_mean rows)" test "${rows:-0}" = 6
check "hello-numpy: and in metrics.csv with round and site" \
	grep -q '^3,site-2,weight_mean,2,' "$P/localhost/jobs/$id/metrics.csv"
check "hello-numpy: the script exits when the job ends" \
	wait_log "$T/site-2.log" "job $id: the script ended \(status 0\)" 10

# --- FULL and DIFF, with workflow.result weights and diff --------------------------------------
for v in "full weights" "diff weights" "diff diff" "full diff"; do
	set -- $v
	job "$1-$2" "$1" 3 2 60 "$2" initial.safetensors
	id=$(submit "$1-$2")
	check "$1 results, result $2: FINISHED:COMPLETED" wait_status "$id" "FINISHED:COMPLETED" 90
	got=$(model "$id" w)
	check "$1 results, result $2: the model is the arithmetic's ($got)" test "$got" = "$(want 3)"
done
check "metrics.csv: a result's metrics have step -1" \
	grep -q '^3,site-2,accuracy,-1,1.5$' "$P/localhost/jobs/$id/metrics.csv"
check "metrics.csv: add_scalars' tags are main/a, main/b" \
	grep -q '^1,site-1,main/b,0,2$' "$P/localhost/jobs/$id/metrics.csv"

# --- executor.initial_model "from_site" ----------------------------------------------------------
job from-site full 2 2 60 weights from_site
rm from-site/initial.safetensors
id=$(submit from-site)
check "from_site: FINISHED:COMPLETED" wait_status "$id" "FINISHED:COMPLETED" 90
got=$(model "$id" w initial_model.safetensors)
check "from_site: the site's weights are the job's initial model ($got)" test "$got" = "$(want 0)"
check "from_site: the model after 2 rounds" test "$(model "$id" w)" = "$(want 2)"
check "from_site: site-1 was asked" grep -q "job $id: asking site-1 for its script's initial weights" "$T/server.log"
# A site that filters its results does not give initial weights (they have no global model to
# filter against): the server asks the next site.
cat >"$P/site-1/local/privacy.json" <<'JSON'
{"scopes": [{"name": "private",
             "task_result_filters": [{"name": "nvflare.app_common.filters.exclude_vars.ExcludeVars",
                                      "args": {"exclude_vars": ["nothing"]}}]}],
 "default_scope": "private"}
JSON
kill -HUP "$PID_1"
wait_log "$T/site-1.log" "SIGHUP: site policy reloaded" 10 || fail "site-1 did not reload its policy"
id=$(submit from-site)
check "from_site, site-1 filtering: FINISHED:COMPLETED" wait_status "$id" "FINISHED:COMPLETED" 90
check "from_site, site-1 filtering: site-1 refuses to give its weights" \
	grep -q "job $id: refused to give initial weights: this site filters its results" "$T/site-1.log"
check "from_site, site-1 filtering: site-2 gives them" \
	grep -q "job $id: asking site-2 for its script's initial weights" "$T/server.log"
rm "$P/site-1/local/privacy.json"
kill -HUP "$PID_1"
mkdir -p builtin-fs
echo '{"workflow": {"name": "fedavg", "num_rounds": 1}, "executor": {"type": "builtin", "initial_model": "from_site"}}' >builtin-fs/config.json
out=$(timeout 60 "$CFL_BIN" admin "$P/admin@test.org" --server ":$FED_PORT" --cmd "submit_job $T/builtin-fs" 2>&1)
check "from_site: refused for a builtin job ($out)" sh -c "echo \"\$0\" | grep -q 'from_site.*needs executor.type'" "$out"

# --- failures: each fails its site's round, with the reason --------------------------------------
job crash crash2 3 1 60 weights initial.safetensors
id=$(submit crash)
check "crash in round 2: the job completes with site-1" wait_status "$id" "FINISHED:COMPLETED" 90
r=$(reason "$id" site-2)
check "crash in round 2: site-2's reason ($r)" \
	test "$r" = "trained again in round 3; round 2: script exited with status 3 before sending its result"
r=$(adm "list_jobs $id" | js "d['jobs'][0]['sites']['site-2']['state']")
check "crash in round 2: site-2 is accepted again after round 3 ($r)" test "$r" = accepted
check "crash in round 2: the script is started again for round 3" \
	test "$(grep -c "job $id: started" "$T/site-2.log")" = 2
check "crash in round 2: no process left" wait_gone 10

job nosend nosend 1 1 3 weights initial.safetensors
id=$(submit nosend)
check "never sends: the job completes with site-1" wait_status "$id" "FINISHED:COMPLETED" 60
r=$(reason "$id" site-2)
check "never sends: site-2's reason ($r)" test "$r" = "round 1: no result from script within 3 s"
check "never sends: no process left" wait_gone 10

job badshape badshape 1 1 60 weights initial.safetensors
id=$(submit badshape)
check "wrong shape: the job completes with site-1" wait_status "$id" "FINISHED:COMPLETED" 60
r=$(reason "$id" site-2)
check "wrong shape: site-2's reason ($r)" \
	test "$r" = "round 1: result tensor 'w' has shape [3, 2], expected [2, 3]"
check "wrong shape: no process left" wait_gone 10

job garbage garbage 1 1 60 weights initial.safetensors
id=$(submit garbage)
check "garbage: the job completes with site-1" wait_status "$id" "FINISHED:COMPLETED" 60
r=$(reason "$id" site-2)
check "garbage: site-2's reason ($r)" sh -c "echo '$r' | grep -q '^round 1: bad message from script: not JSON'"
check "garbage: no process left" wait_gone 10

# --- abort, then the site's stop ------------------------------------------------------------------
job abort nosend 1 2 600 weights initial.safetensors
id=$(submit abort)
check "abort: both scripts run" wait_log "$T/site-2.log" "job $id: started" 30
sleep 1
adm "abort_job $id" >/dev/null
check "abort: FINISHED:ABORTED" wait_status "$id" "FINISHED:ABORTED" 20
check "abort: no process left 3 s after abort_job" wait_gone 3
job stop nosend 1 2 600 weights initial.safetensors
id=$(submit stop)
check "site stop: the script runs" wait_log "$T/site-2.log" "job $id: started" 30
sleep 1
stop_check site-2 "$PID_2"
check "site stop: no process left" wait_gone 3
stop_check site-1 "$PID_1"
stop_check server "$SPID"
bad=$(grep -hE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T"/site-*.log "$T/server.log" | head -n 1)
check "no sanitizer report (${bad:-none})" test -z "$bad"
finish
