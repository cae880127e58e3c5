# Shared helpers for integration tests (sourced). Each test gets a private temp dir that is
# removed on exit, with every process the test started.
set -u
CFL_BIN=${CFL_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/cfl}
CFL_SRC=${CFL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d /tmp/cfl-test.XXXXXX)
PIDS=""
FAILS=0
CHECKS=0

cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$T"
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

# A free TCP port on loopback, chosen now (the kernel's pick for an ephemeral bind).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

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

# Provisions a project file into a workspace; prints the prod folder.
provision() { "$CFL_BIN" provision -p "$1" -w "$2" 2>>"$T/provision.log"; }
