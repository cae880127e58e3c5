#!/bin/bash
# The simulator (SPEC §8, docs/jobs.md): `cfl simulate` runs a job with a server and N clients
# on this machine. The digits FedAvg job with 8 sites completes in a few seconds and learns; the
# external-python job (an external command executor) completes; a job that cannot run ends in
# FINISHED:EXECUTION_EXCEPTION with exit 1; usage errors exit 2.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# The built-in trainer's digits (the build folder may be anywhere) and train.py's.
export CFL_DATA_DIR="$CFL_SRC/data"
export CFL_DIGITS="$CFL_SRC/data/digits.csv.gz"
# The wall-time bound of the digits run holds for an optimised build, not under ASan/UBSan.
case "${CFL_BUILD:-}" in
*asan*) DIGITS_MAX_S=60 ;;
*) DIGITS_MAX_S=5 ;;
esac
EXTERNAL_MAX_S=90 # pure Python, 3 rounds: a few seconds when the machine is idle

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
# The metric rows "round clients train_loss test_accuracy" of the simulator's table.
rows() { awk '$1 ~ /^[0-9]+$/ && NF == 4' "$1"; }

# --- fedavg-digits, 8 sites ---------------------------------------------------------------------
t0=$(now)
timeout 300 "$CFL_BIN" simulate "$CFL_SRC/examples/jobs/fedavg-digits" -n 8 >digits.out 2>digits.err
rc=$?
t1=$(now)
secs=$(elapsed "$t0" "$t1")
echo "cfl simulate examples/jobs/fedavg-digits -n 8: $secs s wall time (bound $DIGITS_MAX_S s)"
sed 's/^/  | /' digits.out
check "the digits simulation exits 0 (exit $rc)" test $rc -eq 0
check "the job ends FINISHED:COMPLETED" grep -q "FINISHED:COMPLETED" digits.out
check "5 rounds are reported" test "$(rows digits.out | wc -l)" -eq 5
rows digits.out >digits.rows
check "every round aggregated the 8 sites" test "$(awk '$2 != 8' digits.rows | wc -l)" -eq 0
check "the rounds are numbered 1..5" test "$(awk '{ print $1 }' digits.rows | tr '\n' ' ')" = "1 2 3 4 5 "
acc=$(awk 'END { print $4 }' digits.rows)
check "final test accuracy $acc > 0.85" lt 0.85 "${acc:-0}"
check "the train loss goes down (round 1 vs round 5)" \
	awk 'NR == 1 { a = $3 } END { exit !($3 < a) }' digits.rows
check "the whole run takes less than $DIGITS_MAX_S s ($secs s)" lt "$secs" "$DIGITS_MAX_S"
check "the server's peak memory is printed" grep -q "server peak RSS: [0-9.]* MiB" digits.out

# --- external-python: the job's own program (plain python3) on each site -------------------------
if command -v python3 >/dev/null 2>&1; then
	t0=$(now)
	timeout 600 "$CFL_BIN" simulate "$CFL_SRC/examples/jobs/external-python" -n 2 -w "$T/ext" \
		>ext.out 2>ext.err
	rc=$?
	secs=$(elapsed "$t0" "$(now)")
	echo "cfl simulate examples/jobs/external-python -n 2: $secs s wall time (bound $EXTERNAL_MAX_S s)"
	sed 's/^/  | /' ext.out
	rows ext.out >ext.rows
	check "the external-python simulation exits 0 (exit $rc)" test $rc -eq 0
	check "the job ends FINISHED:COMPLETED" grep -q "FINISHED:COMPLETED" ext.out
	check "3 rounds with 2 updates each" \
		sh -c "test \$(wc -l <\"\$1\") -eq 3 && test \$(awk '\$2 == 2' \"\$1\" | wc -l) -eq 3" _ ext.rows
	check "the train loss reported by train.py goes down" \
		awk 'NR == 1 { a = $3 } END { exit !(NR == 3 && $3 < a && a > 0) }' ext.rows
	check "each site ran train.py in every round" \
		sh -c "for s in 1 2; do test \$(grep -c 'round [0-9]*: trained on' \"$T/ext/site-\$s.log\") -eq 3 || exit 1; done"
	check "the workspace (-w) keeps the kits and logs" test -s "$T/ext/server.log"
	check "it completes within $EXTERNAL_MAX_S s ($secs s)" lt "$secs" "$EXTERNAL_MAX_S"
	# The model is 650 floats and the server has no data to evaluate it with (test accuracy -1):
	# its memory should stay near the digits run's, not hold a dataset.
	rss=$(sed -n 's/^server peak RSS: \([0-9.]*\) MiB/\1/p' ext.out)
	check "the server's peak memory for the external job stays under 64 MiB (${rss:-?} MiB)" \
		lt "${rss:-1e9}" 64
	# A program that reports a negative step count (its FedAvg weight) fails its round, named.
	cp -r "$CFL_SRC/examples/jobs/external-python" "$T/negsteps"
	sed -i 's/json.dump({"steps": len(mine),/json.dump({"steps": -len(mine),/' "$T/negsteps/train.py"
	timeout 600 "$CFL_BIN" simulate "$T/negsteps" -n 2 -w "$T/neg" >neg.out 2>&1
	rc=$?
	check "a program reporting negative steps: the job fails (exit $rc)" \
		sh -c "test $rc -eq 1 && grep -q FINISHED:EXECUTION_EXCEPTION neg.out"
	check "the site says why: $(grep -ho "reported -[0-9]* steps[^\"]*" "$T"/neg/site-1.log | head -n 1)" \
		grep -q "reported -[0-9]* steps: not a positive count" "$T/neg/site-1.log"
