#!/bin/bash
# The FL runtime end to end (SPEC §8, docs/jobs.md), mtls, a server, three sites, a
# project_admin and a member, each its own process: job submission and refusals, a normal job
# and its download, a site killed mid-round and brought back, the server killed mid-job and
# restarted (the job resumes), abort_job, remove_client, shutdown.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# Short heartbeats so that losses are noticed in seconds; the built-in trainer's digits.
export CFL_HEARTBEAT_S=1 CFL_DEAD_TIMEOUT_S=6 CFL_LOGIN_TIMEOUT_S=5
export CFL_DATA_DIR="$CFL_SRC/data"
# A round of the slow job lasts 1.5 s (idle machine) to 5 s (busy): long enough to kill someone
# mid-round. The trainer under ASan/UBSan (-O0) is some 15 times slower: fewer epochs there.
case "${CFL_BUILD:-}" in
*asan*) EPOCHS=20 SLOW=4 ;;
*) EPOCHS=300 SLOW=1 ;;
esac

project_yml fl.yml fl mtls "site-1 site-2 site-3 site-spare" "$PROJECT_ADMIN" \
	"{name: member@test.org, type: admin, org: test, role: member}"
provision_or_exit fl.yml localhost
JOBS="$P/localhost/jobs"

# --- helpers ------------------------------------------------------------------------------------
madm() { timeout 60 "$CFL_BIN" admin "$P/member@test.org" --server ":$port" --cmd "$1" --json 2>"$T/madm.err"; }
# The "clients" of round $2 of job $1 (empty while that round has not completed).
round_clients() { job_json "$1" | js "[m['clients'] for m in d['metrics'] if m['round'] == $2][0]"; }
round_done() { [ -n "$(round_clients "$1" "$2")" ]; }
count() { grep -Ec "$2" "$1" 2>/dev/null; } # lines of file $1 matching $2
logins() { count "$1" "logged in to localhost:$port"; }
# Waits (at most $3 s, no check) until every running site has logged a line matching $2 after
# its first line matching $1: a training thread left over from a job that ended has finished.
settle() {
	local s
	for s in site-1 site-2 site-3; do
		wait_for "$3" sh -c "sed -n \"\\|$1|,\\\$p\" '${SITE_LOG[$s]}' | grep -Eq '$2'"
	done
}
clients_connected() { [ "$(adm "check_status client" | grep -o '"connected":true' | wc -l)" -eq "$1" ]; }

declare -A SITE_PID SITE_LOG
start_site() { # name [log suffix]
	SITE_LOG[$1]="$T/$1${2:-}.log"
	start_bg "${SITE_LOG[$1]}" "$CFL_BIN" client "$P/$1" --server ":$port"
	SITE_PID[$1]=$LAST_PID
}
run_server() { # log [cfl server options]
	SERVER_LOG=$1
	shift
	start_server "$SERVER_LOG" "$P/localhost" "$@" || return 1
	SERVER_PID=$LAST_PID
}

# A slower copy of the digits job: an MLP, many local epochs, $1 rounds, at least 2 clients.
slow_job() { # folder rounds
	mkdir -p "$1"
	cp "$CFL_SRC/examples/jobs/fedavg-digits/meta.json" "$1/"
	cat >"$1/config.json" <<JSON
{
  "workflow": {"name": "fedavg", "num_rounds": $2, "min_clients": 2, "round_timeout_s": 300},
  "executor": {"type": "builtin", "dataset": "digits", "arch": "mlp", "hidden": 128,
               "lr": 0.05, "epochs": $EPOCHS, "batch": 16, "seed": 1, "alpha": 0},
  "sites": ["@ALL"]
}
JSON
}

# --- start: the server and three sites ----------------------------------------------------------
run_server "$T/server.log" || { finish; exit 1; }
port=$FED_PORT
check "the server listens on port $port" wait_log "$SERVER_LOG" "listening on port $port" 20
for s in site-1 site-2 site-3; do start_site $s; done
for s in site-1 site-2 site-3; do
	check "$s logs in (mtls)" wait_log "${SITE_LOG[$s]}" "logged in to localhost:$port as '$s' \(mtls" 20
done
check "check_status client: the 3 sites connected" wait_for 20 clients_connected 3

