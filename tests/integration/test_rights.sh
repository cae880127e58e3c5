#!/bin/bash
# Console rights (docs/security.md, "Console rights"): the server applies its own kit's policy
# (local/authorization.json, else the provisioned .default: NVFlare's default) to each admin
# command. Two orgs: the server and site-a in org "a", site-b in org "b"; admins
# admin@a.org (project_admin), lead@a.org, lead@b.org, member@a.org. Checked: a lead of org b
# cannot abort or download the job of org a's lead, nor operate the server (o:site); a member
# cannot submit, and its 64 MiB submit_job is refused on the first frame (the server's peak RSS
# stays under 40 MiB, where a lead's same body is read); a lead aborts its own job and only
# that one; the project_admin does everything; SIGHUP reloads the policy (a malformed one is
# refused and the previous one stays); a malformed policy stops the server at start with the
# file, the line and the reason.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# The admin packs a 64 MiB bundle on its event loop's thread before sending it, and sends no
# heartbeat meanwhile: 8 s were seen under ASan on a loaded machine, past a 6 s dead timeout
# (the server then removed the session mid-upload). 30 s keeps the test about rights.
export CFL_HEARTBEAT_S=1 CFL_DEAD_TIMEOUT_S=30

two_org_project rights.yml rights
provision_or_exit rights.yml localhost
SRV_KIT="$P/localhost"
POLICY="$SRV_KIT/local/authorization.json"

