#!/bin/sh
# Configures and builds quietly: the output goes to BUILD/build.log and is shown only when
# something fails, so `make demo` prints its own lines, not the compiler's.
# Usage: scripts/build.sh BUILD_DIR [cmake -D options...] [-- targets...]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$1
shift
opts=""
targets=""
while [ $# -gt 0 ]; do
	case "$1" in
	--) shift; targets="$*"; break ;;
	*) opts="$opts $1" ;;
	esac
	shift
done
mkdir -p "$build"
log="$build/build.log"
jobs=$(nproc 2>/dev/null || echo 2)
# shellcheck disable=SC2086
if ! { cmake -S "$top" -B "$build" $opts &&
	if [ -n "$targets" ]; then
		for t in $targets; do cmake --build "$build" -j"$jobs" --target "$t" || exit 1; done
	else
		cmake --build "$build" -j"$jobs"
	fi; } >"$log" 2>&1; then
	echo "the build failed; the last lines of $log:" >&2
	tail -n 40 "$log" >&2
	exit 1
fi