# --- a member admin looks but does not run jobs ------------------------------------------------
snap0=$(snapshot "$JOBS")
out=$(madm "check_status client")
check "member: check_status client works" sh -c "echo \"\$1\" | grep -q '\"name\":\"site-1\"'" _ "$out"
out=$(madm "check_status server")
check "member: check_status server works" sh -c "echo \"\$1\" | grep -q '\"status\":\"started\"'" _ "$out"
out=$(madm "list_jobs")
check "member: list_jobs works: $out" test "$out" = '{"jobs":[]}'
out=$(madm "submit_job $CFL_SRC/examples/jobs/fedavg-digits"); rc=$?
err=$(head -n 1 "$T/madm.err")
check "member: submit_job is refused (exit $rc): $err" \
	sh -c "test $rc -ne 0 && echo \"\$1\" | grep -q \"submit_job not granted to member@test.org (member: not listed)\"" _ "$err"
for c in "abort_job x|manage_job" "download_job x|download_job" "remove_client site-1|operate" \
	"shutdown client all|operate"; do
	IFS='|' read -r c right <<<"$c"
	madm "$c" >/dev/null; rc=$?
	check "member: $c is refused, needing $right (exit $rc): $(head -n 1 "$T/madm.err")" \
		sh -c "test $rc -ne 0 && grep -qF \"$right not granted to member@test.org (member: not listed)\" '$T/madm.err'"
done
check "the server logged the member's refused submission" grep -q "admin member@test.org: submit_job" "$SERVER_LOG"

# --- bad job folders are refused with a clear message, nothing is stored -------------------------
mkdir -p bad-noconfig bad-workflow bad-json bad-rounds
cp "$CFL_SRC/examples/jobs/fedavg-digits/meta.json" bad-noconfig/
sed 's/"name": "fedavg"/"name": "cyclic"/' "$CFL_SRC/examples/jobs/fedavg-digits/config.json" >bad-workflow/config.json
printf '{"workflow": {"name": "fedavg",\n' >bad-json/config.json
sed 's/"num_rounds": 5/"num_rounds": 0/' "$CFL_SRC/examples/jobs/fedavg-digits/config.json" >bad-rounds/config.json
refused() { # folder expected-message: exit != 0, the message on stderr, no job id
	adm "submit_job $1" >"$T/adm.out"; rc=$?
	[ $rc -ne 0 ] && grep -q "$2" "$T/adm.err" && ! grep -q job_id "$T/adm.out"
}
for c in "bad-noconfig|the job has no config.json|a job without config.json" \
	"bad-workflow|unknown workflow|an unknown workflow" \
	"bad-json|config.json: line|a config.json that is not JSON" \
	"bad-rounds|num_rounds must be|num_rounds 0" \
	"no-such-folder|cannot open job folder|a folder that does not exist"; do
	IFS='|' read -r dir msg what <<<"$c"
	refused "$T/$dir" "$msg"; r=$?
	check "$what is refused: $(head -n 1 "$T/adm.err")" test $r -eq 0
done
check "nothing was stored in the server's jobs folder" test "$snap0" = "$(snapshot "$JOBS")"
check "and list_jobs is still empty" test "$(adm list_jobs)" = '{"jobs":[]}'

# --- a normal job completes; download_job --------------------------------------------------------
id=$(submit "$CFL_SRC/examples/jobs/fedavg-digits")
check "submit_job fedavg-digits gives a job id ($id)" test -n "$id"
check "the digits job completes" wait_status "$id" '^FINISHED:COMPLETED$' $((60 * SLOW))
j=$(job_json "$id")
check "rounds_done 5 of num_rounds 5" test "$(echo "$j" | js '[d["rounds_done"], d["num_rounds"]]')" = "[5, 5]"
check "5 rounds of metrics, each with the 3 sites" \
	test "$(echo "$j" | js '[(m["round"], m["clients"]) for m in d["metrics"]]')" = "[[1, 3], [2, 3], [3, 3], [4, 3], [5, 3]]"
acc=$(echo "$j" | js 'd["metrics"][-1]["test_accuracy"]')
check "final test accuracy $acc > 0.85" python3 -c "import sys; sys.exit(not float('$acc') > 0.85)"
out=$(madm "list_jobs $id")
check "member: list_jobs shows the job" sh -c "echo \"\$1\" | grep -q FINISHED:COMPLETED" _ "$out"
madm "download_job $id" >/dev/null; rc=$?
check "member: download_job is refused (exit $rc)" test $rc -ne 0
out=$(timeout 60 "$CFL_BIN" admin "$P/admin@test.org" --server ":$port" --cmd "download_job $id" 2>&1); rc=$?
dl="$P/admin@test.org/transfer/$id"
check "download_job exits 0: $out" test $rc -eq 0
check "metrics.csv has a header and num_rounds (5) rows" \
	sh -c "head -n 1 '$dl/metrics.csv' | grep -q '^round,clients,train_loss,test_accuracy' && test \$(tail -n +2 '$dl/metrics.csv' | wc -l) -eq 5"
