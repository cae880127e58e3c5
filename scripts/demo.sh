#!/bin/sh
# make demo: provision examples/project.yml into a temp workspace, verify every kit, show them.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cfl=$top/build/cfl
ws=$(mktemp -d /tmp/cfl-demo.XXXXXX)
trap 'rm -rf "$ws"' EXIT

echo "== cfl provision -p examples/project.yml -w $ws"
out=$("$cfl" provision -p "$top/examples/project.yml" -w "$ws")
echo "   -> $out"
echo
echo "== cfl kit verify, every kit"
for kit in "$out"/*/; do
	"$cfl" kit verify "${kit%/}"
done
echo
echo "== the kits"
(cd "$out" && find . -mindepth 1 | sort | sed 's#^\./##; s#[^/]*/#  #g')
echo
echo "== server certificate"
openssl x509 -in "$out/server1/startup/server.crt" -noout -subject -issuer -ext subjectAltName,extendedKeyUsage 2>/dev/null | sed 's/^/   /'
