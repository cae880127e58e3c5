#!/bin/bash
# The admin console (docs/jobs.md): its command table (--help, help/?, usage errors), the
# tables a person reads (list_jobs with local submit times, check_status, one-line answers),
# --json as the server sends it, a console that keeps its heartbeats while nobody types, line
# editing and completion at a terminal, and a library that reads no terminal.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

port=8002 # the kit names a port; the server listens where the kernel puts it (--port 0)
cat >adm.yml <<YML
api_version: 3
name: adm
connection_security: mtls
participants:
  - name: localhost
    type: server
    org: test
    fed_learn_port: $port
    admin_port: $port
    host_names: [localhost, 127.0.0.1]
  - {name: site-1, type: client, org: test}
  - {name: admin@test.org, type: admin, org: test, role: project_admin}
  - {name: member@test.org, type: admin, org: test, role: member}
YML
provision_or_exit adm.yml localhost
KIT="$P/admin@test.org"
# A zone 5:30 east of UTC without a zoneinfo file: local times differ from the server's UTC.
export TZ=XST-05:30
SRV="" # --server :PORT once the server runs
adm() { timeout 30 "$CFL_BIN" admin "$KIT" ${SRV:+--server "$SRV"} "$@"; }
# Lines of file $1 matching the extended regex $2.
count() { grep -Ec "$2" "$1" 2>/dev/null; }
# Epoch seconds, or the server's "YYYY-MM-DDTHH:MM:SSZ", as the console shows them (local time).
local_of_epoch() { date -d "@$1" '+%Y-%m-%d %H:%M:%S'; }
local_of_utc() { date -d "$1" '+%Y-%m-%d %H:%M:%S'; }
js() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
COMMANDS="check_status list_jobs submit_job abort_job download_job remove_client shutdown help bye"

# --- the command table, without a server ---------------------------------------------------------
"$CFL_BIN" admin --help >help.out 2>&1; rc=$?
check "cfl admin --help exits 0 (exit $rc)" test $rc -eq 0
for c in $COMMANDS; do
	check "--help lists $c" grep -Eq "^  $c[ |]" help.out
done
check "--help lists 9 commands ($(count help.out '^  [a-z]'))" test "$(count help.out '^  [a-z]')" -eq 9
# The table matches what the server accepts (src/server/admin_cmds.c compares the verb).
server_cmds=$(grep -oE '^ *\{"[a-z_]+", CFL_RIGHT_' "$CFL_SRC/src/server/admin_cmds.c" | cut -d'"' -f2 | sort -u)
check "the server's commands are found in admin_cmds.c ($(echo $server_cmds))" \
	test "$(echo "$server_cmds" | wc -w)" -ge 7
for c in $server_cmds; do
	check "--help lists the server's $c" grep -Eq "^  $c " help.out
done
adm --cmd help >cmdhelp.out 2>&1; rc=$?
check "--cmd help exits 0 without a server (exit $rc)" test $rc -eq 0
check "--cmd help prints the same list as --help" \
	test "$(grep '^  [a-z]' help.out)" = "$(cat cmdhelp.out)"
out=$(adm --cmd "help list_jobs" 2>&1)
check "help list_jobs gives its synopsis: $out" \
	sh -c "echo \"\$1\" | grep -Eq '^  list_jobs \[JOB_ID\] +the jobs' && test \$(echo \"\$1\" | wc -l) -eq 1" _ "$out"
out=$(adm --cmd frobnicate 2>&1); rc=$?
check "an unknown --cmd is a usage error (exit $rc): $out" \
	sh -c "test $rc -eq 2 && test \"\$1\" = \"cfl: unknown command 'frobnicate' ('cfl admin --help' lists the commands)\"" _ "$out"
out=$(adm --cmd "check_status nowhere" 2>&1); rc=$?
check "a bad argument is a usage error (exit $rc): $out" \
	sh -c "test $rc -eq 2 && test \"\$1\" = 'cfl: usage: check_status server|client [PATTERN [FROM]]'" _ "$out"
out=$(adm --cmd "abort_job" 2>&1); rc=$?
check "a missing argument is a usage error (exit $rc): $out" \
	sh -c "test $rc -eq 2 && test \"\$1\" = 'cfl: usage: abort_job JOB_ID'" _ "$out"

