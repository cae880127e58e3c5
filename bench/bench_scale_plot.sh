#!/bin/sh
# The Scale plot of docs/BENCHMARKS.md: server RSS and login time against the number of sites.
#
#   bench/bench_scale_plot.sh [-r RUNS] [-o OUT.svg] [-c CSV] [-l DIR] [N...] (N: 1000 5000 19000)
#   bench/bench_scale_plot.sh --from CSV [-o OUT.svg]                     (plot only)
#
# Runs build/bench_scale N (under nice) RUNS times for each N (3 by default), appends one row per
# run to CSV (n,run,rc,login_s,rss_kib,rss_per_session_kib,round_s) and, with -l, each run's
# whole output to DIR/scale-N-RUN.txt, then writes a plain SVG (no
# plotting package): the median of the runs of each N as a line, every run as a dot, for the
# server's memory for the N sessions (its VmRSS growth from start to every site logged in, MiB)
# and the time to log them all in (s).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
runs=3
svg="$top/docs/scale.svg"
csv=""
from=""
logs=""
while [ $# -gt 0 ]; do
	case "$1" in
	-r) runs=$2; shift 2 ;;
	-o) svg=$2; shift 2 ;;
	-c) csv=$2; shift 2 ;;
	-l) logs=$2; shift 2 ;;
	--from) from=$2; shift 2 ;;
	-h | --help)
		sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*) echo "bench_scale_plot: unknown option $1 (--help)" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || set -- 1000 5000 19000

if [ -n "$from" ]; then
	csv=$from
else
	[ -n "$csv" ] || csv="${svg%.svg}.csv"
	bench="$top/build/bench_scale"
	[ -x "$bench" ] || { echo "bench_scale_plot: build $bench first" >&2; exit 1; }
	[ -s "$csv" ] || echo "n,run,rc,login_s,rss_kib,rss_per_session_kib,round_s" >"$csv"
	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	for n in "$@"; do
		r=1
		while [ "$r" -le "$runs" ]; do
			rc=0
			nice "$bench" "$n" >"$tmp" 2>&1 || rc=$?
			# "logged in  N of N in 13.14 s (...)", "server VmRSS  A -> B KiB: 34.6 KiB per
			# session", "round (submit to FINISHED) 4.48 s: ..."
			awk -v n="$n" -v r="$r" -v rc="$rc" '
				/^  logged in / { for (i = 1; i < NF; i++) if ($i == "in" && $(i + 2) == "s") login = $(i + 1) }
				/^  server VmRSS  / { rss = $5; per = $7 }
				/^  round \(submit/ { rnd = $5 }
				END { printf "%s,%s,%s,%s,%s,%s,%s\n", n, r, rc, login, rss, per, rnd }' \
				"$tmp" >>"$csv"
			[ -z "$logs" ] || cp "$tmp" "$logs/scale-$n-$r.txt"
			echo "bench_scale $n, run $r: $(tail -n 1 "$csv")" >&2
			r=$((r + 1))
		done
	done
fi

# Medians per N (runs with exit status 0 and figures), then the two charts side by side.
awk -F, '
NR == 1 || $3 != 0 || $4 == "" || $6 == "" { next }
{ k = $1; c[k]++; L[k, c[k]] = $4; M[k, c[k]] = $6 * $1 / 1024; if (!(k in seen)) { seen[k] = 1; ns[++nn] = k } }
function median(A, k, m,    i, j, t, v) {
	for (i = 1; i <= m; i++) v[i] = A[k, i]
	for (i = 2; i <= m; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
	return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
}
function nice_max(v,    s) { s = 1; while (s * 10 < v) s *= 10; return v <= 2 * s ? 2 * s : v <= 5 * s ? 5 * s : 10 * s }
function chart(ox, title, unit, A, ymax,    i, j, k, x, y, pts, v, gy) {
	printf "<text x=\"%d\" y=\"%d\" font-size=\"13\">%s</text>\n", ox + l, t - 10, title
	for (i = 0; i <= 5; i++) {
		v = ymax * i / 5; gy = t + ph - ph * i / 5
		printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", ox + l, gy, ox + l + pw, gy
		printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", ox + l - 6, gy + 4, v
	}
	for (i = 0; i <= 4; i++) {
		x = ox + l + pw * i / 4
		printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", x, t + ph + 16, xmax * i / 4
	}
	printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">sites (N)</text>\n", ox + l + pw / 2, t + ph + 34
	printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 %d %d)\">%s</text>\n", ox + 14, t + ph / 2, ox + 14, t + ph / 2, unit
	pts = ""
	for (i = 1; i <= nn; i++) {
		k = ns[i]; x = ox + l + pw * k / xmax
		for (j = 1; j <= c[k]; j++)
			printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"#9ecae1\"/>\n", x, t + ph - ph * A[k, j] / ymax
		y = t + ph - ph * median(A, k, c[k]) / ymax
		pts = pts sprintf("%.1f,%.1f ", x, y)
		printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#1f77b4\"/>\n", x, y
		printf "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#1f77b4\">%.1f</text>\n", x - 6, y - 6, median(A, k, c[k])
	}
	printf "<polyline points=\"%s\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n", pts
}
END {
	if (nn == 0) { print "bench_scale_plot: no successful run to plot" > "/dev/stderr"; exit 1 }
	# Sort the N ascending, and the scales.
	for (i = 2; i <= nn; i++) for (j = i; j > 1 && ns[j - 1] + 0 > ns[j] + 0; j--) { tt = ns[j]; ns[j] = ns[j - 1]; ns[j - 1] = tt }
	xmax = nice_max(ns[nn]); lmax = 0; mmax = 0
	for (i = 1; i <= nn; i++) for (j = 1; j <= c[ns[i]]; j++) {
		if (L[ns[i], j] > lmax) lmax = L[ns[i], j]
		if (M[ns[i], j] > mmax) mmax = M[ns[i], j]
	}
	w = 900; h = 380; l = 60; t = 50; pw = 360; ph = 260
	printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", w, h
	printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
	printf "<text x=\"%d\" y=\"18\" font-size=\"14\">cfl server with N mTLS sites (bench_scale): line = median, dots = runs</text>\n", l
	chart(0, "server memory of the N sessions (VmRSS growth)", "MiB", M, nice_max(mmax))
	chart(450, "time to log every site in", "seconds", L, nice_max(lmax))
	printf "</svg>\n"
}' "$csv" >"$svg.tmp"
mv "$svg.tmp" "$svg"
echo "bench_scale_plot: $svg (from $csv)" >&2
