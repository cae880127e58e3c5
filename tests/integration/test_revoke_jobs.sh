#!/bin/bash
# A job signed by an admin who is revoked after signing it, and deployed after that (it waited
# for a second site), is refused by every site holding the CRL in its kit's local/crl.pem:
# sites read it again before checking each job's signature (docs/security.md §9.1).
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
export CFL_HEARTBEAT_S=1 CFL_DEAD_TIMEOUT_S=10

project_yml rj.yml rj "" "site-1 site-2" "$PROJECT_ADMIN" \
	"{name: lead@test.org, type: admin, org: test, role: lead}"
provision_or_exit rj.yml localhost

mkdir -p job
echo '{"name": "waits"}' >job/meta.json
cat >job/config.json <<JSON
{"workflow": {"name": "fedavg", "num_rounds": 1, "min_clients": 2, "round_timeout_s": 30},
 "executor": {"type": "builtin", "dataset": "synthetic", "floats": 9},
 "sites": ["@ALL"]}
JSON

start_server "$T/server.log" "$P/localhost" || { finish; exit 1; }
srv=$LAST_PID
start_bg "$T/site-1.log" "$CFL_BIN" client "$P/site-1" --server ":$FED_PORT"
s1=$LAST_PID
check "site-1 logs in" wait_log "$T/server.log" "site-1 logged in" 15

out=$(timeout 30 "$CFL_BIN" admin "$P/lead@test.org" --server ":$FED_PORT" --cmd "submit_job $T/job" \
	--json 2>"$T/submit.err")
id=$(echo "$out" | sed -n 's/.*"job_id": *"\([^"]*\)".*/\1/p')
check "lead@test.org submits a job that waits for two sites ($id) $(cat "$T/submit.err")" test -n "$id"

"$CFL_BIN" cert revoke -p "$T/rj.yml" -w "$T/ws" lead@test.org --reason privilegeWithdrawn \
	>"$T/revoke.log" 2>&1
check "lead@test.org is revoked: $(tail -n 1 "$T/revoke.log")" test -s "$T/ws/rj/state/crl.pem"
for k in site-1 site-2; do cp "$T/ws/rj/state/crl.pem" "$P/$k/local/crl.pem"; done

start_bg "$T/site-2.log" "$CFL_BIN" client "$P/site-2" --server ":$FED_PORT"
s2=$LAST_PID
for k in site-1 site-2; do
	check "$k refuses the job: its signer's certificate is revoked" \
		wait_log "$T/$k.log" "job $id refused: .*certificate revoked" 20
	check "$k trained nothing of it" sh -c "! grep -q 'job $id round 1: trained' '$T/$k.log'"
done
stop_check "site-1" "$s1"
stop_check "site-2" "$s2"
stop_check "the server" "$srv"
finish
