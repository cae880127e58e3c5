#!/bin/bash
# Admission control at the size of issue 12's acceptance: 10,000 junk connections from one
# address (held open, half sending a partial TLS record, reopened a second after the server
# closes them) while 100 honest sites (`cfl client` processes) log in. Prints the figures of
# tests/integration/test_admission.sh (which `make check` runs with 2,000 and 40): time for
# every site to log in, the admin console's check_status time, the server's peak RSS, the
# refusal lines. usage: bench/bench_admission.sh [JUNK [SITES [HOLD_SECONDS]]]
# (build first: scripts/build.sh build).
cd "$(dirname "$0")/.." || exit 1
export JUNK=${1:-10000} SITES=${2:-100} HOLD=${3:-30} LOGIN_WAIT=60
exec bash tests/integration/test_admission.sh
