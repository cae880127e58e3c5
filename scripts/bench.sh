#!/bin/sh
# Runs every benchmark program once and prints its figures.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
for b in "$top"/build/bench/bench_* "$top"/build/bench_*; do
	[ -x "$b" ] || continue
	echo "== $(basename "$b")"
	"$b"
	echo
done
for b in "$top"/bench/*.sh; do
	echo "== $(basename "$b")"
	"$b"
	echo
done
