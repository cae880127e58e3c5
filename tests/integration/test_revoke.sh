#!/bin/bash
# Revocation at run time (issue 10, docs/security.md §9): a server with site-1 and site-2
# logged in; site-2 is revoked and the CRL copied to the server kit's local/crl.pem (no
# SIGHUP: the server's file watch finds it). site-2 leaves check_status within 7 s, cannot log
# in again (refused at the TLS handshake in mtls, at login in tls and clear; its log says
# revoked, and it stops with a non-zero status instead of retrying forever); site-1 is never
# disturbed (one login in the server's log). Then a CRL not signed by the CA is refused with a
# log line and the one in force stays. Last, the server is revoked and the CRL given to site-1:
# site-1 leaves it and is refused it at every later attempt.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# Revokes site NAME of project $1 and puts the CRL where the server reads it. The one place
# that says how a CRL is made.
revoke_site() { # revoke_site PROJECT NAME
	"$CFL_BIN" cert revoke -p "$T/$1.yml" -w "$T/ws-$1" "$2" --reason keyCompromise \
		>>"$T/revoke.log" 2>&1 &&
		cp "$T/ws-$1/$1/state/crl.pem" "$P/localhost/local/crl.pem"
}
# The names check_status client --json lists, one a line.
listed() {
	port=$ADMIN_PORT adm "check_status client" |
		python3 -c 'import json,sys; [print(c["name"]) for c in json.load(sys.stdin)["clients"]]'
}
# Waits until process $1 ends, at most $2 seconds; 0 if it did.
wait_exit() {
	local i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	! kill -0 "$1" 2>/dev/null
}

run_mode() { # run_mode MODE
	local mode=$1 proj="rv$1" srv s1 s2 t0 gone=0 i
	project_yml "$proj.yml" "$proj" "$mode" "site-1 site-2" "$PROJECT_ADMIN"
	P=$(provision "$proj.yml" "$T/ws-$proj")
	if [ -z "$P" ] || [ ! -d "$P/localhost" ]; then
		fail "$mode: provisioning: $(cat "$T/provision.log")"
		return
	fi
	start_server "$T/$mode-server.log" "$P/localhost" || return
	srv=$LAST_PID
	start_bg "$T/$mode-site-1.log" "$CFL_BIN" client "$P/site-1" --server ":$FED_PORT"
	s1=$LAST_PID
	start_bg "$T/$mode-site-2.log" "$CFL_BIN" client "$P/site-2" --server ":$FED_PORT"
	s2=$LAST_PID
	check "$mode: both sites log in" wait_log "$T/$mode-server.log" "site-2 logged in" 10
	wait_log "$T/$mode-server.log" "site-1 logged in" 10
	listed >"$T/listed"
	check "$mode: check_status lists site-2" grep -qx site-2 "$T/listed"

	t0=$(date +%s%N)
	if ! revoke_site "$proj" site-2; then
		fail "$mode: cfl cert revoke: $(tail -n 3 "$T/revoke.log")"
	fi
	for i in $(seq 1 35); do
		if ! listed | grep -qx site-2; then gone=1; break; fi
		sleep 0.2
	done
	local took=$((($(date +%s%N) - t0) / 1000000))
	check "$mode: site-2 leaves check_status within 7 s (${took} ms)" \
		test "$gone" -eq 1 -a "$took" -lt 7000
	check "$mode: the server logs site-2's certificate revoked" \
		wait_log "$T/$mode-server.log" "site-2.*certificate revoked" 5
	check "$mode: site-2's log says its certificate is revoked" \
		wait_log "$T/$mode-site-2.log" "certificate revoked" 10
	if wait_exit "$s2" 15; then
		wait "$s2"
		rc=$?
		forget_pid "$s2"
		check "$mode: site-2 stops with a non-zero status ($rc) instead of retrying" test "$rc" -ne 0
	else
		fail "$mode: site-2 still running 15 s after its revocation: $(tail -n 3 "$T/$mode-site-2.log")"
		stop_bg "$s2"
	fi
	if [ "$mode" = mtls ]; then
		check "$mode: site-2 is refused at the TLS handshake" \
			grep -Eq "failed before login: .*certificate revoked" "$T/$mode-server.log"
	else
		check "$mode: site-2 is refused at login" \
			grep -Eq "rejected message .*claims 'site-2'.*certificate revoked" "$T/$mode-server.log"
	fi
	listed >"$T/listed"
	check "$mode: site-1 stays listed" grep -qx site-1 "$T/listed"
	n=$(grep -c "site-1 logged in" "$T/$mode-server.log")
	check "$mode: site-1 never reconnects (logins: $n)" test "$n" -eq 1

	if [ "$mode" = mtls ]; then
		# A CRL signed by another CA: refused, the one in force stays.
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=evil \
			-keyout evil.key -out evil.pem -days 2 2>/dev/null
		mkdir -p evilca/newcerts && : >evilca/index.txt
		cat >evilca/ca.cnf <<CNF
[ca]
default_ca = x
[x]
database = $T/evilca/index.txt
new_certs_dir = $T/evilca/newcerts
certificate = $T/evil.pem
private_key = $T/evil.key
default_md = sha256
default_crl_days = 30
crlnumber = $T/evilca/crlnumber
CNF
		echo 01 >evilca/crlnumber
		openssl ca -config evilca/ca.cnf -gencrl -out evil.crl 2>/dev/null
		cp evil.crl "$P/localhost/local/crl.pem"
		check "$mode: a CRL from another CA is refused with a log line" \
			wait_log "$T/$mode-server.log" "CRL not loaded.*not signed by" 5
	fi
	revoke_server "$mode" "$proj"
	stop_check "$mode: site-1" "$s1"
	stop_check "$mode: server" "$srv"
}

# The server revoked, the CRL given to site-1 only (its file watch finds it): site-1 closes its
# connection, logs why, and is refused the server at every later attempt (at the TLS handshake
# in mtls and tls, at login in clear).
revoke_server() { # revoke_server MODE PROJECT
	local mode=$1 proj=$2 lg="$T/$1-site-1.log" n
	"$CFL_BIN" cert revoke -p "$T/$proj.yml" -w "$T/ws-$proj" localhost --reason keyCompromise \
		>>"$T/revoke.log" 2>&1 || fail "$mode: cfl cert revoke localhost: $(tail -n 3 "$T/revoke.log")"
	cp "$T/ws-$proj/$proj/state/crl.pem" "$P/site-1/local/crl.pem"
	check "$mode: site-1 closes its connection to the revoked server" \
		wait_log "$lg" "the server's certificate is revoked" 10
	check "$mode: the server sees site-1 go" \
		wait_log "$T/$mode-server.log" "site-1 disconnected: .*server's certificate is revoked" 10
	check "$mode: site-1's next attempt is refused: the server's certificate is revoked" \
		wait_log "$lg" "(connect|login|handshake).*certificate revoked" 15
	if [ "$mode" = clear ]; then
		check "$mode: site-1's log says the server's certificate is revoked" \
			grep -q "login failed: the server's certificate is revoked" "$lg"
	fi
	n=$(grep -c "site-1 logged in" "$T/$mode-server.log")
	check "$mode: site-1 does not log in to the revoked server (logins: $n)" test "$n" -eq 1
}

for m in mtls tls clear; do
	run_mode "$m"
done
finish