# --- helpers ------------------------------------------------------------------------------------
# Console commands: as admin@a.org unless named, 120 s at most; err: the last one's stderr.
ADMIN=admin@a.org ADM_TIMEOUT=120
err() { cat "$T/adm.err"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status"; }
# refused WHO COMMAND MESSAGE: the command fails (exit 1) with exactly "cfl: MESSAGE".
refused() {
	local out rc
	out=$(adm_as "$1" "$2"); rc=$?
	check "$1: '$2' is refused (exit $rc): $(err)" \
		sh -c "test $rc -eq 1 && test -z \"\$1\" && test \"\$2\" = \"cfl: \$3\"" _ "$out" "$(err)" "$3"
}

# A job that waits: it needs 3 sites and there are 2, so it stays queued until aborted.
mkdir -p job
cp "$CFL_SRC/examples/jobs/fedavg-digits/meta.json" job/
sed 's/"min_clients": 2/"min_clients": 3/' "$CFL_SRC/examples/jobs/fedavg-digits/config.json" >job/config.json
# The same with a 64 MiB body: four 12 MiB files are 64 MiB of base64 in the bundle.
mkdir -p big
cp job/meta.json job/config.json big/
for i in 1 2 3 4; do head -c 12582912 /dev/urandom >big/blob$i.bin; done

# --- a server and two sites, the default policy -------------------------------------------------
start_server "$T/server.log" "$SRV_KIT" || { finish; exit 1; }
SERVER_PID=$LAST_PID
port=$FED_PORT
check "the server reads the provisioned default policy, and knows its org 'a'" \
	grep -qF "authorization policy: '$SRV_KIT/local/authorization.json.default'; this server's org: 'a'" "$T/server.log"
start_bg "$T/site-a.log" "$CFL_BIN" client "$P/site-a" --server ":$port"
SITE_A=$LAST_PID
start_bg "$T/site-b.log" "$CFL_BIN" client "$P/site-b" --server ":$port"
SITE_B=$LAST_PID
check "site-a logs in" wait_log "$T/site-a.log" "logged in to localhost:$port as 'site-a'" 20
check "site-b logs in" wait_log "$T/site-b.log" "logged in to localhost:$port as 'site-b'" 20

# --- leads: each manages its own jobs -----------------------------------------------------------
J1=$(submit_as lead@a.org "$T/job")
check "lead@a.org submits a job ($J1)" test -n "$J1"
J2=$(submit_as lead@a.org "$T/job")
check "lead@a.org submits a second job ($J2)" test -n "$J2"
J3=$(submit_as lead@b.org "$T/job")
check "lead@b.org submits a job ($J3)" test -n "$J3"
st1=$(job_field "$J1" status)

refused lead@b.org "abort_job $J1" "abort_job: manage_job not granted to lead@b.org (lead: n:submitter)"
check "lead@a.org's job is untouched ($(job_field "$J1" status))" test "$(job_field "$J1" status)" = "$st1"
refused lead@b.org "download_job $J1" "download_job not granted to lead@b.org (lead: n:submitter)"
check "nothing was downloaded for lead@b.org" test ! -e "$P/lead@b.org/transfer/$J1"
# A job that does not exist has no submitter: the rule refuses it the same way.
refused lead@b.org "abort_job 20260101-000000-000000" \
	"abort_job: manage_job not granted to lead@b.org (lead: n:submitter)"
# operate is o:site: the server's org is a.
refused lead@b.org "remove_client site-a" "remove_client: operate not granted to lead@b.org (lead: o:site)"
refused lead@b.org "shutdown client all" "shutdown: operate not granted to lead@b.org (lead: o:site)"
check "site-a was not removed" sh -c "! grep -q 'site-a removed' '$T/server.log'"
out=$(adm_as lead@b.org "list_jobs"); rc=$?
check "lead@b.org may view every job (view: any): $(echo "$out" | js 'len(d["jobs"])') jobs" \
	test "$(echo "$out" | js 'len(d["jobs"])')" = 3

out=$(adm_as lead@a.org "abort_job $J2"); rc=$?
check "lead@a.org aborts its own second job (exit $rc): $out $(err)" \
	test $rc -eq 0 -a "$(echo "$out" | js 'd["aborted"]')" = "$J2"
check "that job is aborted" test "$(job_field "$J2" status)" = "FINISHED:ABORTED"
check "and only that one: the first is still $st1" test "$(job_field "$J1" status)" = "$st1"
out=$(adm_as lead@a.org "download_job $J2"); rc=$?
check "lead@a.org downloads its own job (exit $rc) $(err)" \
	test $rc -eq 0 -a -s "$P/lead@a.org/transfer/$J2/job.json"
refused lead@a.org "download_job $J3" "download_job not granted to lead@a.org (lead: n:submitter)"

# --- a member looks, and cannot make the server take a body -------------------------------------
refused member@a.org "submit_job $T/job" "submit_job not granted to member@a.org (member: not listed)"
refused member@a.org "abort_job $J1" "abort_job: manage_job not granted to member@a.org (member: not listed)"
out=$(adm_as member@a.org "list_jobs"); rc=$?
check "member@a.org lists the jobs (exit $rc)" test "$(echo "$out" | js 'len(d["jobs"])')" = 3

hwm0=$(hwm_kb)
t0=$(date +%s%N)
refused member@a.org "submit_job $T/big" "submit_job not granted to member@a.org (member: not listed)"
ms=$((($(date +%s%N) - t0) / 1000000))
hwm1=$(hwm_kb)
echo "     server VmHWM: ${hwm0} kB before, ${hwm1} kB after the member's 64 MiB submit_job (${ms} ms)"
case "${CFL_BUILD:-}" in
*asan*) # ASan's shadow memory and quarantine: the server starts above 40 MiB; its growth counts.
	check "the server's peak RSS grows by less than 32 MiB under ASan ($((hwm1 - hwm0)) kB)" \
		test -n "$hwm0" -a -n "$hwm1" -a "$((hwm1 - hwm0))" -lt 32768 ;;
*) check "the server's peak RSS stays under 40 MiB (${hwm1} kB)" test "$hwm1" -lt 40960 ;;
esac
check "the refusal is logged with its reason" \
	grep -qF "admin member@a.org: 'submit_job' refused: submit_job not granted to member@a.org (member: not listed)" "$T/server.log"
out=$(adm_as member@a.org "list_jobs")
check "no job was stored" test "$(echo "$out" | js 'len(d["jobs"])')" = 3
# The measure sees a body the server does take: the same folder from a lead is read whole (and
# then refused as larger than the 64 MiB a job may be).
out=$(adm_as lead@a.org "submit_job $T/big"); rc=$?
hwm2=$(hwm_kb)
check "a lead's 64 MiB submit_job is read, then refused as too large (exit $rc): $(err)" \
	test $rc -eq 1 -a "$(err)" = "cfl: the job is too large"
check "and the server's peak RSS shows it: +$((hwm2 - hwm1)) kB (${hwm2} kB)" \
	test $((hwm2 - hwm1)) -gt 49152

