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