check "metrics.csv rows are rounds 1..5 with 3 clients" \
	test "$(tail -n +2 "$dl/metrics.csv" | cut -d, -f1,2 | tr '\n' ' ')" = "1,3 2,3 3,3 4,3 5,3 "
check "model.safetensors is a safetensors file with the softmax weights" python3 - "$dl/model.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
h = json.loads(raw[8:8 + n])
w = h["linear.weight"]
assert w["dtype"] == "F32" and w["shape"] == [10, 64], w
end = max(v["data_offsets"][1] for k, v in h.items() if k != "__metadata__")
assert len(raw) == 8 + n + end, (len(raw), n, end)
PY
check "job.json says FINISHED:COMPLETED" grep -q '"state": "FINISHED:COMPLETED"' "$dl/job.json"

# --- a site killed mid-round: the round completes with the other two; it comes back ------------
slow_job "$T/slow-kill" 6
id=$(submit "$T/slow-kill")
check "the slow job is accepted ($id)" test -n "$id"
check "round 2 starts with the 3 sites" wait_log "$SERVER_LOG" "job $id round 2/6: 3 sites" $((60 * SLOW))
sleep 0.2
kill -KILL "${SITE_PID[site-2]}"
wait "${SITE_PID[site-2]}" 2>/dev/null
check "site-2 was killed mid-round (it never reported round 2)" \
	sh -c "! grep -q 'job $id round 2: trained' '${SITE_LOG[site-2]}'"
check "the server drops site-2 from round 2" wait_log "$SERVER_LOG" "job $id: site-2 dropped out of round 2" 20
wait_for $((30 * SLOW)) round_done "$id" 2
r2=$(round_clients "$id" 2)
check "round 2 completes with the other two (clients = ${r2:-not done})" test "$r2" = 2
start_site site-2 .restarted
check "the restarted site-2 logs in again" wait_log "${SITE_LOG[site-2]}" "logged in to localhost:$port as 'site-2'" 20
check "the job completes" wait_status "$id" '^FINISHED:COMPLETED$' $((90 * SLOW))
j=$(job_json "$id")
echo "  rounds (round, clients): $(echo "$j" | js '[(m["round"], m["clients"]) for m in d["metrics"]]')"
check "6 rounds of metrics" test "$(echo "$j" | js 'len(d["metrics"])')" = 6
check "a later round has the 3 sites again" \
	test "$(echo "$j" | js '[m["round"] for m in d["metrics"] if m["round"] > 2 and m["clients"] == 3] != []')" = True
check "the restarted site-2 trained in a later round" grep -q "job $id round [3-6]: trained on" "${SITE_LOG[site-2]}"
grep -hE "job $id (round [0-9]/|starts|FINISHED)|dropped out|site-2 logged in|busy" "$SERVER_LOG" | sed 's/^/  | /'
check "the server deploys the job again to the restarted site (no 'does not have the job')" \
	sh -c "! grep -q 'job $id: site-2 dropped out of round [0-9]*: this site does not have the job' '$SERVER_LOG'"

# --- the server killed mid-job and restarted: the job resumes ---------------------------------------
slow_job "$T/slow-restart" 5
id=$(submit "$T/slow-restart")
check "a job for the server restart is accepted ($id)" test -n "$id"
# A poller records rounds_done and the status as list_jobs reports them, all along (while the
# server is down the admin console fails: no line).
poller() {
	local i=0 j
	while [ $i -lt $((600 * SLOW)) ]; do
		j=$(job_json "$id")
		st=$(echo "$j" | js '"%d %s" % (d["rounds_done"], d["status"])') || st=""
		[ -n "$st" ] && echo "$st"
		case "$st" in *FINISHED*) return ;; esac
		sleep 0.2; i=$((i + 1))
	done
}
poller >"$T/poll.txt" 2>/dev/null &
POLLER=$!
PIDS="$PIDS $POLLER"
check "round 3 starts" wait_log "$SERVER_LOG" "job $id round 3/5: 3 sites" $((60 * SLOW))
sleep 0.3
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
before=$(tail -n 1 "$T/poll.txt")
for s in site-1 site-2 site-3; do
	check "$s was training round 3 when the server died (not reported yet)" \
		sh -c "! grep -q 'job $id round 3: trained' '${SITE_LOG[$s]}'"
