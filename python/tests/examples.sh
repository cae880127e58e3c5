#!/bin/sh
# The Python examples under `cfl simulate -n 2` (ctest python/examples):
#  - hello-numpy: the global model after 3 rounds must be exactly [[1..9]] + 3 * 1.5;
#  - pytorch-fmnist: 2 rounds on a 2000-sample slice, from_site initial weights, metrics.
# Uses the first python3 with numpy (CFL_PYTHON, /usr/bin/python3, python3 on PATH) as the
# sites' `python3`; exit 77 (skipped) without one. pytorch-fmnist is skipped without torch or
# the dataset. Needs CFL_BIN (the cfl program) and CFL_SRC.
set -eu
src=${CFL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${CFL_BIN:-$src/build/cfl}
py=""
for c in ${CFL_PYTHON:-} /usr/bin/python3 python3; do
	if "$c" -c 'import sys, numpy; assert sys.version_info >= (3, 11)' 2>/dev/null; then
		py=$(command -v "$c")
		break
	fi
done
if [ -z "$py" ]; then
	echo "SKIP: no python3 >= 3.11 with numpy (install python3-numpy: scripts/deps.sh check)"
	exit 77
fi
tmp=$(mktemp -d /tmp/cfl-pyex.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/bin"
ln -s "$py" "$tmp/bin/python3"
PATH="$tmp/bin:/usr/bin:/bin"
export PATH PYTHONPATH="$src/python"

fail() {
	echo "FAIL: $*"
	for f in "$tmp"/ws-*/server.log "$tmp"/ws-*/site-*.log; do
		[ -f "$f" ] && { echo "== $f"; tail -n 25 "$f"; }
	done
	exit 1
}

# simulate NAME JOB: runs the job, output in $tmp/NAME.out, workspace $tmp/ws-NAME.
simulate() {
	timeout 600 "$bin" simulate "$2" -n 2 -w "$tmp/ws-$1" >"$tmp/$1.out" 2>&1 || fail "$1: cfl simulate exited $?"
	cat "$tmp/$1.out"
	grep -q 'FINISHED:COMPLETED' "$tmp/$1.out" || fail "$1: the job did not complete"
}

# The final global model of the simulation NAME.
final_model() {
	m=$(find "$tmp/ws-$1" -name model.safetensors -newer "$tmp/bin" | head -n 1)
	[ -n "$m" ] || fail "$1: no model.safetensors in the workspace"
	echo "$m"
}

echo "== hello-numpy ($py)"
simulate hn "$src/examples/jobs/hello-numpy"
"$py" - "$(final_model hn)" <<'PY' || fail "hello-numpy: wrong global model"
import sys
import numpy as np
from cfl import safetensors
got = safetensors.load_file(sys.argv[1])
want = np.arange(1, 10, dtype=np.float32).reshape(3, 3) + 3 * 1.5
print("global model after 3 rounds:", got["numpy_key"].tolist())
assert list(got) == ["numpy_key"], list(got)
assert np.array_equal(got["numpy_key"], want), (got["numpy_key"], want)
PY

if ! "$py" -c 'import torch' 2>/dev/null || [ ! -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then
	echo "pytorch-fmnist: skipped (no torch or no dataset-fashion-mnist)"
	exit 0
fi
echo "== pytorch-fmnist, 2000 samples a site, 2 rounds"
cp -r "$src/examples/jobs/pytorch-fmnist" "$tmp/fm"
"$py" - "$tmp/fm/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["workflow"]["num_rounds"] = 2
c["executor"]["command"] += ["--limit", "2000", "--threads", "1"]
json.dump(c, open(p, "w"), indent=2)
PY
simulate fm "$tmp/fm"
"$py" "$src/examples/jobs/pytorch-fmnist/client.py" --evaluate "$(final_model fm)" --limit 2000 --threads 1 |
	tee "$tmp/fm.acc"
"$py" - "$tmp/fm.acc" <<'PY' || fail "pytorch-fmnist: accuracy too low"
import sys
acc = float(open(sys.argv[1]).read().split()[-1])
assert acc >= 0.6, acc
PY
grep -rq 'local_accuracy' "$tmp/ws-fm" || fail "pytorch-fmnist: no SummaryWriter metric reached the server"
echo "ok"
