#!/bin/bash
# An enterprise CA at run time (issue 10): a root and two intermediates made with the openssl
# command line; a project provisioned with intermediate 1 (cfl provision --ca-cert/--ca-key)
# runs a job over mtls and over tls; a certificate with site-1's name issued by intermediate 2
# (same root, not the project's issuing CA) is refused at the TLS handshake (mtls) and at login
# (tls): the project trusts its issuing CA, not everything the root ever signed.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

ec() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$1" \
	-keyout "$2.key" -out "$2.csr" 2>/dev/null; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=corp-root \
	-days 100 -keyout root.key -out root.pem 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >ca.ext
for i in 1 2; do
	ec "/CN=corp-issuing-$i" "int$i"
	openssl x509 -req -in "int$i.csr" -CA root.pem -CAkey root.key -CAcreateserial -days 90 \
		-extfile ca.ext -out "int$i.pem" 2>/dev/null
done
# The impostor: site-1's name, org and usage, from intermediate 2.
ec "/CN=site-1/O=test" rogue
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >leaf.ext
openssl x509 -req -in rogue.csr -CA int2.pem -CAkey int2.key -CAcreateserial -days 30 \
	-extfile leaf.ext -out rogue.pem 2>/dev/null
check "openssl made the root, two intermediates and the impostor" \
	openssl verify -CAfile root.pem -untrusted int2.pem rogue.pem

mkdir -p job
echo '{"name": "enterprise"}' >job/meta.json
cat >job/config.json <<JSON
{"workflow": {"name": "fedavg", "num_rounds": 1, "min_clients": 1, "round_timeout_s": 30},
 "executor": {"type": "builtin", "dataset": "synthetic", "floats": 100},
 "sites": ["@ALL"]}
JSON

run_mode() { # run_mode MODE
	local mode=$1 proj="ent$1" srv s1 rg id
	project_yml "$proj.yml" "$proj" "$mode" site-1 "$PROJECT_ADMIN"
	P=$("$CFL_BIN" provision -p "$proj.yml" -w "$T/ws-$proj" --ca-cert int1.pem --ca-key int1.key \
		--ca-chain root.pem 2>"$T/provision.log")
	if [ -z "$P" ] || [ ! -d "$P/localhost" ]; then
		fail "$mode: provisioning with --ca-cert: $(cat "$T/provision.log")"
		return
	fi
	check "$mode: site-1's certificate verifies through intermediate 1" \
		openssl verify -CAfile root.pem -untrusted int1.pem "$P/site-1/startup/client.crt"
	start_server "$T/$mode-server.log" "$P/localhost" || return
	srv=$LAST_PID
	port=$FED_PORT
	start_bg "$T/$mode-site-1.log" "$CFL_BIN" client "$P/site-1" --server ":$FED_PORT"
	s1=$LAST_PID
	check "$mode: site-1 logs in through the intermediate" \
		wait_log "$T/$mode-server.log" "site-1 logged in" 15
	# The job's admin signature verifies through the issuing chain (cfl_pki_trust).
	id=$(submit "$T/job")
	check "$mode: submit_job gives an id ($id): $(cat "$T/adm.err")" test -n "$id"
	check "$mode: the job completes" wait_status "$id" '^FINISHED:COMPLETED$' 40

	# The impostor holds its own files: at TLS (mtls) it shows its certificate with the chain
	# through intermediate 2 (openssl s_client); at login (tls) a cfl client whose kit file
	# names intermediate 1 as its issuer (so it accepts the server) and whose leaf, which the
	# login carries, is the one from intermediate 2.
	if [ "$mode" = mtls ]; then
		timeout 10 openssl s_client -connect "127.0.0.1:$FED_PORT" -cert rogue.pem -key rogue.key \
			-cert_chain int2.pem -CAfile root.pem </dev/null >"$T/$mode-rogue.log" 2>&1
		check "$mode: the impostor is refused at the TLS handshake" \
			wait_log "$T/$mode-server.log" "failed before login: .*issued by 'CN=corp-issuing-2', not by this project's issuing CA 'CN=corp-issuing-1'" 10
	else
		cp -r "$P/site-1" "rogue-$mode"
		rm -f "rogue-$mode/startup/signature.json"
		cat rogue.pem int1.pem >"rogue-$mode/startup/client.crt"
		cp rogue.key "rogue-$mode/startup/client.key"
		start_bg "$T/$mode-rogue.log" "$CFL_BIN" client "rogue-$mode" --server ":$FED_PORT" --unsigned-kit
		rg=$LAST_PID
		check "$mode: the impostor is refused at login" \
			wait_log "$T/$mode-server.log" "rejected message .*claims 'site-1'.*issu" 10
		stop_bg "$rg"
	fi
	n=$(grep -c "site-1 logged in" "$T/$mode-server.log")
	check "$mode: the impostor never logs in (site-1 logins: $n)" test "$n" -eq 1
	stop_check "$mode: site-1" "$s1"
	stop_check "$mode: server" "$srv"
}

for m in mtls tls; do
	run_mode "$m"
done
finish
