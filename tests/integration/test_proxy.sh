#!/bin/bash
# BYOConn (the seed's case): the server in clear mode behind a TLS-terminating haproxy whose
# certificate comes from a custom CA; a tls client with custom_ca_cert reaches the server through
# it; a client that trusts only the project root CA fails against the proxy with a clear message.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
if ! command -v haproxy >/dev/null; then
	echo "SKIP: haproxy is not installed (scripts/deps.sh check installs it)"
	exit 77
fi

# The proxy's PKI: its own CA and a certificate for localhost / 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=proxy-root \
	-days 30 -keyout proxy-ca.key -out proxy-ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
	-keyout proxy.key -out proxy.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf
openssl x509 -req -in proxy.csr -CA proxy-ca.pem -CAkey proxy-ca.key -CAcreateserial -days 30 \
	-extfile ext.cnf -out proxy.crt 2>/dev/null
cat proxy.crt proxy.key >proxy.pem

cat >byo.yml <<YML
api_version: 3
name: byo
connection_security: tls
participants:
  - name: localhost
    type: server
    org: test
    fed_learn_port: 8002
    admin_port: 8002
    connection_security: clear
  - name: site-1
    type: client
    org: test
    custom_ca_cert: $T/proxy-ca.pem
    connect_to: {host: localhost, port: 8443}
  - name: site-2
    type: client
    org: test
    connect_to: {host: localhost, port: 8443}
  - name: admin@test.org
    type: admin
    org: test
    role: project_admin
    connection_security: clear
    connect_to: {host: localhost, port: 8002}
YML
P=$(provision byo.yml "$T/ws")
check "project provisions" test -d "$P/site-1"

start_server "$T/server.log" "$P/localhost" --port 0 --diag || { finish; exit 1; }
spid=$LAST_PID sport=$FED_PORT

# haproxy cannot listen on a port the kernel picks and say which: it gets a number that is free
# now, and since another process may take it before haproxy binds it, the test tries another
# number on "Address already in use", 5 times at most. haproxy binds before it serves: it is
# ready when it owns a listening socket on the port, and gone if the bind failed.
unused_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
haproxy_listens() { ss -Hltnp "sport = :$1" 2>/dev/null | grep -q "pid=$2,"; }
start_haproxy() { # sets hpid, pport; returns 1 if haproxy did not start
	local try i
	for try in 1 2 3 4 5; do
		pport=$(unused_port)
		cat >haproxy.cfg <<CFG
global
    maxconn 256
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fl
    bind 127.0.0.1:$pport ssl crt $T/proxy.pem
    default_backend fl_server
backend fl_server
    server s1 127.0.0.1:$sport
CFG
		start_bg "$T/haproxy-$try.log" haproxy -db -f haproxy.cfg
		hpid=$LAST_PID
		i=0
		while kill -0 "$hpid" 2>/dev/null && [ $i -lt 100 ]; do
			haproxy_listens "$pport" "$hpid" && return 0
			sleep 0.1; i=$((i + 1))
		done
		stop_bg "$hpid"
		grep -q "Address already in use" "$T/haproxy-$try.log" || break
		echo "  haproxy: port $pport was taken, trying another"
	done
	echo "  haproxy did not start: $(tail -n 2 "$T/haproxy-$try.log")"
	return 1
}
start_haproxy
check "haproxy listens on port $pport" haproxy_listens "$pport" "$hpid"

out=$(timeout 20 "$CFL_BIN" client "$P/site-1" --server ":$pport" --message through-the-proxy 2>&1); rc=$?
check "site-1 (tls, custom CA) reaches the clear server through the proxy: $(echo "$out" | tail -n 1)" test $rc -eq 0
check "the server logs site-1 in clear mode" grep -Eq "site-1 logged in from 127\.0\.0\.1:[0-9]+ .*\(clear" "$T/server.log"
out=$(timeout 20 "$CFL_BIN" admin "$P/admin@test.org" --server ":$sport" --cmd "check_status client" --json 2>&1)
check "check_status shows site-1 logged in through the proxy, clear at the server: $out" \
	sh -c "echo \"\$1\" | grep -q '\"name\":\"site-1\".*\"connection_security\":\"clear\"'" _ "$out"
out=$(timeout 20 "$CFL_BIN" client "$P/site-1" --server ":$pport" --send 10000000 2>&1)
check "10 MB cross the proxy intact" test $? -eq 0
t0=$(date +%s%N)
out=$(timeout 20 "$CFL_BIN" client "$P/site-2" --server ":$pport" --message hi 2>&1); rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "site-2 (trusts only the project root CA) fails against the proxy in ${ms} ms" test $rc -ne 0 -a $ms -lt 5000
check "with a clear message: $(echo "$out" | tail -n 1)" sh -c "echo \"\$1\" | grep -Eqi 'not signed by the CA|custom_ca_cert|unknown ca|certificate'" _ "$out"

stop_check "the server" $spid
# haproxy's graceful stop (management.txt, "Stopping and restarting HAProxy") is SIGUSR1: it
# leaves once its connections are closed and exits 0. Its hard stop, SIGTERM, ends it by the
# signal's default action (status 143), which would hide a crash's status among the normal.
stop_check "haproxy" $hpid USR1
finish
