#!/bin/bash
# make demo: provision examples/project.yml (mTLS: a server, three sites, an admin), start the
# server and the sites as separate processes from their kits, submit the FedAvg job through the
# admin console, follow its rounds, compare with the same model trained centrally, write the
# metrics (CSV) and a plot (SVG), and stop everything.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
export CFL="$top/build/cfl"
job="$top/examples/jobs/fedavg-fmnist"
out=${CFL_DEMO_OUT:-$top/demo-output}
ws=$(mktemp -d /tmp/cfl-demo.XXXXXX)
P=""
t0=$(date +%s)

cleanup() {
	if [ -n "$P" ]; then
		for k in server1 site-1 site-2 site-3; do
			[ -f "$P/$k/pid.fl" ] && "$P/$k/startup/stop_fl.sh" >/dev/null 2>&1 || true
		done
	fi
	rm -rf "$ws"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
	echo "Fashion-MNIST is missing: run scripts/deps.sh demo (Debian's dataset-fashion-mnist)" >&2
	exit 1
fi
for port in 8002 8003; do
	if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
		echo "port $port is in use: the example project listens there" >&2
		exit 1
	fi
done

echo "== provision examples/project.yml"
P=$("$CFL" provision -p "$top/examples/project.yml" -w "$ws" 2>/dev/null)
for kit in "$P"/*/; do "$CFL" kit verify "${kit%/}" >/dev/null; done
echo "   kits in $P, all signatures verified"

echo "== start the server and three sites (mTLS, each its own process)"
"$P/server1/startup/start.sh"
for s in site-1 site-2 site-3; do "$P/$s/startup/start.sh"; done
admin() { "$CFL" admin "$P/admin@nvidia.com" "$@"; }
i=0
until [ "$(admin --cmd 'check_status client' --json 2>/dev/null | grep -o '"connected":true' | wc -l)" -ge 3 ]; do
	i=$((i + 1))
	[ $i -lt 150 ] || { echo "the sites did not log in; see $P/*/log.txt" >&2; exit 1; }
	sleep 0.2
done
admin --cmd "check_status client"

echo "== submit the FedAvg job (MLP 784-128-10 on Fashion-MNIST split among 3 sites)"
id=$(admin --cmd "submit_job $job" --json | sed -n 's/.*"job_id":"\([^"]*\)".*/\1/p')
[ -n "$id" ] || { echo "the job was not accepted" >&2; exit 1; }
echo "   job $id"
shown=0
while :; do
	st=$(admin --cmd "list_jobs $id" --json)
	echo "$st" | grep -o '"round":[0-9]*,"clients":[0-9]*,"train_loss":[-0-9.e]*,"test_accuracy":[-0-9.e]*' |
		sed 's/"round":\([0-9]*\),"clients":\([0-9]*\),"train_loss":\([-0-9.e]*\),"test_accuracy":\([-0-9.e]*\)/\1 \2 \3 \4/' |
		while read -r r c l a; do
			[ "$r" -gt "$shown" ] || continue
			printf '   round %s: %s sites, train loss %.4f, test accuracy %.4f\n' "$r" "$c" "$l" "$a"
		done
	shown=$(echo "$st" | sed -n 's/.*"rounds_done":\([0-9]*\).*/\1/p')
	case "$st" in *'"status":"FINISHED'*) break ;; esac
	sleep 1
done
status=$(echo "$st" | sed -n 's/.*"status":"\([^"]*\)".*/\1/p')
echo "   $status"
admin --cmd "download_job $id" >/dev/null
res="$P/admin@nvidia.com/transfer/$id"
mkdir -p "$out"
cp "$res/metrics.csv" "$out/metrics.csv"
cp "$res/model.safetensors" "$out/model.safetensors"
admin --cmd "shutdown client all" --json >/dev/null
"$P/server1/startup/stop_fl.sh" >/dev/null

rounds=$(tail -n +2 "$out/metrics.csv" | wc -l)
fed=$(tail -n 1 "$out/metrics.csv" | cut -d, -f4)
echo "== the same model trained centrally on all the data for the same $rounds epochs"
central=$("$CFL" train "$job" --epochs "$rounds" | sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p')

# The plot: test accuracy per round, with the central baseline as a line.
awk -F, -v central="$central" '
NR > 1 { n++; r[n] = $1; a[n] = $4 }
END {
	w = 640; h = 400; l = 60; b = 50; t = 30; rm = 20
	lo = 0.5; hi = 1.0
	printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", w, h
	printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
	printf "<text x=\"%d\" y=\"18\" font-size=\"14\">cfl FedAvg on Fashion-MNIST: test accuracy per round</text>\n", l
	for (v = lo; v <= hi + 1e-9; v += 0.1) {
		gy = t + (hi - v) / (hi - lo) * (h - t - b)
		printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", l, gy, w - rm, gy
		printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", l - 6, gy + 4, v
	}
	for (i = 1; i <= n; i++) {
		x[i] = l + (n > 1 ? (i - 1) / (n - 1) : 0.5) * (w - l - rm)
		y[i] = t + (hi - a[i]) / (hi - lo) * (h - t - b)
		printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", x[i], h - b + 16, r[i]
	}
	printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">round</text>\n", (w + l) / 2, h - 12
	pts = ""
	for (i = 1; i <= n; i++) pts = pts sprintf("%.1f,%.1f ", x[i], y[i])
	printf "<polyline points=\"%s\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n", pts
	for (i = 1; i <= n; i++) printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#1f77b4\"/>\n", x[i], y[i]
	if (central != "") {
		yc = t + (hi - central) / (hi - lo) * (h - t - b)
		printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#d62728\" stroke-dasharray=\"6,4\"/>\n", l, yc, w - rm, yc
		printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#d62728\">central %.4f</text>\n", w - rm, yc - 6, central
	}
	printf "</svg>\n"
}' "$out/metrics.csv" >"$out/accuracy.svg"

echo "== result"
printf '   federated (3 sites, %s rounds): test accuracy %.4f\n' "$rounds" "$fed"
printf '   central   (all data, %s epochs): test accuracy %.4f\n' "$rounds" "$central"
awk -v f="$fed" -v c="$central" 'BEGIN { d = (c - f) * 100; if (d < 0) d = -d; printf "   difference: %.2f points (%s)\n", d, d <= 2 ? "within 2 points" : "MORE than 2 points" }'
echo "   metrics: $out/metrics.csv, plot: $out/accuracy.svg, model: $out/model.safetensors"
echo "   $(($(date +%s) - t0)) s in all"
[ "$status" = "FINISHED:COMPLETED" ]
