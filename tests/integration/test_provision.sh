#!/bin/bash
# cfl provision and cfl kit verify, end to end, with the openssl CLI as the independent judge.
. "$(dirname "$0")/lib.sh"

W=$T/ws
cd "$T" || exit 1

# --- the seed's test25 example: tls project, clear server, custom CA -----------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=proxy-ca \
	-days 30 -keyout "$T/customRoot.key" -out "$T/customRoot.pem" 2>/dev/null
cat >"$T/test25.yml" <<YML
api_version: 3
name: test25
description: NVIDIA FLARE sample project yaml file
connection_security: tls
custom_ca_cert: $T/customRoot.pem
participants:
  - name: server
    type: server
    org: nvidia
    fed_learn_port: 8002
    admin_port: 8003
    connection_security: clear
  - name: site-1
    type: client
    org: nvidia
YML
out=$("$CFL_BIN" provision -p "$T/test25.yml" -w "$W" 2>"$T/err")
rc=$?
check "test25 provisions (exit 0)" test $rc -eq 0
check "test25 output is prod_00" test "$out" = "$W/test25/prod_00"
P=$W/test25/prod_00
check "server kit says clear" grep -q '"connection_security": "clear"' "$P/server/startup/fed_server.json"
check "site-1 kit says tls" grep -q '"connection_security": "tls"' "$P/site-1/startup/fed_client.json"
check "site-1 holds customRootCA.pem equal to the given CA" cmp "$P/site-1/startup/customRootCA.pem" "$T/customRoot.pem"
check "site-1 config names customRootCA.pem" grep -q '"custom_ca_cert": "customRootCA.pem"' "$P/site-1/startup/fed_client.json"
for f in fed_server.json server.crt server.key rootCA.pem start.sh sub_start.sh stop_fl.sh signature.json; do
	check "server startup/$f exists" test -f "$P/server/startup/$f"
done
for f in fed_client.json client.crt client.key rootCA.pem start.sh sub_start.sh stop_fl.sh signature.json; do
	check "site-1 startup/$f exists" test -f "$P/site-1/startup/$f"
done
for f in resources.json.default privacy.json.sample authorization.json.default log_config.json.default; do
	check "site-1 local/$f exists" test -f "$P/site-1/local/$f"
done
check "site-1 transfer/ exists" test -d "$P/site-1/transfer"
check "server.key is 0600" test "$(stat -c %a "$P/server/startup/server.key")" = 600
check "client.key is 0600" test "$(stat -c %a "$P/site-1/startup/client.key")" = 600
check "state keeps the root CA key (0600)" test "$(stat -c %a "$W/test25/state/rootCA.key")" = 600
check "sub_start.sh runs 'cfl server' from the kit" grep -q 'exec "$CFL" "$ROLE" "$KIT"' "$P/server/startup/sub_start.sh"
check "sub_start.sh role is server" grep -q '^ROLE=server$' "$P/server/startup/sub_start.sh"
check "site-1 sub_start.sh role is client" grep -q '^ROLE=client$' "$P/site-1/startup/sub_start.sh"
check "scripts are valid sh" sh -n "$P/server/startup/start.sh"
for kit in server site-1; do
	c=$P/$kit/startup/$([ $kit = server ] && echo server || echo client).crt
	check "$kit cert verifies with openssl verify -CAfile rootCA.pem" openssl verify -CAfile "$P/$kit/startup/rootCA.pem" "$c"
	check "$kit kit verifies" "$CFL_BIN" kit verify "$P/$kit"
done

# --- the multi-address example ------------------------------------------------------------------
cat >"$T/multi.yml" <<'YML'
api_version: 3
name: multi
participants:
  - name: server
    type: server
    org: nvidia
    fed_learn_port: 8002
    admin_port: 8003
    host_names: [localhost, 127.0.0.1]
    default_host: localhost
    # connection_security: clear
  - name: red
    type: client
    org: nvidia
    connect_to: 127.0.0.1
  - name: blue
    type: client
    org: nvidia
    connect_to: localhost
  - name: silver
    type: client
    org: nvidia
  - name: admin@nvidia.com
    type: admin
    org: nvidia
    role: project_admin
    connect_to: 127.0.0.1