done
check "the job's state on disk: RUNNING, 2 rounds done" \
	python3 -c "import json,sys; d=json.load(open('$JOBS/$id/job.json')); print(d['state'], d['rounds_done']); sys.exit(not (d['state']=='RUNNING' and d['rounds_done']==2))"
for s in site-1 site-2 site-3; do
	n0[${s#site-}]=$(logins "${SITE_LOG[$s]}")
done
check "the sites notice the server is gone" wait_log "${SITE_LOG[site-1]}" "connection to localhost:$port lost" 20
# The sites reconnect to the port they know: the restarted server takes it back (the killed
# one freed it a moment ago).
run_server "$T/server.restarted.log" --port "$port"
check "the restarted server listens again" wait_log "$SERVER_LOG" "listening on port $port" 20
check "it resumes the job after round 2" \
	wait_log "$SERVER_LOG" "job $id was running when the server stopped: resuming after round 2" 10
for s in site-1 site-2 site-3; do
	check "$s reconnects and logs in by itself" \
		wait_for 40 sh -c "test \$(grep -c 'logged in to localhost:$port' '${SITE_LOG[$s]}') -gt ${n0[${s#site-}]}"
done
check "the poller sees the job finish" wait_for $((120 * SLOW)) sh -c "! kill -0 $POLLER 2>/dev/null"
kill "$POLLER" 2>/dev/null
wait "$POLLER" 2>/dev/null
seen=$(awk '{ print $1 }' "$T/poll.txt" | uniq | tr '\n' ' ')
final=$(tail -n 1 "$T/poll.txt" | awk '{ print $2 }')
echo "  rounds_done seen by list_jobs: $seen(last before the kill: ${before:-none}); final status: ${final:-none}"
check "rounds_done never went backwards" awk '$1 < max { exit 1 } { if ($1 > max) max = $1 }' "$T/poll.txt"
check "the resumed job completes (status ${final:-none})" test "$final" = FINISHED:COMPLETED
j=$(job_json "$id")
echo "  rounds (round, clients): $(echo "$j" | js '[(m["round"], m["clients"]) for m in d["metrics"]]')"
check "the final metrics have num_rounds (5) entries, rounds 1..5" \
	test "$(echo "$j" | js '[m["round"] for m in d["metrics"]]')" = "[1, 2, 3, 4, 5]"
check "round 3 ran again after the restart" grep -q "job $id round 3/5: [0-9] updates" "$SERVER_LOG"
grep -hE "job $id (round [0-9]/|starts|was running|FINISHED)|busy|dropped out|fewer than|logged in from" \
	"$T/server.log" "$SERVER_LOG" | grep -v "^.*admin " | sed 's/^/  | /' | tail -n 30

# Round 3's training threads of the killed server's connections run to their end: let them
# finish before the next job (a site still busy with one refuses new tasks).
settle "connection to localhost:$port lost" "job $id round 3: (trained on|training failed|the server went away)" $((20 * SLOW))

# --- abort_job on a running job --------------------------------------------------------------------
slow_job "$T/slow-abort" 50
id=$(submit "$T/slow-abort")
check "a long job is accepted ($id)" test -n "$id"
check "its round 2 starts" wait_log "$SERVER_LOG" "job $id round 2/50: [0-9] sites" $((60 * SLOW))
out=$(adm "abort_job $id")
check "abort_job answers: $out" test "$out" = "{\"aborted\":\"$id\"}"
check "the job is FINISHED:ABORTED" wait_status "$id" '^FINISHED:ABORTED$' 10
for s in site-1 site-2 site-3; do
	check "$s logs that job $id was aborted" wait_log "${SITE_LOG[$s]}" "job $id aborted" 10
done
check "rounds_done stays below 50 ($(job_field "$id" rounds_done))" test "$(job_field "$id" rounds_done)" -lt 50
adm "abort_job $id" >/dev/null; rc=$?
check "aborting it again is refused (exit $rc): $(head -n 1 "$T/adm.err")" \
	sh -c "test $rc -ne 0 && grep -q 'already FINISHED:ABORTED' '$T/adm.err'"
adm "abort_job 20000101-000000-000000" >/dev/null; rc=$?
check "aborting an unknown job is refused: $(head -n 1 "$T/adm.err")" sh -c "test $rc -ne 0 && grep -q 'no job' '$T/adm.err'"

# The aborted job's training threads run to their end (docs: their results are refused).
settle "job $id aborted" "job $id round [0-9]+: (trained on|training failed)" $((20 * SLOW))

# --- remove_client: the site is cut off, its token dropped; it logs in again by itself ------------
n1=$(logins "${SITE_LOG[site-1]}")
l0=$(wc -l <"$SERVER_LOG")
out=$(adm "remove_client site-1")
check "remove_client site-1: $out" test "$out" = '{"removed":"site-1"}'
check "the server logs the removal" wait_log "$SERVER_LOG" "site-1 removed: removed by an admin" 10
check "site-1's connection closes" wait_log "${SITE_LOG[site-1]}" "connection to localhost:$port lost" 10
check "site-1 logs in again by itself" \
	wait_for 30 sh -c "test \$(grep -c 'logged in to localhost:$port' '${SITE_LOG[site-1]}') -gt $n1"
check "the server log shows a fresh login of site-1 after the removal" \
	wait_for 10 sh -c "tail -n +$l0 '$SERVER_LOG' | sed -n '/site-1 removed/,\$p' | grep -q 'site-1 logged in from'"
check "check_status: the 3 sites connected again" wait_for 20 clients_connected 3
adm "remove_client nobody" >/dev/null; rc=$?
check "remove_client of an unknown site is refused: $(head -n 1 "$T/adm.err")" \
	sh -c "test $rc -ne 0 && grep -q \"no client 'nobody'\" '$T/adm.err'"
HOSTILE=${CFL_HOSTILE:-}
if [ -n "$HOSTILE" ] && [ -x "$HOSTILE" ]; then
	# A client that keeps its token after the removal: refused with it, on its own connection
	# and on a new one. The hostile program logs in as site-spare (no process runs it, so no
	# honest client logs in again under that name meanwhile), has it removed, and probes.
	out=$(timeout 60 "$HOSTILE" --port "$port" --sites site-1,site-2,site-spare --admin admin@test.org "$P" removed-client-token 2>&1)
	rc=$?
	check "the token of a removed client stops working: $(echo "$out" | head -n 1)" test $rc -eq 0
	check "the server logged the removal of site-spare" grep -q "site-spare removed: removed by an admin" "$SERVER_LOG"
	check "the 3 sites are still connected" wait_for 20 clients_connected 3
else
	echo "skipped: the old-token probe needs the hostile program (CFL_HOSTILE=${HOSTILE:-unset})"
fi

# --- after all that, a new job still runs on the 3 sites -----------------------------------------
id=$(submit "$CFL_SRC/examples/jobs/fedavg-digits")
check "another digits job completes" wait_status "$id" '^FINISHED:COMPLETED$' $((60 * SLOW))
check "with the 3 sites in every round" \
	test "$(job_json "$id" | js '[m["clients"] for m in d["metrics"]]')" = "[3, 3, 3, 3, 3]"

# --- shutdown: the sites stop cleanly, then the server --------------------------------------------
out=$(adm "shutdown client all")
check "shutdown client all: $out" test "$out" = '{"shutdown":"all"}'
for s in site-1 site-2 site-3; do
	check "$s exits" wait_for 20 sh -c "! kill -0 ${SITE_PID[$s]} 2>/dev/null"
	wait "${SITE_PID[$s]}"; rc=$?
	forget_pid "${SITE_PID[$s]}"
	check "$s exits with status 0 (got $(status_text $rc))" test $rc -eq 0
	check "$s logged the shutdown request" grep -q "the server asks this site to shut down" "${SITE_LOG[$s]}"
done
stop_check "the server" "$SERVER_PID"
check "the server logged why it shut down" grep -q "shutting down (SIGTERM)" "$SERVER_LOG"
alive=""
for p in $PIDS; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
check "no process of this test is left (${alive:-none})" test -z "$alive"
bad=$(grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T"/*.log 2>/dev/null | tr '\n' ' ')
check "no sanitizer report in any log (${bad:-none})" test -z "$bad"
finish
