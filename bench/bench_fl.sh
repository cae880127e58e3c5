#!/bin/sh
# FL runtime benchmark: (1) the server's peak RSS while aggregating a 100 MiB model from 2, 8
# and 32 sites (cfl simulate with the synthetic job: no data, the model is the whole cost), as a
# ratio to the model size; (2) time per FedAvg round on Fashion-MNIST with 3 sites beside the
# time the trainer alone takes for one site's share, measured in the same run.
# Usage: bench/bench_fl.sh [site counts...]   (default: 2 8 32)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cfl=$top/build/cfl
counts=${*:-2 8 32}
model_mib=100

echo "aggregation memory: synthetic job, ${model_mib} MiB model, 2 rounds"
printf '  %6s  %16s  %8s  %10s\n' sites "server peak RSS" "x model" "wall time"
for n in $counts; do
	t0=$(date +%s.%N)
	out=$("$cfl" simulate "$top/examples/jobs/synthetic-100mb" -n "$n" 2>&1)
	t1=$(date +%s.%N)
	rss=$(echo "$out" | sed -n 's/server peak RSS: \([0-9.]*\) MiB/\1/p')
	echo "$out" | grep -q FINISHED:COMPLETED || { echo "$out" | tail -n 5; exit 1; }
	awk -v n="$n" -v r="$rss" -v m="$model_mib" -v a="$t0" -v b="$t1" \
		'BEGIN { printf "  %6d  %12.1f MiB  %8.2f  %8.1f s\n", n, r, r / m, b - a }'
done

if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
	echo "time per round: fedavg-fmnist (MLP 784-128-10), 3 sites, 5 rounds of 1 local epoch"
	ws=$(mktemp -d /tmp/cfl-bench-fl.XXXXXX)
	"$cfl" simulate "$top/examples/jobs/fedavg-fmnist" -n 3 -w "$ws/sim" >/dev/null 2>&1
	csv=$(ls "$ws"/sim/simulation/prod_00/localhost/jobs/*/metrics.csv)
	med=$(tail -n +2 "$csv" | cut -d, -f6 | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	one=$("$cfl" train "$top/examples/jobs/fedavg-fmnist" --epochs 1 | sed -n 's/.*(\([0-9.]*\) s).*/\1/p')
	awk -v r="$med" -v t="$one" 'BEGIN {
		printf "  median round           %6.2f s\n", r
		printf "  trainer alone, 1 epoch %6.2f s on 60,000 samples (one site: 20,000 = %.2f s)\n", t, t / 3
		printf "  3 sites on 2 cores     %6.2f s of training per round at best (3 x %.2f s / 2)\n", t / 2, t / 3
		printf "  round / best training  %6.2f\n", r / (t / 2) }'
	rm -rf "$ws"
fi
