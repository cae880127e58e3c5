#!/bin/bash
# Admission control (docs/server-client.md "Admission control", docs/security.md §9): JUNK
# connections from one address (127.0.0.2), held open and half of them sending the start of a
# TLS record, reopened a second after the server closes them, while SITES honest sites log in
# from 127.0.0.1 with `cfl client`. Every site gets in, the admin console answers within 1 s,
# the server's peak RSS stays under 512 MiB, and the log holds a few refusal lines for the junk
# address (once a minute, with counts), not one per attempt.
# Environment: JUNK (default 2000), SITES (default 40); bench/bench_admission.sh runs 10,000.
. "$(dirname "$0")/lib.sh"
# Arithmetic on decimal seconds with awk (bc is not on a plain Debian machine): comparisons
# print 1 or 0.
calc() { awk "BEGIN { v = $1; print v }"; }
cd "$T" || exit 1

JUNK=${JUNK:-2000}
SITES=${SITES:-40}
LOGIN_WAIT=${LOGIN_WAIT:-40}
HOLD=${HOLD:-12}          # seconds of junk in all, at least
export CFL_ADMIT_LOG_S=${CFL_ADMIT_LOG_S:-3} # the once-a-minute lines, every 3 s here
python3 -c 'import socket; socket.socket().bind(("127.0.0.2", 0))' 2>/dev/null || {
	echo "SKIP: cannot bind 127.0.0.2 (no loopback /8 here)"
	exit 0
}

{
	echo "api_version: 3"
	echo "name: admission"
	echo "connection_security: mtls"
	echo "participants:"
	echo "  - {name: localhost, type: server, org: test, fed_learn_port: 8002, admin_port: 8003, host_names: [localhost, 127.0.0.1]}"
	for i in $(seq 1 "$SITES"); do echo "  - {name: site-$i, type: client, org: test}"; done
	echo "  - {name: admin@test.org, type: admin, org: test, role: project_admin}"
} >adm.yml
provision_or_exit adm.yml localhost
SRV_KIT="$P/localhost"
check "resources.json.default names the admission keys" \
	grep -q '"max_prelogin_per_address": 64' "$SRV_KIT/local/resources.json.default"

start_server "$T/server.log" "$SRV_KIT" --port 0 --admin-port 0 || {
	finish
	exit 1
}
SRV_PID=$LAST_PID
check "the server logs its admission limits" wait_log "$T/server.log" "admission: max_connections [0-9]+" 5

# --- junk from 127.0.0.2 --------------------------------------------------------------------------
t0=$(date +%s.%N)
start_bg "$T/junk.log" python3 "$CFL_SRC/tests/integration/junk_conns.py" --port "$FED_PORT" \
	--source 127.0.0.2 --count "$JUNK" --seconds $((LOGIN_WAIT + 20)) --partial 2 --reopen-ms 1000
JUNK_PID=$LAST_PID
check "the junk connections are opened ($JUNK)" wait_log "$T/junk.log" '^ready' 30
sleep 1

# --- honest sites from 127.0.0.1 --------------------------------------------------------------------
t1=$(date +%s.%N)
SITE_PIDS=""
for i in $(seq 1 "$SITES"); do
	start_bg "$T/site-$i.log" "$CFL_BIN" client "$P/site-$i" --server ":$FED_PORT"
	SITE_PIDS="$SITE_PIDS $LAST_PID"
done
in=0
for _ in $(seq 1 $((LOGIN_WAIT * 5))); do
	in=$(grep -Ec "^.*site-[0-9]+ logged in from" "$T/server.log")
	[ "$in" -ge "$SITES" ] && break
	sleep 0.2
done
t2=$(date +%s.%N)
login_s=$(calc "$t2 - $t1")
check "every honest site logged in ($in of $SITES, ${login_s} s)" test "$in" -ge "$SITES"

# --- the admin console, while the junk keeps coming -------------------------------------------------
a0=$(date +%s.%N)
timeout 10 "$CFL_BIN" admin "$P/admin@test.org" --server ":$ADMIN_PORT" --cmd "check_status server" \
	>status.out 2>status.err
arc=$?
a1=$(date +%s.%N)
admin_s=$(calc "$a1 - $a0")
check "the admin console answers (exit $arc) in < 1 s (${admin_s} s)" \
	sh -c "test $arc -eq 0 && test \"\$0\" = 1" "$(calc "$admin_s < 1")"
timeout 10 "$CFL_BIN" admin "$P/admin@test.org" --server ":$ADMIN_PORT" --cmd "check_status client" \
	>clients.out 2>&1
listed=$(grep -Ec 'site-[0-9]+' clients.out)
check "check_status client lists every site ($listed)" test "$listed" -ge "$SITES"

hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$SRV_PID/status")
check "server peak RSS < 512 MiB (${hwm} KiB)" test "${hwm:-999999999}" -lt 524288

