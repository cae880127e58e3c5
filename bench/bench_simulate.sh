#!/bin/sh
# The simulator's fixed cost (docs/BENCHMARKS.md "Simulator fixed cost"): wall time of the whole
# `cfl simulate` process for a 9-float synthetic FedAvg job (the size of FLARE's hello-numpy
# 3x3 array), 2 sites x 3 rounds and 8 sites x 5 rounds; the median of 5 runs after 1 warm-up.
#
# Usage: bench/bench_simulate.sh [CFL [BASELINE_CFL]] [-n RUNS]
#   CFL           the program to time (default: build/cfl of this tree)
#   BASELINE_CFL  another cfl (an older build): timed in turn with CFL, run for run, and the
#                 ratio CFL/BASELINE of each pair is given (its median)
# Timing is farm-bench's when it is installed (the whole process, from outside), else this
# script's own clock around each run.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
runs=5
args=""
while [ $# -gt 0 ]; do
	case "$1" in
	-n) runs=$2; shift 2 ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) args="$args $1"; shift ;;
	esac
done
# shellcheck disable=SC2086
set -- $args
cfl=${1:-$top/build/cfl}
base=${2:-}
[ -x "$cfl" ] || { echo "no program '$cfl' (build it: scripts/build.sh build -- cfl)" >&2; exit 1; }
[ -z "$base" ] || [ -x "$base" ] || { echo "no program '$base'" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-sim.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# job DIR ROUNDS MIN_CLIENTS
job() {
	mkdir -p "$1"
	printf '{"name": "synthetic-9", "description": "9 floats, no data"}\n' >"$1/meta.json"
	printf '{\n  "workflow": {"name": "fedavg", "num_rounds": %d, "min_clients": %d},\n  "executor": {"type": "builtin", "dataset": "synthetic", "floats": 9},\n  "sites": ["@ALL"]\n}\n' \
		"$2" "$3" >"$1/config.json"
}
job "$tmp/r3" 3 2
job "$tmp/r5" 5 8

# median of the numbers on stdin
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "%.3f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# own_clock PROGRAM JOB SITES: the wall seconds of each run, one a line
own_clock() {
	"$1" simulate "$2" -n "$3" >/dev/null 2>&1 # warm-up
	i=0
	while [ "$i" -lt "$runs" ]; do
		t0=$(date +%s.%N)
		"$1" simulate "$2" -n "$3" >/dev/null 2>&1 || echo "run failed: $1 simulate $2 -n $3" >&2
		t1=$(date +%s.%N)
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
		i=$((i + 1))
	done
}

# case LABEL JOB SITES
case_() {
	if command -v farm-bench >/dev/null 2>&1; then
		if [ -n "$base" ]; then
			out=$(farm-bench -n "$runs" --timeout 600 --vs "$base simulate $2 -n $3" -- \
				"$cfl" simulate "$2" -n "$3" 2>&1)
		else
			out=$(farm-bench -n "$runs" --timeout 600 -- "$cfl" simulate "$2" -n "$3" 2>&1)
		fi
		echo "$out" | grep -q "A exit 0 ($runs of $runs)" || { echo "$out" >&2; echo "$1: a run failed" >&2; return 1; }
		a=$(echo "$out" | awk '$1 == "A" && $2 == "wall" { print $4 }')
		b=$(echo "$out" | awk '$1 == "B" && $2 == "wall" { print $4 }')
		r=$(echo "$out" | awk '$1 == "A/B" && $2 == "wall" { print $4 }')
	else
		a=$(own_clock "$cfl" "$2" "$3" | median)
		b=""
		r=""
		if [ -n "$base" ]; then
			b=$(own_clock "$base" "$2" "$3" | median)
			r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')
		fi
	fi
	if [ -n "$base" ]; then
		printf '%-6s median wall %s s   baseline %s s   ratio %s (median of pairs)\n' "$1" "$a" "$b" "$r"
	else
		printf '%-6s median wall %s s\n' "$1" "$a"
	fi
}

echo "cfl simulate, 9-float synthetic FedAvg job, median of $runs runs ($(command -v farm-bench >/dev/null 2>&1 && echo farm-bench || echo own clock))"
case_ "2 x 3" "$tmp/r3" 2
case_ "8 x 5" "$tmp/r5" 8