# --- the project_admin may do everything --------------------------------------------------------
out=$(adm_as admin@a.org "abort_job $J3"); rc=$?
check "admin@a.org aborts lead@b.org's job (exit $rc) $(err)" test $rc -eq 0 -a "$(job_field "$J3" status)" = "FINISHED:ABORTED"
out=$(adm_as admin@a.org "download_job $J1"); rc=$?
check "admin@a.org downloads lead@a.org's job (exit $rc) $(err)" test $rc -eq 0 -a -s "$P/admin@a.org/transfer/$J1/job.json"
out=$(adm_as admin@a.org "check_status server"); rc=$?
check "admin@a.org: check_status server (exit $rc)" test "$(echo "$out" | js 'd["server"]["status"]')" = started
out=$(adm_as admin@a.org "remove_client site-b"); rc=$?
check "admin@a.org removes site-b (exit $rc) $(err)" test "$(echo "$out" | js 'd["removed"]')" = site-b
out=$(adm_as admin@a.org "submit_job $T/job"); rc=$?
J4=$(echo "$out" | js 'd["job_id"]')
check "admin@a.org submits a job (exit $rc)" test -n "$J4"
out=$(adm_as lead@a.org "abort_job $J1"); rc=$?
check "lead@a.org aborts its first job (exit $rc) $(err)" test $rc -eq 0 -a "$(job_field "$J1" status)" = "FINISHED:ABORTED"
out=$(adm_as admin@a.org "shutdown client site-a"); rc=$?
check "admin@a.org shuts site-a down (exit $rc) $(err)" test "$(echo "$out" | js 'd["shutdown"]')" = site-a
check "site-a is told to stop" wait_log "$T/site-a.log" "shutting down" 10
stop_check site-a "$SITE_A"

# --- SIGHUP: the policy is read again -------------------------------------------------------------
printf '{"format_version": "1.0",\n "permissions": {\n  "member": {"view": "any", "submit_job": "sometimes"}}}\n' >"$POLICY"
kill -HUP "$SERVER_PID"
check "a malformed policy is not taken on SIGHUP, with file, line and reason" \
	wait_log "$T/server.log" "SIGHUP: policy not reloaded, '$SRV_KIT/local/authorization.json.default' stays in force: $POLICY: line 3: permissions.member.submit_job: unknown condition 'sometimes'" 10
check "the server still runs" kill -0 "$SERVER_PID"
refused member@a.org "submit_job $T/job" "submit_job not granted to member@a.org (member: not listed)"
printf '{"format_version": "1.0",\n "permissions": {\n  "member": {"view": "any", "submit_job": "o:site"},\n  "lead": {"view": "n:submitter"}}}\n' >"$POLICY"
kill -HUP "$SERVER_PID"
check "a good one is" wait_log "$T/server.log" "SIGHUP: authorization policy reloaded from '$POLICY'" 10
out=$(adm_as member@a.org "submit_job $T/job"); rc=$?
check "now member@a.org may submit (submit_job: o:site) (exit $rc) $(err)" test -n "$(echo "$out" | js 'd["job_id"]')"
refused admin@a.org "list_jobs" "list_jobs: view not granted to admin@a.org (project_admin: no rule in the policy)"
# view: n:submitter lists a lead's own jobs only, and refuses another's by id.
out=$(adm_as lead@b.org "list_jobs"); rc=$?
check "lead@b.org now lists only its own job (exit $rc): $out" \
	test "$(echo "$out" | js '[j["id"] for j in d["jobs"]]')" = "[\"$J3\"]"
refused lead@b.org "list_jobs $J1" "list_jobs: view not granted to lead@b.org (lead: n:submitter)"
stop_check server "$SERVER_PID"
stop_check site-b "$SITE_B"

# --- a malformed policy stops the server at start -------------------------------------------------
printf '{"format_version": "1.0",\n "permissions": {\n  "lead": {"byoc": "o:site"},\n  "researcher": "any"}}\n' >"$POLICY"
timeout 20 "$CFL_BIN" server "$SRV_KIT" --port 0 >"$T/bad.log" 2>&1; rc=$?
check "the server does not start (exit $rc): $(tail -n 1 "$T/bad.log")" test $rc -eq 1
check "it names the file, the line and the reason" \
	grep -qF "cannot load the authorization policy: $POLICY: line 4: permissions: unknown role 'researcher' (project_admin, org_admin, lead, member)" "$T/bad.log"
check "it never listened" sh -c "! grep -q 'listening on port' '$T/bad.log'"

finish
