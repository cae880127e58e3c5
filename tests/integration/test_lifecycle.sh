#!/bin/bash
# Process life cycle: the kit's start.sh / stop_fl.sh, refusing a changed kit, a client that
# reconnects by itself after the server restarts, clean exits on SIGTERM.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
export CFL=$CFL_BIN

cat >life.yml <<YML
api_version: 3
name: life
participants:
  - {name: localhost, type: server, org: test, fed_learn_port: 8002, admin_port: 8002}
  - {name: site-1, type: client, org: test}
  - {name: site-2, type: client, org: test}
  - {name: admin@test.org, type: admin, org: test, role: project_admin}
YML
P=$(provision life.yml "$T/ws")

# --- a changed kit refuses to start, naming the file --------------------------------------------
cp -a "$P/localhost" "$T/bad-server"
echo '# edited' >>"$T/bad-server/startup/start.sh"
out=$(timeout 10 "$CFL_BIN" server "$T/bad-server" 2>&1); rc=$?
check "a changed server kit refuses to start (exit $rc)" test $rc -eq 1
check "and names the file: $(echo "$out" | tail -n 1)" sh -c "echo \"\$1\" | grep -q 'start.sh'" _ "$out"
cp -a "$P/site-1" "$T/off-client"
sed -i 's/"secure_train": true/"secure_train": false/' "$T/off-client/startup/fed_client.json"
out=$(timeout 10 "$CFL_BIN" client "$T/off-client" --message x 2>&1); rc=$?
check "turning secure_train off in a signed kit does not skip the check (exit $rc)" \
	sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q fed_client.json" _ "$out"
# ...nor deleting signature.json as well: a kit cannot switch its own check off.
rm "$T/off-client/startup/signature.json"
out=$(timeout 10 "$CFL_BIN" client "$T/off-client" --message x 2>&1); rc=$?
check "an unsigned kit with secure_train off refuses to start (exit $rc): $(echo "$out" | tail -n 1)" \
	sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'is not signed (no startup/signature.json)'" _ "$out"
cp -a "$P/localhost" "$T/off-server"
sed -i 's/"secure_train": true/"secure_train": false/' "$T/off-server/startup/fed_server.json"
rm "$T/off-server/startup/signature.json"
out=$(timeout 10 "$CFL_BIN" server "$T/off-server" --port 0 2>&1); rc=$?
check "so does such a server kit (exit $rc)" \
	sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'is not signed'" _ "$out"
# A kit changed in place cannot even be run with the simulator's --unsigned-kit: it is signed.
out=$(timeout 10 "$CFL_BIN" server "$T/bad-server" --unsigned-kit --port 0 2>&1); rc=$?
check "--unsigned-kit does not skip the check of a signed kit (exit $rc)" \
	sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'start.sh'" _ "$out"
cp -a "$P/site-1" "$T/bad-client"
rm "$T/bad-client/startup/rootCA.pem"
out=$(timeout 10 "$CFL_BIN" client "$T/bad-client" --message x 2>&1); rc=$?
check "a client kit missing a file refuses to start, naming it" sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q rootCA.pem" _ "$out"

# --- the test topics exist only with --diag; ping always -------------------------------------------
start_server "$T/nodiag.log" "$P/localhost" || { finish; exit 1; }
spid=$LAST_PID port=$FED_PORT
out=$(timeout 20 "$CFL_BIN" client "$P/site-1" --server ":$port" --ping 3 2>&1); rc=$?
check "without --diag, ping is served: $(echo "$out" | tail -n 1)" test $rc -eq 0
for act in "--message x" "--send 100000" "--recv 1000"; do
	# shellcheck disable=SC2086 # the action is two words
	out=$(timeout 20 "$CFL_BIN" client "$P/site-1" --server ":$port" $act 2>&1); rc=$?
	check "without --diag, $act is refused (exit $rc): $(echo "$out" | tail -n 1)" \
		sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'no handler for this topic'" _ "$out"
done
start_bg "$T/nodiag-site-1.log" "$CFL_BIN" client "$P/site-1" --server ":$port"
cpid=$LAST_PID
check "site-1 logs in" wait_log "$T/nodiag-site-1.log" "logged in to localhost:$port" 10
out=$(timeout 20 "$CFL_BIN" client "$P/site-2" --server ":$port" --message x --to site-1 2>&1); rc=$?
check "without --diag, echo is not routed between sites: $(echo "$out" | tail -n 1)" \
	sh -c "test $rc -eq 1 && echo \"\$1\" | grep -q 'only app.\* topics and those this server routes'" _ "$out"
check "and site-1 saw nothing of it" sh -c "! grep -q 'echo request' '$T/nodiag-site-1.log'"
stop_check "site-1 (server without --diag)" $cpid
stop_check "the server without --diag" $spid