# --- the log: a line per address and period, not one per refusal ------------------------------------
while [ "$(calc "$(date +%s.%N) - $t0 < $HOLD")" = 1 ]; do sleep 0.5; done
stop_bg "$JUNK_PID" INT
sleep "$CFL_ADMIT_LOG_S"
secs=$(calc "$(date +%s.%N) - $t0")
junk_line=$(grep '^junk:' "$T/junk.log")
refused=$(grep -o 'closed by the server [0-9]*' "$T/junk.log" | grep -o '[0-9]*$')
junk_lines=$(grep -c 'admission: .*127\.0\.0\.2' "$T/server.log")
all_lines=$(wc -l <"$T/server.log")
periods=$(calc "int($secs / $CFL_ADMIT_LOG_S + 2)")
check "the junk address's first refusal is logged" grep -q 'admission: refused a connection from 127.0.0.2 (' "$T/server.log"
check "later refusals are logged as counts" grep -Eq 'admission: 127.0.0.2: [0-9]+ refused in the last' "$T/server.log"
check "failures before login are logged as counts" grep -Eq 'admission: 127.0.0.2: [0-9]+ connections failed before login' "$T/server.log"
check "the server closed junk connections (${refused:-0})" test "${refused:-0}" -ge "$((JUNK / 2))"
check "lines for 127.0.0.2: at most two per period ($junk_lines in ${secs} s, period $CFL_ADMIT_LOG_S s)" \
	test "$junk_lines" -le $((2 * periods))
check "the server log stays short ($all_lines lines)" test "$all_lines" -lt $((4 * SITES + 2 * periods + 40))
check "no site was refused by admission" sh -c "! grep -Eq 'admission: .*$LOOP' '$T/server.log'"

echo "figures: junk $JUNK from 127.0.0.2, $SITES sites: logins ${login_s} s, admin check_status" \
	"${admin_s} s, server VmHWM $((hwm / 1024)) MiB, lines for the junk address $junk_lines in" \
	"${secs} s (one per $CFL_ADMIT_LOG_S s and kind), server log lines $all_lines"
echo "$junk_line"
grep 'admission: ' "$T/server.log" | head -n 4 | cut -c 26-

for p in $SITE_PIDS; do kill -TERM "$p" 2>/dev/null; done
for p in $SITE_PIDS; do stop_bg "$p"; done
stop_check "cfl server" "$SRV_PID"

# --- near the descriptor limit: a server limited to 160 descriptors -----------------------------------
# The per-address limit raised so that one address reaches the connection cap (160 - 64 - 16):
# connections beyond it are refused with one line, accepting does not spin, and the admin console
# still gets in on its reserve.
echo '{"max_prelogin_per_address": 1000, "max_prelogin_connections": 1000}' >"$SRV_KIT/local/resources.json"
start_bg "$T/server2.log" prlimit --nofile=160:160 "$CFL_BIN" server "$SRV_KIT" --port 0 \
	--admin-port 0 --port-file "$T/ports2"
SRV_PID=$LAST_PID
wait_ports "$T/ports2" "$SRV_PID" || fail "the server with 160 descriptors did not start: $(tail -n 3 "$T/server2.log")"
check "its connection cap: 160 - 64 - 16" grep -q 'admission: max_connections 80,' "$T/server2.log"
start_bg "$T/junk2.log" python3 "$CFL_SRC/tests/integration/junk_conns.py" --port "$FED_PORT" \
	--source 127.0.0.2 --count 400 --seconds 30 --partial 2 --reopen-ms 200
JUNK_PID=$LAST_PID
wait_log "$T/junk2.log" '^ready' 30
sleep 2
ticks0=$(awk '{print $14 + $15}' "/proc/$SRV_PID/stat")
a0=$(date +%s.%N)
timeout 10 "$CFL_BIN" admin "$P/admin@test.org" --server ":$ADMIN_PORT" --cmd "check_status server" \
	>status2.out 2>&1
arc=$?
admin_s=$(calc "$(date +%s.%N) - $a0")
check "at the cap, the admin console answers (exit $arc) in < 1 s (${admin_s} s)" \
	sh -c "test $arc -eq 0 && test \"\$0\" = 1" "$(calc "$admin_s < 1")"
sleep 2
ticks=$(($(awk '{print $14 + $15}' "/proc/$SRV_PID/stat") - ticks0))
check "at the cap, the server does not spin ($ticks ticks of CPU in ~2 s)" test "$ticks" -lt 150
stop_bg "$JUNK_PID" INT
check "the cap's refusal is logged" grep -Eq 'admission: refused a connection from 127.0.0.2 \((connection cap max_connections 80|descriptors in use near the limit 160)' "$T/server2.log"
n2=$(wc -l <"$T/server2.log")
check "and the log stays short ($n2 lines)" test "$n2" -lt 40
grep 'admission: ' "$T/server2.log" | tail -n +2 | head -n 2 | cut -c 26-
rm -f "$SRV_KIT/local/resources.json"
check "no sanitizer report from the servers" \
	sh -c "! grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error' '$T/server.log' '$T/server2.log'"
stop_check "cfl server" "$SRV_PID"
finish
