#!/bin/bash
# cfl cert request / approve / package / revoke: a site added to project.yml after the server
# started gets its kit without its key ever leaving it, and logs in with no restart.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

cat >p.yml <<YML
api_version: 3
name: flow
participants:
  - {name: localhost, type: server, org: test, fed_learn_port: 8002, admin_port: 8002}
  - {name: site-1, type: client, org: test}
  - {name: admin@test.org, type: admin, org: test, role: project_admin}
YML
provision_or_exit p.yml localhost
start_server "$T/server.log" "$P/localhost" || { finish; exit 1; }
spid=$LAST_PID port=$FED_PORT aport=$ADMIN_PORT

# site-3 joins the project after the server started.
cp p.yml p2.yml
echo '  - {name: site-3, type: client, org: test}' >>p2.yml
out=$("$CFL_BIN" cert request -n site-3 -t client --org test -d "$T/req" 2>&1); rc=$?
check "cert request exits 0: $out" test $rc -eq 0
check "the key is 0600" test "$(stat -c %a "$T/req/site-3.key")" = 600
out=$("$CFL_BIN" cert approve -p p2.yml -w "$T/ws" "$T/req/site-3.request.json" -o "$T/site-3.approval.json" 2>&1); rc=$?
check "cert approve exits 0: $out" test $rc -eq 0
fp=$(echo "$out" | sed -n 's/^root CA fingerprint: //p')
want=$(openssl x509 -in "$T/ws/flow/state/rootCA.pem" -noout -fingerprint -sha256 | cut -d= -f2)
check "approve shows the root CA's SHA-256 fingerprint ($fp)" test "$fp" = "SHA256:$want"
check "no private key in the request or the approval" \
	sh -c "! grep -r 'PRIVATE KEY' '$T/req/site-3.request.json' '$T/site-3.approval.json'"

out=$("$CFL_BIN" package "$T/site-3.approval.json" --key "$T/req/site-3.key" -d "$T/bad-kit" \
	--expected-rootca-fingerprint SHA256:00:11:22 2>&1); rc=$?
check "a wrong --expected-rootca-fingerprint is refused (exit $rc): $out" \
	sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'not the expected'" _ "$out"
out=$("$CFL_BIN" package "$T/site-3.approval.json" --key "$T/req/site-3.key" -d "$T/site-3" \
	--expected-rootca-fingerprint "$fp" 2>&1); rc=$?
check "package exits 0: $out" test $rc -eq 0
check "the kit passes cfl kit verify" "$CFL_BIN" kit verify "$T/site-3"
check "its key is the one made at the site" cmp "$T/req/site-3.key" "$T/site-3/startup/client.key"

start_bg "$T/site-3.log" "$CFL_BIN" client "$T/site-3" --server ":$port"
cpid=$LAST_PID
check "site-3 logs in to the running server" wait_log "$T/site-3.log" "logged in to localhost:$port" 15
out=$(timeout 20 "$CFL_BIN" admin "$P/admin@test.org" --server ":$aport" --cmd "check_status client" --json 2>&1)
check "check_status lists site-3 connected: $out" \
	sh -c "echo \"\$1\" | grep -Eq '\"name\":\"site-3\",[^}]*\"connected\":true'" _ "$out"
stop_check "site-3" $cpid
stop_check "the server" $spid

# Refusals name the field.
"$CFL_BIN" cert request -n site-9 -t client --org test -d "$T/r9" >/dev/null 2>&1
out=$("$CFL_BIN" cert approve -p p2.yml -w "$T/ws" "$T/r9/site-9.request.json" -o "$T/x.json" 2>&1); rc=$?
check "an unknown name is refused (exit $rc): $out" sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'name differs'" _ "$out"
"$CFL_BIN" cert request -n site-3 -t client --org other -d "$T/ro" >/dev/null 2>&1
out=$("$CFL_BIN" cert approve -p p2.yml -w "$T/ws" "$T/ro/site-3.request.json" -o "$T/x.json" 2>&1); rc=$?
check "another org is refused (exit $rc): $out" sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'org differs'" _ "$out"
"$CFL_BIN" cert request -n admin@test.org -t admin --org test --role lead -d "$T/rr" >/dev/null 2>&1
out=$("$CFL_BIN" cert approve -p p2.yml -w "$T/ws" "$T/rr/admin@test.org.request.json" -o "$T/x.json" 2>&1); rc=$?
check "another role is refused (exit $rc): $out" sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'role differs'" _ "$out"
check "no approval was written for them" test ! -e "$T/x.json"

# Revocation.
out=$("$CFL_BIN" cert revoke -p p2.yml -w "$T/ws" site-3 --reason keyCompromise 2>&1); rc=$?
check "cert revoke exits 0: $out" test $rc -eq 0
out=$(openssl crl -in "$T/ws/flow/state/crl.pem" -CAfile "$T/ws/flow/state/rootCA.pem" -noout 2>&1)
check "openssl verifies the CRL: $out" sh -c "echo \"\$1\" | grep -q 'verify OK'" _ "$out"
serial=$(openssl x509 -in "$T/site-3/startup/client.crt" -noout -serial | cut -d= -f2)
check "site-3's serial is on it" sh -c "openssl crl -in '$T/ws/flow/state/crl.pem' -noout -text | grep -q '$serial'"
"$CFL_BIN" cert revoke -p p2.yml -w "$T/ws" site-1 >/dev/null 2>&1
check "a second revocation keeps the first and raises the CRL number" sh -c \
	"openssl crl -in '$T/ws/flow/state/crl.pem' -noout -text | grep -q '$serial' && openssl crl -in '$T/ws/flow/state/crl.pem' -noout -crlnumber | grep -Eq '=(0x)?0*2$'"
out=$("$CFL_BIN" cert revoke -p p2.yml -w "$T/ws" nobody 2>&1); rc=$?
check "revoking an unknown name is refused (exit $rc): $out" test $rc -eq 1

# Enterprise CA: root and intermediate made by the openssl command line.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=corp-root \
	-days 100 -keyout root.key -out root.pem 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >ca.ext
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=corp-issuing \
	-keyout inter.key -out inter.csr 2>/dev/null
openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days 90 \
	-extfile ca.ext -out inter.pem 2>/dev/null
E=$("$CFL_BIN" provision -p p.yml -w "$T/ews" --ca-cert inter.pem --ca-key inter.key --ca-chain root.pem 2>&1)
check "provision with an enterprise CA: $E" test -d "$E/localhost"
for k in localhost site-1 admin@test.org; do
	f=$(ls "$E/$k"/startup/*.crt)
	check "$k's certificate verifies through the intermediate" openssl verify -CAfile root.pem -untrusted inter.pem "$f"
	check "$k's kit verifies" "$CFL_BIN" kit verify "$E/$k"
	check "$k's rootCA.pem is the root" cmp "$E/$k/startup/rootCA.pem" root.pem
done
check "the root's key is nowhere in the workspace" sh -c "! grep -rqF \"\$(sed -n 2p root.key)\" '$T/ews'"
finish
