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
