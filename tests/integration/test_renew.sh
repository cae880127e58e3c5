#!/bin/bash
# Renewal without restart (issue 10, docs/server-client.md "SIGHUP"): site-1 renewed with a
# 30-day certificate for the same key, swapped into its kit and SIGHUPed, stays connected (and
# its site policy is reloaded as before); after remove_client it logs in again with the new
# certificate: check_status client --json shows cert_not_after about 30 days from now and the
# server warns that it expires within 30 days. A certificate for another key is refused on
# SIGHUP with a log line, and the one in force stays.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

project_yml rn.yml rn mtls site-1 "$PROJECT_ADMIN"
provision_or_exit rn.yml localhost

# A new certificate for site-1 (DAYS days; KEY: its key, or "" for a new one) at $T/$1.crt.
renew_cert() { # renew_cert OUT DAYS [KEY]
	local d="$T/req-$1"
	mkdir -p "$d"
	"$CFL_BIN" cert request -n site-1 -t client --org test ${3:+--key "$3"} -d "$d" >>renew.log 2>&1 &&
		"$CFL_BIN" cert approve -p rn.yml -w "$T/ws" "$d/site-1.request.json" --days "$2" \
			-o "$d/approval" >>renew.log 2>&1 &&
		"$CFL_BIN" package "$d/approval" --key "${3:-$d/site-1.key}" -d "$d/kit" >>renew.log 2>&1 &&
		cp "$d/kit/startup/client.crt" "$T/$1.crt"
}
adm() { timeout 20 "$CFL_BIN" admin "$P/admin@test.org" --server ":$ADMIN_PORT" "$@"; }
# site-1's cert_not_after from check_status client --json, as epoch seconds.
not_after() {
	adm --cmd "check_status client" --json 2>/dev/null | python3 -c '
import json, sys, calendar, time
for c in json.load(sys.stdin)["clients"]:
    if c["name"] == "site-1":
        print(calendar.timegm(time.strptime(c["cert_not_after"], "%Y-%m-%dT%H:%M:%SZ")))'
}
logins() { grep -c "site-1 logged in" "$T/server.log"; }

start_server "$T/server.log" "$P/localhost" || { finish; exit 1; }
srv=$LAST_PID
start_bg "$T/site-1.log" "$CFL_BIN" client "$P/site-1" --server ":$FED_PORT"
s1=$LAST_PID
check "site-1 logs in" wait_log "$T/server.log" "site-1 logged in" 10
na0=$(not_after)
check "check_status shows cert_not_after about 360 days away ($na0)" \
	test "$((${na0:-0} - $(date +%s)))" -gt $((300 * 86400))

# --- renewed with the same key: the connection goes on ---------------------------------------------
renew_cert good 30 "$P/site-1/startup/client.key" || fail "renewal: $(tail -n 3 renew.log)"
cp good.crt "$P/site-1/startup/client.crt"
kill -HUP "$s1"
check "site-1 reloads its certificate on SIGHUP" \
	wait_log "$T/site-1.log" "SIGHUP: certificate .* reloaded" 5
check "site-1 still reloads its site policy on SIGHUP" \
	wait_log "$T/site-1.log" "SIGHUP: site policy reloaded" 5
sleep 2
check "site-1 stays connected (logins: $(logins))" test "$(logins)" -eq 1
check "site-1 is alive" kill -0 "$s1"

# --- the next login uses it ------------------------------------------------------------------
adm --cmd "remove_client site-1" >remove.out 2>&1
check "site-1 logs in again after remove_client" \
	sh -c "for i in \$(seq 1 100); do [ \$(grep -c 'site-1 logged in' '$T/server.log') -ge 2 ] && exit 0; sleep 0.1; done; exit 1"
na=$(not_after)
now=$(date +%s)
check "cert_not_after is about 30 days from now ($na)" \
	test "$((${na:-0} - now))" -gt $((29 * 86400)) -a "$((${na:-0} - now))" -le $((31 * 86400))
check "the server warns that site-1's certificate expires within 30 days" \
	wait_log "$T/server.log" "site-1's certificate expires on .*\(in (29|30) days\)" 5
n=$(grep -c "site-1's certificate expires on" "$T/server.log")

# --- a certificate for another key: refused, the old one stays -------------------------------
renew_cert other 30 "" || fail "other certificate: $(tail -n 3 renew.log)"
cp other.crt "$P/site-1/startup/client.crt"
kill -HUP "$s1"
check "a certificate for another key is refused on SIGHUP with a log line" \
	wait_log "$T/site-1.log" "SIGHUP: certificate not reloaded.*does not match" 5
adm --cmd "remove_client site-1" >remove.out 2>&1
check "site-1 logs in again with the certificate in force" \
	sh -c "for i in \$(seq 1 100); do [ \$(grep -c 'site-1 logged in' '$T/server.log') -ge 3 ] && exit 0; sleep 0.1; done; exit 1"
na2=$(not_after)
check "it is the renewed certificate, kept in memory ($na2)" test "${na2:-0}" = "$na"
check "the expiry warning is logged once per certificate" \
	test "$(grep -c "site-1's certificate expires on" "$T/server.log")" -eq "$n"

stop_check "site-1" "$s1"
stop_check "server" "$srv"
finish
