#!/bin/bash
# cfl server / cfl client over real sockets on loopback: every server mode x client mode pair,
# certificate checks, and no plaintext on the wire in tls and mtls.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# One project per server mode; clients c_clear, c_tls, c_mtls with explicit modes.
make_project() { # name server_mode
	cat >"$T/$1.yml" <<YML
api_version: 3
name: $1
participants:
$(server_participant)
    connection_security: $2
  - {name: c_clear, type: client, org: test, connection_security: clear}
  - {name: c_tls, type: client, org: test, connection_security: tls}
  - {name: c_mtls, type: client, org: test, connection_security: mtls}
  - {name: c_ip, type: client, org: test, connect_to: 127.0.0.1}
YML
	provision "$T/$1.yml" "$T/ws"
}

for smode in clear tls mtls; do
	P=$(make_project "p_$smode" $smode)
	start_server "$T/server-$smode.log" "$P/localhost" --port 0 --diag || continue
	spid=$LAST_PID port=$FED_PORT
	for cmode in clear tls mtls; do
		t0=$(date +%s%N)
		out=$(timeout 20 "$CFL_BIN" client "$P/c_$cmode" --server ":$port" --message "hello-$cmode" 2>&1); rc=$?
		ms=$((($(date +%s%N) - t0) / 1000000))
		# A tls client talks to an mtls server only if it has a cert: it has none -> rejected.
		if [ $smode = $cmode ]; then
			if [ $rc -eq 0 ]; then ok "server $smode, client $cmode: exchange ok (${ms} ms)"
			else fail "server $smode, client $cmode: expected success, got: $out"; fi
		else
			last=$(echo "$out" | tail -n 1)
			if [ $rc -ne 0 ] && [ $ms -lt 5000 ] && echo "$out" | grep -Eqi 'mismatch|certificate|clear|tls'; then
				ok "server $smode, client $cmode: fails in ${ms} ms: $last"
			else
				fail "server $smode, client $cmode: rc=$rc in ${ms} ms: $out"
			fi
		fi
	done
	check "$smode server logs who connected, from where, to which address, in which mode" \
		grep -Eq "c_$smode logged in from $LOOP:[0-9]+ to ($LOOP|\[::ffff:127\.0\.0\.1\]|localhost):$port \($smode" "$T/server-$smode.log"
	if [ $smode = mtls ]; then
		out=$(timeout 20 "$CFL_BIN" client "$P/c_ip" --server ":$port" --message hi 2>&1)
		check "mtls client dialing 127.0.0.1 (in the SAN) connects" test $? -eq 0
	fi
	stop_check "the $smode server" $spid
done

# --- certificates from another root CA ---------------------------------------------------------------
A=$(make_project "pa" mtls)
B=$(provision "$T/pa.yml" "$T/ws-other") # same names, another root CA
start_server "$T/server-a.log" "$A/localhost" --port 0 --diag
spid=$LAST_PID port=$FED_PORT
out=$(timeout 20 "$CFL_BIN" client "$B/c_mtls" --server ":$port" --message hi 2>&1); rc=$?
check "mtls server rejects a client whose cert is from another root CA (client: $(echo "$out" | tail -n 1))" test $rc -ne 0
check "the server says why" wait_log "$T/server-a.log" "certificate|verify" 5
# Server side: a client that trusts the right CA but presents a certificate from another one.
# (Its kit is edited, so it is made an unsigned kit, run with --unsigned-kit as the simulator's.)
cp -a "$B/c_mtls" "$T/foreign"
cp "$A/c_mtls/startup/rootCA.pem" "$T/foreign/startup/rootCA.pem"
sed -i 's/"secure_train": true/"secure_train": false/' "$T/foreign/startup/fed_client.json"
rm "$T/foreign/startup/signature.json"
out=$(timeout 20 "$CFL_BIN" client "$T/foreign" --unsigned-kit --server ":$port" --message hi 2>&1); rc=$?
check "mtls server itself rejects a client certificate from another root CA: $(echo "$out" | tail -n 1)" test $rc -ne 0
check "the server logs the rejected certificate" wait_log "$T/server-a.log" "certificate.*(unknown|verify|not signed|issuer)|unknown ca|verify failed" 5
stop_check "the server with the other root CA's clients" $spid

# --- a server whose cert does not cover the dialed address ---------------------------------------------
cat >"$T/pn.yml" <<YML
api_version: 3
name: pn
participants:
  - {name: localhost, type: server, org: test, fed_learn_port: 8002, admin_port: 8002}
  - {name: c_ip, type: client, org: test, connect_to: 127.0.0.1}
  - {name: c_name, type: client, org: test}
YML
N=$(provision "$T/pn.yml" "$T/ws")
start_server "$T/server-n.log" "$N/localhost" --port 0 --diag
spid=$LAST_PID port=$FED_PORT
out=$(timeout 20 "$CFL_BIN" client "$N/c_ip" --server ":$port" --message hi 2>&1); rc=$?
# The client's words (src/net/tls.c, verify_message): the address dialed and the names the
# certificate has.
check "client dialing 127.0.0.1, not in the server cert, is rejected: $(echo "$out" | tail -n 1)" \
	sh -c "test $rc -ne 0 && echo \"\$1\" | grep -qF \"server certificate does not match '127.0.0.1' (its names: DNS:localhost)\"" _ "$out"
out=$(timeout 20 "$CFL_BIN" client "$N/c_name" --server ":$port" --message hi 2>&1)
check "the same server by its name works" test $? -eq 0
stop_check "the server of the SAN checks" $spid

# --- no plaintext on the wire: a recording relay between client and server ----------------------------
for mode in clear tls mtls; do
	cat >"$T/w_$mode.yml" <<YML
api_version: 3
name: w_$mode
connection_security: $mode
participants:
  - {name: localhost, type: server, org: test, fed_learn_port: 8002, admin_port: 8002}
  - {name: c1, type: client, org: test, connect_to: {host: localhost, port: 8003}}
YML
	W=$(provision "$T/w_$mode.yml" "$T/ws")
	start_server "$T/ws-$mode.log" "$W/localhost" --port 0 --diag
	spid=$LAST_PID sport=$FED_PORT
	# The relay listens where the kernel puts it and says "ready PORT".
	start_bg "$T/relay-$mode.log" python3 "$CFL_SRC/tests/integration/relay.py" 0 "$sport" "$T/wire-$mode.bin"
	rpid=$LAST_PID
	check "$mode: the relay starts" wait_log "$T/relay-$mode.log" "^ready [0-9]+$" 10
	rport=$(sed -n 's/^ready \([0-9]*\)$/\1/p' "$T/relay-$mode.log")
	timeout 20 "$CFL_BIN" client "$W/c1" --server ":${rport:-1}" --message "SECRET-MARKER-7f3a9c" >/dev/null 2>&1
	check "$mode: exchange through the relay" test $? -eq 0
	stop_check "$mode: the relay" $rpid
	stop_check "$mode: the server" $spid
	if [ $mode = clear ]; then
		check "clear: the marker is on the wire" grep -q "SECRET-MARKER-7f3a9c" "$T/wire-$mode.bin"
	else
		check "$mode: the marker is not on the wire ($(stat -c %s "$T/wire-$mode.bin") bytes recorded)" \
			sh -c "test -s '$T/wire-$mode.bin' && ! grep -q 'SECRET-MARKER-7f3a9c' '$T/wire-$mode.bin'"
	fi
done

finish