# --- a server (short heartbeats and dead timeout: a console that stops beating is dropped) -------
CFL_HEARTBEAT_S=1 CFL_DEAD_TIMEOUT_S=3 start_server "$T/server.log" "$P/localhost" ||
	{ finish; exit 1; }
SERVER_PID=$LAST_PID
port=$FED_PORT
SRV=":$port"
check "the server listens on port $port" wait_log "$T/server.log" "listening on port $port" 20

# --- the console reading stdin: help, ?, unknown commands, an empty list -------------------------
printf 'help\n?\n\nfrobnicate\nlist_jobs\ncheck_status\nbye\nlist_jobs\n' | adm >console.out 2>console.err
rc=$?
check "the console exits 0 after bye (exit $rc)" test $rc -eq 0
check "help and ? both list the commands" test "$(count console.out '^  bye\|quit ')" -eq 2
check "help lists 9 commands, twice" test "$(count console.out '^  [a-z]')" -eq 18
check "an unknown command is named, with the hint: $(head -n 1 console.err)" \
	test "$(head -n 1 console.err)" = "error: unknown command 'frobnicate' (help lists the commands)"
check "a bad line gets its usage: $(sed -n 2p console.err)" \
	test "$(sed -n 2p console.err)" = "error: usage: check_status server|client [PATTERN [FROM]]"
check "list_jobs with no jobs says so" grep -qx "no jobs" console.out
check "nothing runs after bye" test "$(count console.out '^no jobs$')" -eq 1

# --- lines and words too long: refused whole, never run in pieces or cut ----------------------------
# An early '\r' used to end the read of a long line: its tail past 2047 bytes ran as a command.
python3 -c 'import sys; sys.stdout.write("list_jobs\r" + "z" * 2037 + "check_status server\n" + "x" * 1500 + "\nbye\n")' |
	adm >long.out 2>long.err
rc=$?
check "the console exits 0 after long lines (exit $rc)" test $rc -eq 0
check "both long lines are refused: $(sort -u long.err)" \
	test "$(count long.err '^error: the line is too long \(1023 bytes at most\)$')" -eq 2
check "no piece of a long line ran" test ! -s long.out
out=$(adm --cmd "remove_client $(printf '%0300d' 0)" 2>&1); rc=$?
check "the server refuses a 300-byte client name, not its first 255 bytes (exit $rc): $out" \
	sh -c "test $rc -eq 1 && test \"\$1\" = 'cfl: command word too long (255 bytes at most, 63 for the verb)'" _ "$out"

# --- submit_job, list_jobs: plain answers and a table ------------------------------------------------
out=$(adm --cmd "submit_job $CFL_SRC/examples/jobs/fedavg-digits" 2>&1); rc=$?
id=$(echo "$out" | sed -n 's/^submitted job \([0-9a-f-]*\)$/\1/p')
check "submit_job prints 'submitted job <id>' (exit $rc): $out" test $rc -eq 0 -a -n "$id"
adm --cmd list_jobs --json >jobs.json 2>&1
check "list_jobs --json is the server's JSON: $(cat jobs.json)" \
	test "$(js 'list(d["jobs"][0].keys())' <jobs.json)" = "['id', 'name', 'status', 'submitter', 'submitted_at', 'rounds_done', 'num_rounds', 'error']"
at=$(js 'd["jobs"][0]["submitted_at"]' <jobs.json)
when=$(local_of_epoch "$at")
adm --cmd list_jobs >jobs.out 2>&1; rc=$?
sed 's/^/  | /' jobs.out
check "list_jobs exits 0 (exit $rc)" test $rc -eq 0
check "list_jobs has the columns job id, name, status, rounds, submitted, duration" \
	grep -Eqx 'job id +name +status +rounds +submitted +duration' jobs.out
check "the job's row: its id, name, status, rounds, local submit time ($when), duration" \
	grep -Eqx "$id +fedavg-digits +SUBMITTED +0/5 +$when +[0-9]+:[0-9]{2}:[0-9]{2}" jobs.out
check "the submit time is not the UTC one ($(TZ=UTC0 local_of_epoch "$at"))" \
	sh -c "! grep -q '$(TZ=UTC0 local_of_epoch "$at")' jobs.out"
