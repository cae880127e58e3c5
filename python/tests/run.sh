#!/bin/sh
# Runs the Python package's unit tests with an interpreter that has numpy: /usr/bin/python3
# first, then python3 on PATH (CFL_PYTHON overrides both). Exit 77 (skipped) if there is none.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
py=""
for c in ${CFL_PYTHON:-} /usr/bin/python3 python3; do
	if "$c" -c 'import sys, numpy; assert sys.version_info >= (3, 11)' 2>/dev/null; then
		py=$c
		break
	fi
done
if [ -z "$py" ]; then
	echo "SKIP: no python3 >= 3.11 with numpy (install python3-numpy: scripts/deps.sh check)"
	exit 77
fi
echo "python: $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec "$py" -m unittest discover -s "$here" -t "$here" "$@"
