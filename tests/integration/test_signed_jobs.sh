#!/bin/bash
# Signed jobs (SPEC §10, docs/jobs.md "Signed jobs"), mtls, a server, two sites and a
# project_admin, each its own process: a job signed by `cfl admin` completes and each site
# logs who signed it; a job whose config.json is changed in the server's store between
# submission and deployment is refused by every site, naming the file (site logs, server log,
# list_jobs), and nothing of it runs or is unpacked; bundles made by hand (unsigned, changed
# after signing, signed by another admin or by a certificate of another CA) are refused at
# submission (the hostile program's job cases).
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

export CFL_HEARTBEAT_S=1 CFL_DEAD_TIMEOUT_S=6 CFL_LOGIN_TIMEOUT_S=5
HOSTILE=${CFL_HOSTILE:-${CFL_BUILD:-$CFL_SRC/build}/tests/hostile}

project_yml sj.yml sj mtls "site-1 site-2 site-3" "$PROJECT_ADMIN"
# site-3 never runs: the hostile program wants three site kits.
provision_or_exit sj.yml localhost

start_sites() { # tag
	local s
	for s in site-1 site-2; do
		start_bg "$T/$1-$s.log" "$CFL_BIN" client "$P/$s" --server ":$port"
		eval "pid_${s//-/_}=$LAST_PID"
	done
	for s in site-1 site-2; do
		wait_log "$T/$1-$s.log" "logged in to" 20 || fail "$1: $s did not log in: $(tail -n 3 "$T/$1-$s.log")"
	done
}
stop_sites() { # tag
	stop_check "$1: site-1" "$pid_site_1"
	stop_check "$1: site-2" "$pid_site_2"
}
make_job() { # folder min_clients
	mkdir -p "$1"
	echo '{"name": "signed"}' >"$1/meta.json"
	cat >"$1/config.json" <<JSON
{"workflow": {"name": "fedavg", "num_rounds": 2, "min_clients": $2, "round_timeout_s": 60},
 "executor": {"type": "builtin", "dataset": "synthetic", "floats": 100},
 "sites": ["@ALL"]}
JSON
}

start_server "$T/server.log" "$P/localhost" || { finish; exit 1; }
spid=$LAST_PID port=$FED_PORT

# --- a signed job completes ------------------------------------------------------------------
start_sites good
make_job "$T/job" 2
id=$(adm "submit_job $T/job" | js 'd["job_id"]')
check "submit_job of a signed job gives an id ($id): $(cat "$T/adm.err")" test -n "$id"
check "the signed job completes" wait_status "$id" '^FINISHED:COMPLETED$' 60
check "the server stored the bundle with its manifest, signature and certificate" \
	sh -c "python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); sys.exit(sorted(b) != [\"certificate\",\"files\",\"manifest\",\"signature\"])' '$P/localhost/jobs/$id/bundle.json'"
for s in site-1 site-2; do
	check "$s logged who signed job $id" \
		grep -q "job $id signed by admin@test.org (test, project_admin)" "$T/good-$s.log"
done
stop_sites good

# --- a job changed in the server's store after submission --------------------------------------
# No site is connected: the job waits (min_clients 2) while its stored config.json is turned
# into a command that would leave a marker file.
make_job "$T/job2" 2
id2=$(adm "submit_job $T/job2" | js 'd["job_id"]')
check "submit_job of the second job gives an id ($id2)" test -n "$id2"
check "it waits for its sites" wait_status "$id2" '^SUBMITTED$' 5
stored="$P/localhost/jobs/$id2/bundle.json"
change() {
	python3 - "$stored" "$T/pwned" <<'PY'
import base64, json, sys
path, marker = sys.argv[1], sys.argv[2]
b = json.load(open(path))
cfg = json.loads(base64.b64decode(b["files"]["config.json"]))
cfg["executor"] = {"type": "command", "command": ["touch", marker]}
b["files"]["config.json"] = base64.b64encode(json.dumps(cfg).encode()).decode()
json.dump(b, open(path, "w"))
PY
}
check "the stored config.json is changed into a command job" change
start_sites changed
check "the changed job ends in FINISHED:EXECUTION_EXCEPTION" \
	wait_status "$id2" '^FINISHED:EXECUTION_EXCEPTION$' 30
err=$(job_field "$id2" error)
# The first refusal leaves fewer sites than min_clients: the job ends at once, naming it.
check "list_jobs $id2 says why: $err" sh -c "echo \"\$1\" | grep -Eq '^1 of 2 sites may run the job, fewer than min_clients 2: site-[12]: .config.json. does not match its signed digest;\$'" _ "$err"
for s in site-1 site-2; do
	check "$s refused the job, naming the file" \
		grep -q "job $id2 refused: 'config.json' does not match its signed digest" "$T/changed-$s.log"
	check "$s unpacked nothing of job $id2" test ! -e "$P/$s/jobs/$id2"
done
check "the server logged a site's refusal" \
	grep -Eq "job $id2: site-[12] refused the job: 'config.json' does not match its signed digest" "$T/server.log"
check "the changed job's command never ran" test ! -e "$T/pwned"
stop_sites changed

# --- bundles made by hand, refused at submission ----------------------------------------------
if [ -x "$HOSTILE" ]; then
	TMPDIR=$T timeout 60 "$HOSTILE" --port "$port" --admin admin@test.org \
		--expect-log "$T/expect.txt" "$P" unsigned-job job-changed-after-signing \
		job-signed-by-other-admin job-signed-by-foreign-ca >"$T/hostile.out" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		PASS*) ok "${line#PASS }" ;;
		FAIL*) fail "${line#FAIL }" ;;
		esac
	done <"$T/hostile.out"
	check "the hostile program refused 4 of 4 job cases (exit $rc)" \
		sh -c "test $rc -eq 0 && test \$(grep -c '^PASS' '$T/hostile.out') -eq 4"
	while IFS=$'\t' read -r kind text; do
		[ "$kind" = L ] && check "the server logged: $text" grep -qF "$text" "$T/server.log"
	done <"$T/expect.txt"
	check "the server logged the 4 refusals" test "$(grep -c '^L' "$T/expect.txt")" -eq 4
else
	fail "no hostile program at $HOSTILE (build the 'hostile' target)"
fi
n=$(adm "list_jobs" | js 'len(d["jobs"])')
check "only the two jobs of cfl admin were stored ($n)" test "$n" = 2

stop_check "the server" "$spid"
bad=$(grep -hE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T"/*.log | head -n 1)
check "no sanitizer report (${bad:-none})" test -z "$bad"
finish