else
	echo "skipped external-python: no python3"
fi

# --- a job that cannot run: its data is missing ---------------------------------------------------
mkdir -p nodata
cp "$CFL_SRC/examples/jobs/fedavg-digits/meta.json" nodata/
sed 's|"dataset": "digits",|"dataset": "digits", "data_path": "/nonexistent/digits.csv.gz",|' \
	"$CFL_SRC/examples/jobs/fedavg-digits/config.json" >nodata/config.json
timeout 120 "$CFL_BIN" simulate nodata -n 2 -w "$T/nodata-ws" >nodata.out 2>&1
rc=$?
check "a job whose data is missing: simulate exits 1 (exit $rc)" test $rc -eq 1
check "and reports FINISHED:EXECUTION_EXCEPTION" grep -q "FINISHED:EXECUTION_EXCEPTION" nodata.out
check "the server log says why" grep -q "nonexistent/digits.csv.gz" "$T/nodata-ws/server.log"

# --- usage --------------------------------------------------------------------------------------
usage_rc() { # expects exit 2 and the usage text on stderr
	out=$(timeout 20 "$CFL_BIN" simulate "$@" 2>&1 >/dev/null); rc=$?
	[ $rc -eq 2 ] && echo "$out" | grep -q "usage: cfl simulate"
}
job="$CFL_SRC/examples/jobs/fedavg-digits"
check "cfl simulate without arguments exits 2" usage_rc
check "cfl simulate without -n exits 2" usage_rc "$job"
check "cfl simulate -n 0 exits 2" usage_rc "$job" -n 0
check "cfl simulate -n 257 exits 2" usage_rc "$job" -n 257
check "cfl simulate -n abc exits 2" usage_rc "$job" -n abc
check "cfl simulate with two folders exits 2" usage_rc "$job" "$job" -n 2
check "cfl simulate with an unknown option exits 2" usage_rc "$job" -n 2 --bogus
check "cfl simulate -n without a value exits 2" usage_rc "$job" -n
out=$(timeout 20 "$CFL_BIN" simulate "$T/no-such-job" -n 2 2>&1); rc=$?
check "a missing job folder fails (exit $rc) naming it" \
	sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'no-such-job'" _ "$out"
check "cfl simulate --help exits 0 and prints the usage" \
	sh -c "'$CFL_BIN' simulate --help | grep -q 'usage: cfl simulate'"

# Sites returning weight differences (workflow.result "diff") give the same model as weights.
cp -r "$job" "$T/diff-job"
sed -i 's/"name": "fedavg",/"name": "fedavg", "result": "diff",/' "$T/diff-job/config.json"
w=$(timeout 60 "$CFL_BIN" simulate "$job" -n 4 2>&1 | grep -E '^ +[0-9]+ ')
d=$(timeout 60 "$CFL_BIN" simulate "$T/diff-job" -n 4 2>&1 | grep -E '^ +[0-9]+ ')
check "weight differences give the same rounds as weights ($(echo "$d" | tail -n 1 | awk '{print $4}'))" \
	sh -c "test -n \"\$1\" && test \"\$1\" = \"\$2\"" _ "$w" "$d"
finish