check "no raw JSON in the table" sh -c "! grep -q '[{}\"]' jobs.out"
adm --cmd "list_jobs $id" >job.out 2>&1
check "list_jobs ID shows that job" grep -Eq "^$id +fedavg-digits +SUBMITTED" job.out

# --- check_status: tables ---------------------------------------------------------------------------
start_bg "$T/site-1.log" "$CFL_BIN" client "$P/site-1" --server "$SRV"
SITE_PID=$LAST_PID
check "site-1 logs in" wait_log "$T/site-1.log" "logged in to localhost:$port as 'site-1'" 20
adm --cmd "check_status server" --json >server.json 2>&1
started=$(local_of_utc "$(js 'd["server"]["started_at"]' <server.json)")
adm --cmd "check_status server" >server.out 2>&1; rc=$?
sed 's/^/  | /' server.out
check "check_status server exits 0 (exit $rc)" test $rc -eq 0
check "check_status server: the status row" grep -Eqx 'status +started' server.out
check "check_status server: the start in local time ($started)" grep -Eqx "started +$started" server.out
check "check_status server: the project and uptime rows" \
	sh -c "grep -Eqx 'project +adm' server.out && grep -Eqx 'uptime +[0-9]+:[0-9]{2}:[0-9]{2}' server.out"
adm --cmd "check_status client" >clients.out 2>&1; rc=$?
sed 's/^/  | /' clients.out
check "check_status client exits 0 (exit $rc)" test $rc -eq 0
check "check_status client: the header" \
	grep -Eqx 'name +address +security +connected +last heartbeat +token expiry +cert expiry' clients.out
check "check_status client: site-1's row (local times)" \
	grep -Eqx "site-1 +$LOOP:[0-9]+ +mtls +yes( +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}){3}" clients.out
check "check_status client: the counts under the table" \
	grep -Eqx '1 client logged in: 1 connected, 0 not' clients.out
adm --cmd "check_status client site-[0-9] 0" --json >page.json 2>&1
page=$(js '[d["total"], d["connected"], d["matched"], d["from"], d["next"], [c["name"] for c in d["clients"]]]' <page.json)
check "check_status client PATTERN FROM: the counts and the page ($page)" \
	test "$page" = "[1, 1, 1, 0, None, ['site-1']]"
adm --cmd "check_status client nobody* 0" >none.out 2>&1
check "check_status client: a pattern that matches none ($(cat none.out))" \
	grep -Eqx '1 client logged in: 1 connected, 0 not; 0 match' none.out
out=$(adm --cmd "check_status client s*i*t*e*-* 0" 2>&1); rc=$?
check "check_status client: at most 4 '*' in PATTERN (exit $rc): $out" \
	sh -c "test $rc -eq 1 && test \"\$1\" = \"cfl: usage: check_status server|client [PATTERN [FROM]] (at most 4 '*' in PATTERN)\"" _ "$out"
out=$(adm --cmd "check_status client * x" 2>&1); rc=$?
check "check_status client: FROM must be a number (exit $rc): $out" \
	sh -c "test $rc -eq 1 && test \"\$1\" = 'cfl: usage: check_status server|client [PATTERN [FROM]]'" _ "$out"

# --- failures: printed once, exit 1 ---------------------------------------------------------------------
timeout 30 "$CFL_BIN" admin "$P/member@test.org" --server "$SRV" --cmd "submit_job $CFL_SRC/examples/jobs/fedavg-digits" \
	>member.out 2>member.err
rc=$?
check "a refused command exits 1 (exit $rc)" test $rc -eq 1
check "its reason is printed once: $(cat member.err)" \
	test "$(cat member.err)" = "cfl: submit_job not granted to member@test.org (member: not listed)"
check "and nothing on stdout" test ! -s member.out
out=$(adm --cmd "submit_job $T/no-such-folder" 2>&1); rc=$?
check "a job folder that does not exist (exit $rc): $out" \
	sh -c "test $rc -eq 1 && test \"\$1\" = \"cfl: cannot open job folder '$T/no-such-folder'\"" _ "$out"