YML
check "multi-address project provisions" "$CFL_BIN" provision -p "$T/multi.yml" -w "$W"
M=$W/multi/prod_00
san=$(openssl x509 -in "$M/server/startup/server.crt" -noout -ext subjectAltName | tail -n 1 | sed 's/^ *//')
check "server SAN is exactly 'DNS:localhost, IP Address:127.0.0.1' (got '$san')" test "$san" = "DNS:localhost, IP Address:127.0.0.1"
check "red targets 127.0.0.1:8002" grep -q '"target": "127.0.0.1:8002"' "$M/red/startup/fed_client.json"
check "blue targets localhost:8002" grep -q '"target": "localhost:8002"' "$M/blue/startup/fed_client.json"
check "silver targets localhost:8002" grep -q '"target": "localhost:8002"' "$M/silver/startup/fed_client.json"
check "admin targets 127.0.0.1:8003" grep -q '"port": 8003' "$M/admin@nvidia.com/startup/fed_admin.json"
check "admin host is 127.0.0.1" grep -q '"host": "127.0.0.1"' "$M/admin@nvidia.com/startup/fed_admin.json"
check "no connection_security anywhere gives mtls" grep -q '"connection_security": "mtls"' "$M/red/startup/fed_client.json"
check "server mtls too" grep -q '"connection_security": "mtls"' "$M/server/startup/fed_server.json"
for f in fed_admin.json client.crt client.key rootCA.pem fl_admin.sh signature.json; do
	check "admin startup/$f exists" test -f "$M/admin@nvidia.com/startup/$f"
