#!/bin/sh
# PyTorch through FLARE's Client API: examples/jobs/pytorch-fmnist under `cfl simulate -n 2`
# (3 rounds of 1 local epoch, initial weights from the first site) against
#  - the same script trained centrally for 3 epochs (client.py --central), and
#  - the same training as a `command` executor started every round (command_step.py: Python,
#    torch and the data loaded again each round), so the start-up client_api pays once per job
#    shows as the difference in time per round.
# Prints the final global model's test accuracy, the time per round, the central baseline.
# Usage: bench/bench_pytorch.sh [--limit N]   (N training and test samples per site; default all)
# Needs build/cfl, a python3 with numpy and torch (/usr/bin/python3 first) and
# dataset-fashion-mnist. Output folder: $CFL_BENCH_DIR (default a temp folder, removed).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cfl=${CFL_BIN:-$top/build/cfl}
job=$top/examples/jobs/pytorch-fmnist
limit=0
[ "${1:-}" = "--limit" ] && limit=${2:?--limit N}
py=""
for c in ${CFL_PYTHON:-} /usr/bin/python3 python3; do
	if "$c" -c 'import numpy, torch' 2>/dev/null; then
		py=$(command -v "$c")
		break
	fi
done
[ -n "$py" ] || { echo "bench_pytorch: no python3 with numpy and torch (scripts/deps.sh check)" >&2; exit 1; }
[ -x "$cfl" ] || { echo "bench_pytorch: no $cfl (make)" >&2; exit 1; }
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
	{ echo "bench_pytorch: no dataset-fashion-mnist" >&2; exit 1; }

if [ -n "${CFL_BENCH_DIR:-}" ]; then
	tmp=$CFL_BENCH_DIR
	mkdir -p "$tmp"
else
	tmp=$(mktemp -d /tmp/cfl-bench-pt.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT INT TERM
fi
mkdir -p "$tmp/bin"
ln -sf "$py" "$tmp/bin/python3"
PATH="$tmp/bin:/usr/bin:/bin"
export PATH PYTHONPATH="$top/python"
extra=""
[ "$limit" -gt 0 ] && extra="--limit $limit"

# run NAME JOB: cfl simulate -n 2; prints the job's line; leaves the workspace in $tmp/ws-NAME.
run() {
	rm -rf "$tmp/ws-$1"
	"$cfl" simulate "$2" -n 2 -w "$tmp/ws-$1" >"$tmp/$1.out" 2>&1 || true
	if ! grep -q FINISHED:COMPLETED "$tmp/$1.out"; then
		tail -n 20 "$tmp/$1.out" "$tmp/ws-$1"/site-1.log >&2
		echo "bench_pytorch: $1 did not complete" >&2
		exit 1
	fi
}

# Seconds per round of the run NAME: the `seconds` column of its metrics.csv's first table
# (mean over the rounds), and the test accuracy of its final global model.
report() {
	dir=$(dirname "$(ls "$tmp/ws-$1"/simulation/prod_00/localhost/jobs/*/metrics.csv)")
	per=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") c = i; next }
		NF == 0 || $1 !~ /^[0-9]+$/ { if (n) exit; next } c { s += $c; n++ }
		END { if (n) printf "%.1f", s / n; else print "?" }' "$dir/metrics.csv")
	acc=$("$py" "$job/client.py" --evaluate "$dir/model.safetensors" --threads 2 $extra | awk '{ print $NF }')
	echo "$per $acc"
}

# client_api: the job as shipped (3 rounds, 1 epoch, from_site).
cp -r "$job" "$tmp/capi"
"$py" - "$tmp/capi/config.json" "$limit" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
if int(sys.argv[2]) > 0:
    c["executor"]["command"] += ["--limit", sys.argv[2]]
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
t0=$(date +%s.%N)
run capi "$tmp/capi"
t1=$(date +%s.%N)
set -- $(report capi)
capi_round=$1 capi_acc=$2

# command: one process per round and site, told where the cfl package is (the command
# executor does not set PYTHONPATH), the initial weights as a file.
cp -r "$job" "$tmp/cmd"
"$py" "$job/client.py" --save-initial "$tmp/cmd/initial.safetensors"
"$py" - "$tmp/cmd/config.json" "$limit" "$top/python" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["executor"] = {"type": "command", "command": ["python3", "command_step.py", "--pythonpath", sys.argv[3], "--epochs", "1"],
                 "initial_model": "initial.safetensors"}
if int(sys.argv[2]) > 0:
    c["executor"]["command"] += ["--limit", sys.argv[2]]
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
t2=$(date +%s.%N)
run cmd "$tmp/cmd"
t3=$(date +%s.%N)
set -- $(report cmd)
cmd_round=$1 cmd_acc=$2

# Central baseline: 3 epochs on all the data, one process (cores: 2, as the 2 sites share).
"$py" "$job/client.py" --central --epochs 3 --threads 2 $extra | tee "$tmp/central.out" | sed 's/^/  central /'
central_acc=$(tail -n 1 "$tmp/central.out" | sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p')
central_epoch=$(awk '{ gsub(",", ""); s += $(NF - 1); n++ } END { printf "%.1f", s / n }' "$tmp/central.out")

echo "pytorch-fmnist, 2 sites x 3 rounds x 1 epoch$( [ "$limit" -gt 0 ] && echo " ($limit samples per site)")"
printf '  %-34s %9s %14s %10s\n' "" accuracy "s per round" "job wall s"
awk -v a="$capi_acc" -v r="$capi_round" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
	'BEGIN { printf "  %-34s %9.4f %14s %10.1f\n", "client_api (started once per job)", a, r, w }'
awk -v a="$cmd_acc" -v r="$cmd_round" -v w="$(awk -v a="$t2" -v b="$t3" 'BEGIN { print b - a }')" \
	'BEGIN { printf "  %-34s %9.4f %14s %10.1f\n", "command (started every round)", a, r, w }'
awk -v a="$central_acc" -v e="$central_epoch" \
	'BEGIN { printf "  %-34s %9.4f %14s\n", "central, 3 epochs", a, e " /epoch" }'
awk -v c="$capi_round" -v m="$cmd_round" 'BEGIN { if (c > 0) printf "  command / client_api time per round: %.2f\n", m / c }'