# --- start.sh / stop_fl.sh -------------------------------------------------------------------------
# start.sh passes its arguments on to cfl server: a port the kernel picks, written to a file.
out=$("$P/localhost/startup/start.sh" --port 0 --port-file "$T/ports" --diag)
wait_ports "$T/ports"
port=${FED_PORT:-none}
check "start.sh starts the server: $out" wait_log "$P/localhost/log.txt" "listening on port $port" 10
spid=$(cat "$P/localhost/pid.fl")
PIDS="$PIDS $spid"
check "pid.fl holds a running process" kill -0 "$spid"

# --- a client without an action stays connected and reconnects after a server restart -----------
start_bg "$T/client.log" "$CFL_BIN" client "$P/site-1" --server ":$port"
cpid=$LAST_PID
check "the client connects" wait_log "$T/client.log" "logged in to localhost:$port" 10
out=$("$P/localhost/startup/stop_fl.sh")
check "stop_fl.sh stops the server: $out" sh -c "! kill -0 $spid 2>/dev/null"
# start.sh's server is no child of this script, so its exit status cannot be read: its log
# shows it reached the shutdown. The restarted server below is this script's child, and its
# exit status after stop_fl.sh is checked.
check "the server logged its shutdown" grep -q "shutting down (SIGTERM)" "$P/localhost/log.txt"
forget_pid "$spid"
check "the client sees the drop and plans a reconnect" wait_log "$T/client.log" "reconnecting in" 10
# The restart runs sub_start.sh, what start.sh runs in the background, as a child of this
# script. The client reconnects to the port it knows: the server takes it back.
start_bg "$T/server2.log" "$P/localhost/startup/sub_start.sh" --port "$port" --port-file "$T/ports2" --diag
spid=$LAST_PID
wait_ports "$T/ports2" "$spid"
check "the restarted server listens on port $port (${FED_PORT:-not listening})" test "$FED_PORT" = "$port"
check "sub_start.sh wrote its pid to pid.fl" test "$(cat "$P/localhost/pid.fl" 2>/dev/null)" = "$spid"
check "the client reconnects by itself after the restart" \
	sh -c "wait_n() { i=0; while [ \$i -lt 150 ]; do [ \$(grep -c 'logged in to localhost' '$T/client.log') -ge 2 ] && return 0; sleep 0.2; i=\$((i+1)); done; return 1; }; wait_n"
# --- routing between cells: site-2 -> server -> site-1 (the running client) ---------------------
out=$(timeout 20 "$CFL_BIN" client "$P/site-2" --server ":$port" --message routed-hello --to site-1 2>&1); rc=$?
check "a message from site-2 to site-1 is routed by the server: $(echo "$out" | tail -n 1)" test $rc -eq 0
check "site-1 answered it" grep -q "echo request from site-2" "$T/client.log"
out=$(timeout 20 "$CFL_BIN" client "$P/site-2" --server ":$port" --message x --to nobody 2>&1); rc=$?
check "a message to an unknown cell is reported failed: $(echo "$out" | tail -n 1)" sh -c "test $rc -ne 0 && echo \"\$1\" | grep -q 'no such cell'" _ "$out"
out=$(timeout 20 "$CFL_BIN" admin "$P/admin@test.org" --server ":$port" --cmd "check_status client" --json 2>&1)
check "check_status client --json lists site-1 with its mode: $out" sh -c "echo \"\$1\" | grep -Eq '\"name\":\"site-1\",\"address\":\"$LOOP:[0-9]+\",\"via\":\"[^\"]*\",\"connection_security\":\"mtls\",\"connected\":true'" _ "$out"
out=$(timeout 20 "$CFL_BIN" admin "$P/admin@test.org" --server ":$port" --cmd "check_status server" --json 2>&1)
check "check_status server --json: $out" sh -c "echo \"\$1\" | grep -q '\"status\":\"started\"'" _ "$out"
out=$(timeout 20 "$CFL_BIN" admin "$P/admin@test.org" --server ":$port" --cmd "remove_client site-1" --json 2>"$T/adm.err"); rc=$?
check "remove_client site-1 (exit $rc): $out$(head -n 1 "$T/adm.err")" \
	sh -c "test $rc -eq 0 && test \"\$1\" = '{\"removed\":\"site-1\"}'" _ "$out"
check "site-1 is cut off and logs in again by itself" \
	sh -c "i=0; while [ \$i -lt 100 ]; do [ \$(grep -c 'logged in to localhost' '$T/client.log') -ge 3 ] && exit 0; sleep 0.2; i=\$((i+1)); done; exit 1"
stop_check "the client" $cpid
out=$("$P/localhost/startup/stop_fl.sh")
wait "$spid"; rc=$?
forget_pid "$spid"
check "stop_fl.sh stops the restarted server: $out; exit status $(status_text $rc)" test $rc -eq 0
check "no cfl process of this test is left" sh -c "! kill -0 $spid 2>/dev/null && ! kill -0 $cpid 2>/dev/null"
check "cfl server --help exits 0" "$CFL_BIN" server --help
check "cfl client --help exits 0" "$CFL_BIN" client --help
check "cfl client without a kit is a usage error (2)" sh -c "'$CFL_BIN' client; test \$? -eq 2"
finish