# --- the console keeps its heartbeats while nobody types (dead timeout 3 s, 5 s of silence) ------
(sleep 5; echo "check_status server"; echo bye) | adm >idle.out 2>idle.err
rc=$?
check "a console idle for 5 s still works (exit $rc)" \
	sh -c "test $rc -eq 0 && grep -Eqx 'status +started' idle.out"
check "the server did not drop the idle console" sh -c "! grep -q 'admin@test.org silent for' '$T/server.log'"

# --- at a terminal: prompt, completion from the table, help, end of input ------------------------------
cat >drive_tty.py <<'PY'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
def until(pat, secs=15):
    global out
    end, start = time.time() + secs, len(out)
    while time.time() < end:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                d = os.read(fd, 4096)
            except OSError:
                return
            if not d:
                return
            out += d
        if pat.encode() in out[start:]:
            return
for keys, pat in ((b"", "cfl> "), (b"list_j\t\r", "cfl> "), (b"check_status cl\t\r", "cfl> "),
                  (b"?\r", "cfl> "), (b"\x04", "\n")):
    os.write(fd, keys)
    until(pat)
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
sys.exit(os.waitstatus_to_exitcode(st))
PY
timeout 60 python3 drive_tty.py "$CFL_BIN" admin "$KIT" --server "$SRV" >tty.out 2>&1; rc=$?
check "the console at a terminal exits 0 on Ctrl-D (exit $rc)" test $rc -eq 0
check "it prompts 'cfl> '" grep -q "cfl> " tty.out
check "? lists the commands at the terminal" grep -Eq "^  bye\|quit " tty.out
if ldd "$CFL_BIN" 2>/dev/null | grep -q libedit; then
	check "list_j<TAB> completes to list_jobs, which runs" grep -Eq "^$id +fedavg-digits" tty.out
	check "check_status cl<TAB> completes to client, which runs" \
		grep -Eq '^name +address +security' tty.out
else
	echo "skipped: completion needs a cfl built with libedit"
fi

# --- the library reads no terminal, prints nothing and links no libedit ---------------------------------
libs=$(ls "${CFL_BUILD:-/nonexistent}"/libcfl_*.a 2>/dev/null)
if [ -n "$libs" ]; then
	bad=$(for l in $libs; do nm -u "$l" 2>/dev/null; done |
		grep -wE 'stdin|stdout|fgets|getline|isatty|readline|add_history|rl_callback_read_char|printf|puts|putchar' |
		sort -u | tr -s ' \n' ' ')
	check "the library ($(echo $libs | wc -w) modules) uses no stdin, stdout, printf, isatty or libedit (${bad:-none})" test -z "$bad"
else
	echo "skipped: the library check needs CFL_BUILD (run through ctest)"
fi

# --- abort, remove, shutdown: one-line answers ------------------------------------------------------
out=$(adm --cmd "abort_job $id" 2>&1)
check "abort_job prints 'aborted job $id': $out" test "$out" = "aborted job $id"
adm --cmd "list_jobs" >jobs2.out 2>&1
check "the aborted job is listed FINISHED:ABORTED with no duration known" \
	grep -Eqx "$id +fedavg-digits +FINISHED:ABORTED +0/5 +$when +-" jobs2.out
out=$(adm --cmd "remove_client site-1" 2>&1)
check "remove_client prints 'removed client site-1': $out" test "$out" = "removed client site-1"
check "site-1 logs in again by itself" \
	wait_for 20 sh -c "test \$(grep -c 'logged in to localhost:$port' '$T/site-1.log') -ge 2"
out=$(adm --cmd "shutdown client all" 2>&1)
check "shutdown client all prints 'asked every client to shut down': $out" \
	test "$out" = "asked every client to shut down"
wait_for 20 sh -c "! kill -0 $SITE_PID 2>/dev/null"
kill -KILL "$SITE_PID" 2>/dev/null # still there: the check below fails (exit 137)
wait "$SITE_PID"; rc=$?
check "site-1 exits 0 after the shutdown (exit $rc)" test $rc -eq 0
stop_bg "$SERVER_PID"; rc=$?
check "the server exits 0 on SIGTERM (exit $rc)" test $rc -eq 0
bad=$(grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T"/*.log "$T"/*.err 2>/dev/null | tr '\n' ' ')
check "no sanitizer report in any log (${bad:-none})" test -z "$bad"
finish