done
subj=$(openssl x509 -in "$M/admin@nvidia.com/startup/client.crt" -noout -subject -nameopt RFC2253)
check "admin role in unstructuredName ($subj)" sh -c "echo '$subj' | grep -q 'unstructuredName=project_admin'"
eku=$(openssl x509 -in "$M/server/startup/server.crt" -noout -ext extendedKeyUsage | tail -n 1)
check "server cert has EKU serverAuth and only that ($eku)" sh -c "echo '$eku' | grep -q '^ *TLS Web Server Authentication$'"
eku=$(openssl x509 -in "$M/red/startup/client.crt" -noout -ext extendedKeyUsage | tail -n 1)
check "client cert has EKU clientAuth" sh -c "echo '$eku' | grep -q 'TLS Web Client Authentication'"
for kit in server red blue silver admin@nvidia.com; do
	c=$(ls "$M/$kit"/startup/*.crt)
	check "$kit cert verifies" openssl verify -CAfile "$M/$kit/startup/rootCA.pem" $c
done

# --- kit verify: change a byte, delete, add ----------------------------------------------------
cp -a "$M/red" "$T/red"
printf 'X' | dd of="$T/red/startup/fed_client.json" bs=1 seek=10 conv=notrunc 2>/dev/null
out=$("$CFL_BIN" kit verify "$T/red" 2>&1); rc=$?
check "changed byte: exit 1" test $rc -eq 1
check "changed byte: names fed_client.json" sh -c "echo \"\$1\" | grep -q 'changed: startup/fed_client.json'" _ "$out"
rm -rf "$T/red"; cp -a "$M/red" "$T/red"; rm "$T/red/startup/client.crt"
out=$("$CFL_BIN" kit verify "$T/red" 2>&1); rc=$?
check "deleted file: exit 1" test $rc -eq 1
check "deleted file: names client.crt" sh -c "echo \"\$1\" | grep -q 'missing: startup/client.crt'" _ "$out"
rm -rf "$T/red"; cp -a "$M/red" "$T/red"; echo evil >"$T/red/startup/extra.sh"
out=$("$CFL_BIN" kit verify "$T/red" 2>&1); rc=$?
check "added file: exit 1" test $rc -eq 1
check "added file: names extra.sh" sh -c "echo \"\$1\" | grep -q 'added: startup/extra.sh'" _ "$out"
# Two signed files swapped, their digests too: the manifest's one signature no longer fits.
rm -rf "$T/red"; cp -a "$M/red" "$T/red"
mv "$T/red/startup/start.sh" "$T/red/swap"; mv "$T/red/startup/stop_fl.sh" "$T/red/startup/start.sh"
mv "$T/red/swap" "$T/red/startup/stop_fl.sh"
out=$("$CFL_BIN" kit verify "$T/red" 2>&1); rc=$?
check "swapped files: exit 1, both named" sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'changed: startup/start.sh' && echo \"\$1\" | grep -q 'changed: startup/stop_fl.sh'" _ "$out"
python3 - "$T/red/startup/signature.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
f = m["files"]
f["startup/start.sh"], f["startup/stop_fl.sh"] = f["startup/stop_fl.sh"], f["startup/start.sh"]
json.dump(m, open(sys.argv[1], "w"))
PY
out=$("$CFL_BIN" kit verify "$T/red" 2>&1); rc=$?
check "swapped files and digests: exit 1, the signature named" sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'changed: startup/signature.json'" _ "$out"
# A signed file of another kit of the same project (same CA), with its digest.
rm -rf "$T/red"; cp -a "$M/red" "$T/red"
cp "$M/blue/startup/fed_client.json" "$T/red/startup/fed_client.json"
python3 - "$T/red/startup/signature.json" "$M/blue/startup/signature.json" <<'PY'
import json, sys
m, o = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
m["files"]["startup/fed_client.json"] = o["files"]["startup/fed_client.json"]
json.dump(m, open(sys.argv[1], "w"))
PY
out=$("$CFL_BIN" kit verify "$T/red" 2>&1); rc=$?
check "another kit's signed file: exit 1" sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'changed: startup/signature.json'" _ "$out"
rm -rf "$T/red"; cp -a "$M/red" "$T/red"; echo '{}' >"$T/red/local/resources.json.default"
out=$("$CFL_BIN" kit verify "$T/red" 2>&1); rc=$?
check "changed local default: exit 1 and named" sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'changed: local/resources.json.default'" _ "$out"
rm -rf "$T/red"; cp -a "$M/red" "$T/red"; echo '{}' >"$T/red/local/resources.json"
check "a site's own local/resources.json is allowed" "$CFL_BIN" kit verify "$T/red"
check "kit verify usage error exits 2" sh -c "'$CFL_BIN' kit verify; test \$? -eq 2"

# --- re-provisioning reuses the root CA ---------------------------------------------------------
check "second run succeeds" "$CFL_BIN" provision -p "$T/multi.yml" -w "$W"
check "second run is prod_01" test -d "$W/multi/prod_01/red"
check "prod_00 left intact" "$CFL_BIN" kit verify "$M/red"
check "prod_01 certs verify against prod_00 rootCA.pem" openssl verify -CAfile "$M/server/startup/rootCA.pem" \
	"$W/multi/prod_01/red/startup/client.crt" "$W/multi/prod_01/server/startup/server.crt"

# --- the FLARE builders list and key types ------------------------------------------------------
cat >"$T/flare.yml" <<'YML'
api_version: 3
name: flare_style
description: a project file as NVFlare's provisioning writes it
participants:
  - name: overseer.example.com
    type: server
    org: nvidia
    fed_learn_port: 8102
    admin_port: 8102
  - name: site_a
    type: client
    org: org_a
  - name: lead@nvidia.com
    type: admin
    org: nvidia
    role: lead
builders:
  - path: nvflare.lighter.impl.workspace.WorkspaceBuilder
    args:
      template_file: master_template.yml
  - path: nvflare.lighter.impl.template.TemplateBuilder
  - path: nvflare.lighter.impl.static_file.StaticFileBuilder
    args:
      config_folder: config
      scheme: grpc
      overseer_agent:
        path: nvflare.ha.dummy_overseer_agent.DummyOverseerAgent
        overseer_exists: false
        args:
          sp_end_point: overseer.example.com:8102:8102
  - path: nvflare.lighter.impl.cert.CertBuilder
  - path: nvflare.lighter.impl.he.HEBuilder
    args:
      poly_modulus_degree: 8192
  - path: nvflare.lighter.impl.docker.DockerBuilder
  - path: nvflare.lighter.impl.signature.SignatureBuilder
packager:
  path: nvflare.lighter.impl.packager.Packager
YML
"$CFL_BIN" provision -p "$T/flare.yml" -w "$W" 2>"$T/err" >/dev/null; rc=$?
check "FLARE builders list provisions" test $rc -eq 0
check "unknown builder HEBuilder is a warning" grep -q 'HEBuilder' "$T/err"
check "unknown builder DockerBuilder is a warning" grep -q 'DockerBuilder' "$T/err"
check "ECDSA P-256 is the default key type" sh -c "openssl x509 -in '$W/flare_style/prod_00/site_a/startup/client.crt' -noout -text | grep -q 'prime256v1'"
"$CFL_BIN" provision -p "$T/flare.yml" -w "$T/ws-rsa" --key-type rsa-2048 >/dev/null 2>&1
check "--key-type rsa-2048 gives RSA keys" sh -c "openssl x509 -in '$T/ws-rsa/flare_style/prod_00/site_a/startup/client.crt' -noout -text | grep -q 'Public-Key: (2048 bit)'"
check "rsa kit verifies (RSA-PSS signatures)" "$CFL_BIN" kit verify "$T/ws-rsa/flare_style/prod_00/site_a"

# --- a server name longer than 64 bytes -----------------------------------------------------------
long=srv-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb.example.com
cat >"$T/long.yml" <<YML
api_version: 3
name: longname
participants:
  - name: $long
    type: server
    org: nvidia
  - name: site-1
    type: client
    org: nvidia
YML
"$CFL_BIN" provision -p "$T/long.yml" -w "$W" 2>"$T/err" >/dev/null; rc=$?
check "long server name provisions" test $rc -eq 0
check "a warning says the CN is cut" grep -q 'certificate CN is cut to 64 bytes' "$T/err"
cn=$(openssl x509 -in "$W/longname/prod_00/$long/startup/server.crt" -noout -subject -nameopt RFC2253 | sed 's/.*CN=//; s/,.*//')
check "CN is the first 64 bytes (${#cn})" test "$cn" = "${long:0:64}"
check "default_host keeps the full name in the SAN" sh -c "openssl x509 -in '$W/longname/prod_00/$long/startup/server.crt' -noout -ext subjectAltName | grep -q 'DNS:$long'"
check "site-1 targets the full name" grep -q "\"target\": \"$long:8002\"" "$W/longname/prod_00/site-1/startup/fed_client.json"

# --- every bad project file: exit 1, message names the file and a position, workspace unchanged ---
before=$(snapshot "$W")
n=0
for bad in "$CFL_SRC"/tests/data/bad/*.yml; do
	[ -e "$bad" ] || continue
	n=$((n + 1))
	name=$(basename "$bad")
	"$CFL_BIN" provision -p "$bad" -w "$W" >/dev/null 2>"$T/err"; rc=$?
	msg=$(cat "$T/err")
	if [ $rc -eq 1 ] && grep -q "$name:[0-9]*:[0-9]*: " "$T/err"; then
		ok "bad/$name: exit 1, '$msg'"
	else
		fail "bad/$name: exit $rc, '$msg'"
	fi
done
check "bad files were tried ($n)" test "$n" -ge 20
check "workspace unchanged after every bad file" test "$before" = "$(snapshot "$W")"
# An admin name that is a path: refused, and nothing written outside the workspace (the kit of
# '../../../../x@y.com' would land in jail/a/b/, two levels above it).
mkdir -p "$T/jail/a/b/c"
cat >"$T/jail/escape.yml" <<'YML'
api_version: 3
name: escape
participants:
  - name: server.example.com
    type: server
    org: nvidia
  - name: ../../../../x@y.com
    type: admin
    org: nvidia
    role: project_admin
YML
before=$(snapshot "$T/jail")
"$CFL_BIN" provision -p "$T/jail/escape.yml" -w "$T/jail/a/b/c/ws" >/dev/null 2>"$T/err"; rc=$?
check "an admin name that is a path fails (exit $rc) naming the rule" sh -c \
	"test $rc -eq 1 && grep -q \"escape.yml:7:11: participant '../../../../x@y.com': invalid admin name\" '$T/err'"
check "nothing named x@y.com was written anywhere" test -z "$(find "$T" -name 'x@y.com*')"
check "the folder around the workspace is unchanged" test "$before" = "$(snapshot "$T/jail")"
"$CFL_BIN" provision -p "$T/test25.yml" -w "$T/fresh-ws" >/dev/null 2>&1
check "a fresh workspace for a good file is created" test -d "$T/fresh-ws/test25/prod_00"
"$CFL_BIN" provision -p "$CFL_SRC/tests/data/bad/$(ls "$CFL_SRC/tests/data/bad" | head -n 1)" -w "$T/never" >/dev/null 2>&1
check "a bad file leaves no new workspace behind" test ! -e "$T/never"
sed "s#$T/customRoot.pem#$T/missing.pem#" "$T/test25.yml" >"$T/noca.yml"
"$CFL_BIN" provision -p "$T/noca.yml" -w "$T/noca-ws" >/dev/null 2>"$T/err"; rc=$?
check "a missing custom CA fails (exit 1) naming it" sh -c "test $rc -eq 1 && grep -q missing.pem '$T/err'"
check "and leaves no workspace" test ! -e "$T/noca-ws"
check "usage error exits 2" sh -c "'$CFL_BIN' provision; test \$? -eq 2"
check "--help exits 0" "$CFL_BIN" provision --help
check "no temp folders left" sh -c "! ls -a '$W'/*/ | grep -q prod_tmp"

finish
