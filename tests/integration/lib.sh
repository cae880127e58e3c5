# Shared helpers for integration tests (sourced). Each test gets a private temp dir that is
# removed on exit, with every process the test started.
set -u
CFL_BIN=${CFL_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/cfl}
CFL_SRC=${CFL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d /tmp/cfl-test.XXXXXX)
PIDS=""
FAILS=0
CHECKS=0

# CFL_TEST_KEEP=DIR: a copy of the test's temp folder (logs, kits) is kept there, for debugging.
cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$p" 2>/dev/null
	done
	[ -n "${CFL_TEST_KEEP:-}" ] && cp -r "$T" "$CFL_TEST_KEEP" 2>/dev/null; rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { CHECKS=$((CHECKS + 1)); printf 'ok   %s\n' "$*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); printf 'FAIL %s\n' "$*"; }
check() { # check "description" command...
	d=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$d"; else fail "$d"; fi
}
finish() {
	echo "$CHECKS checks, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}
# A tree listing with sizes and times: equal listings mean the tree did not change.
snapshot() { find "$1" -printf '%p %s %T@ %m\n' 2>/dev/null | sort; }

# A loopback address as the server logs it (extended regex): "localhost" resolves to 127.0.0.1
# or ::1 first depending on /etc/hosts (Debian's default lists both), so tests accept either.
LOOP='(127\.0\.0\.1|\[::1\])'

# Starts a command in the background with its output in a log file; records its pid.
# usage: start_bg LOGFILE cmd args...   (sets LAST_PID)
start_bg() {
	log=$1; shift
	"$@" >"$log" 2>&1 &
	LAST_PID=$!
	PIDS="$PIDS $LAST_PID"
}

# Drops PID from the processes the clean-up stops (it was waited for: the number may be reused).
forget_pid() {
	local p rest=""
	for p in $PIDS; do [ "$p" = "$1" ] || rest="$rest $p"; done
	PIDS=$rest
}

# Waits until FILE contains PATTERN (grep -E), at most SECONDS; returns 1 on timeout.
wait_log() {
	f=$1; pat=$2; secs=${3:-10}
	i=0
	while [ $i -lt $((secs * 10)) ]; do
		grep -Eq "$pat" "$f" 2>/dev/null && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

# Stops a background process: SIGNAL (default TERM), then SIGKILL if it is still there after
# 5 s. Returns its exit status as the shell reports it (128+N when signal N ended it) and
# records it in STOP_RC, with STOP_KILLED=1 when it had to be killed.
stop_bg() { # stop_bg PID [SIGNAL]
	STOP_KILLED=0
	kill -"${2:-TERM}" "$1" 2>/dev/null
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1" 2>/dev/null
		STOP_KILLED=1
	fi
	wait "$1" 2>/dev/null
	STOP_RC=$?
	forget_pid "$1"
	return $STOP_RC
}

# An exit status in words: "0", "139 (SIGSEGV)".
status_text() {
	if [ "$1" -gt 128 ] && [ "$1" -lt 192 ]; then
		echo "$1 (SIG$(kill -l $(($1 - 128)) 2>/dev/null || echo "?"))"
	else
		echo "$1"
	fi
}

# Stops a background process and checks its exit status: CLEAN (default 0, what every cfl
# process returns after SIGTERM or SIGINT) passes, anything else (a crash or a sanitizer
# report while tearing down, a hang that needed SIGKILL) fails naming the process.
stop_check() { # stop_check NAME PID [SIGNAL [CLEAN]]
	stop_bg "$2" "${3:-TERM}"
	if [ "$STOP_RC" -eq "${4:-0}" ] && [ "$STOP_KILLED" -eq 0 ]; then
		ok "$1 exits $STOP_RC after SIG${3:-TERM}"
	else
		fail "$1 exits with status $(status_text "$STOP_RC") after SIG${3:-TERM}, not ${4:-0}$([ "$STOP_KILLED" -eq 1 ] && echo " (still running after 5 s: killed)")"
	fi
}

# Ports: a number picked here and released could be taken by another process before a server
# binds it. So a server listens where the kernel puts it (--port 0) and writes its ports to a
# file; clients and admins get them with --server :PORT (the kit's host, so the certificate
# check is unchanged). Kits still name a port, project.yml needs one: it is not used.

# Waits (10 s at most, less if process PID ends) until FILE holds "FED ADMIN", the ports a
# server listens on; sets FED_PORT and ADMIN_PORT. Returns 1 if it did not come.
wait_ports() { # wait_ports FILE [PID]
	local i=0
	FED_PORT="" ADMIN_PORT=""
	while [ ! -s "$1" ] && [ $i -lt 100 ]; do
		[ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null && break
		sleep 0.1; i=$((i + 1))
	done
	read -r FED_PORT ADMIN_PORT <"$1" 2>/dev/null && [ -n "$ADMIN_PORT" ]
}

# Starts `cfl server KIT OPTIONS` (default: --port 0) with its output in LOG and waits until it
# listens. Sets LAST_PID, FED_PORT and ADMIN_PORT; returns 1 after a FAIL line if it did not
# start. Environment for the server: prefix the call (VAR=value start_server ...).
SERVERS=0
start_server() { # start_server LOG KIT [cfl server options]
	local log=$1 kit=$2 pf
	shift 2
	[ $# -gt 0 ] || set -- --port 0
	SERVERS=$((SERVERS + 1))
	pf="$T/ports.$SERVERS"
	start_bg "$log" "$CFL_BIN" server "$kit" --port-file "$pf" "$@"
	wait_ports "$pf" "$LAST_PID" && return 0
	fail "cfl server $kit $* did not start: $(tail -n 3 "$log")"
	return 1
}

# Provisions a project file into a workspace; prints the prod folder.
provision() { "$CFL_BIN" provision -p "$1" -w "$2" 2>>"$T/provision.log"; }

# Provisions FILE into $T/ws and sets P to the prod folder; a test that cannot provision ends
# here (a FAIL line with provisioning's errors, exit 1). usage: provision_or_exit FILE KIT
# (KIT: a participant whose kit must exist, e.g. the server's name).
provision_or_exit() {
	P=$(provision "$1" "$T/ws")
	[ -n "$P" ] && [ -d "$P/$2" ] && return 0
	fail "provisioning: $(cat "$T/provision.log")"
	finish
	exit 1
}

# --- projects and jobs, through the admin's --json answers ----------------------------------------

# The server's entry in a project's participants: "localhost", org test, one port for sites and
# admins. Further lines of its own may follow it in the caller's text.
server_participant() {
	cat <<YML
  - name: localhost
    type: server
    org: test
    fed_learn_port: 8002
    admin_port: 8002
    host_names: [localhost, 127.0.0.1]
YML
}
PROJECT_ADMIN="{name: admin@test.org, type: admin, org: test, role: project_admin}"

# Writes the project NAME to FILE: connection_security SECURITY (none if empty: mtls), the
# server, a client (org test) for each name in SITES, then each PARTICIPANT as it is (a YAML
# flow mapping, such as "$PROJECT_ADMIN").
project_yml() { # project_yml FILE NAME SECURITY "SITE..." [PARTICIPANT...]
	local file=$1 name=$2 sec=$3 sites=$4 s p
	shift 4
	{
		printf 'api_version: 3\nname: %s\n' "$name"
		[ -z "$sec" ] || printf 'connection_security: %s\n' "$sec"
		echo "participants:"
		server_participant
		for s in $sites; do echo "  - {name: $s, type: client, org: test}"; done
		for p in "$@"; do echo "  - $p"; done
	} >"$file"
}

# One console command as admin WHO (a kit in $P) against the server at :$port (the test sets
# port, usually port=$FED_PORT after start_server): the JSON answer on stdout, stderr in
# $T/adm.err (the last command's). At most ADM_TIMEOUT seconds (default 60).
ADMIN=admin@test.org
ADM_TIMEOUT=60
adm_as() { # adm_as WHO COMMAND...
	local who=$1
	shift
	timeout "$ADM_TIMEOUT" "$CFL_BIN" admin "$P/$who" --server ":$port" --cmd "$*" --json \
		2>"$T/adm.err"
}
adm() { adm_as "$ADMIN" "$@"; } # as $ADMIN (admin@test.org unless the test says otherwise)

# Reads JSON on stdin and prints the Python expression $1 of it (d = the document): lists and
# objects as JSON; fails on bad JSON or a missing key. The interpreter: $PY, else python3.
js() { "${PY:-python3}" -c 'import json, sys
try:
    d = json.load(sys.stdin)
    v = eval(sys.argv[1])
except Exception:
    sys.exit(1)
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1"; }

job_json() { adm "list_jobs $1" | js 'd["jobs"][0]'; }        # job_json ID
job_field() { adm "list_jobs $1" | js "d['jobs'][0]['$2']"; } # job_field ID FIELD
submit() { adm "submit_job $1" | js 'd["job_id"]'; }          # submit FOLDER: prints the id
submit_as() { adm_as "$1" "submit_job $2" | js 'd["job_id"]'; } # submit_as WHO FOLDER

# Polls the job's status until it matches PATTERN (grep -E), at most SECONDS; says what it was
# on a timeout.
wait_status() { # wait_status ID PATTERN SECONDS
	local i=0 st=""
	while [ $i -lt $(($3 * 4)) ]; do
		st=$(job_field "$1" status)
		echo "$st" | grep -Eq "$2" && return 0
		sleep 0.25; i=$((i + 1))
	done
	echo "  job $1: status '$st' after $3 s, wanted $2"
	return 1
}

# Polls until COMMAND succeeds (its output dropped), at most SECONDS.
wait_for() { # wait_for SECONDS COMMAND...
	local secs=$1 i=0
	shift
	while [ $i -lt $((secs * 5)) ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2; i=$((i + 1))
	done
	return 1
}

# The processes whose command line holds $MARK (a marker the test put in its jobs' command
# lines), as pids on one line; no_strays: there is none.
strays() { pgrep -f -- "$MARK" | tr '\n' ' '; }
no_strays() { [ -z "$(strays)" ]; }

# Writes the two-org mtls project NAME to FILE: the server "localhost" and site-a in org a,
# site-b in org b; admins admin@a.org (project_admin), lead@a.org and lead@b.org (lead),
# member@a.org (member).
two_org_project() { # two_org_project FILE NAME
	cat >"$1" <<YML
api_version: 3
name: $2
connection_security: mtls
participants:
  - name: localhost
    type: server
    org: a
    fed_learn_port: 8002
    admin_port: 8002
    host_names: [localhost, 127.0.0.1]
  - {name: site-a, type: client, org: a}
  - {name: site-b, type: client, org: b}
  - {name: admin@a.org, type: admin, org: a, role: project_admin}
  - {name: lead@a.org, type: admin, org: a, role: lead}
  - {name: lead@b.org, type: admin, org: b, role: lead}
  - {name: member@a.org, type: admin, org: a, role: member}
YML
}
