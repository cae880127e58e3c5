#!/bin/bash
# Kill the network path of a logged-in client (packets silently dropped, no reset) for longer
# than a heartbeat but shorter than the dead-client timeout: the client notices, comes back under
# the same identity by itself, and every request it sent meanwhile is either answered or
# reported failed to it, never silently lost.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

id=$$
NS_S=cfl-ks-$id; NS_C=cfl-kc-$id
if [ "$(id -u)" -ne 0 ] || ! ip netns add "$NS_S" 2>/dev/null; then
	echo "SKIP: cannot create network namespaces here (needs root and CAP_SYS_ADMIN)"
	exit 77
fi
trap 'cleanup; ip netns del "$NS_S" 2>/dev/null; ip netns del "$NS_C" 2>/dev/null' EXIT
ip netns add "$NS_C"
ip link add kc-$id type veth peer name ks-$id
ip link set kc-$id netns "$NS_C"; ip link set ks-$id netns "$NS_S"
ip -n "$NS_S" addr add 10.252.1.1/24 dev ks-$id
ip -n "$NS_C" addr add 10.252.1.2/24 dev kc-$id
for ns in "$NS_S" "$NS_C"; do ip -n "$ns" link set lo up; done
ip -n "$NS_S" link set ks-$id up; ip -n "$NS_C" link set kc-$id up

cat >pk.yml <<'YML'
api_version: 3
name: pk
participants:
  - {name: 10.252.1.1, type: server, org: test, fed_learn_port: 8002, admin_port: 8003}
  - {name: site-1, type: client, org: test}
  - {name: admin@test.org, type: admin, org: test, role: project_admin}
YML
P=$(provision pk.yml "$T/ws")
export CFL_HEARTBEAT_S=1 CFL_DEAD_TIMEOUT_S=30
start_bg "$T/server.log" ip netns exec "$NS_S" "$CFL_BIN" server "$P/10.252.1.1"
spid=$LAST_PID
check "the server listens" wait_log "$T/server.log" "listening on port 8002" 10
start_bg "$T/client.log" ip netns exec "$NS_C" "$CFL_BIN" client "$P/site-1" --ping-for 22
cpid=$LAST_PID
check "site-1 logs in" wait_log "$T/server.log" "site-1 logged in" 10
sleep 3
# Drop the path: packets vanish, nobody gets a reset.
ip netns exec "$NS_S" tc qdisc add dev ks-$id root netem loss 100% 2>/dev/null ||
	ip -n "$NS_C" link set kc-$id down
ip netns exec "$NS_C" tc qdisc add dev kc-$id root netem loss 100% 2>/dev/null
echo "path down at $(date +%T)"
sleep 6
ip netns exec "$NS_S" tc qdisc del dev ks-$id root 2>/dev/null
ip netns exec "$NS_C" tc qdisc del dev kc-$id root 2>/dev/null
ip -n "$NS_C" link set kc-$id up
echo "path up at $(date +%T)"

i=0
while kill -0 $cpid 2>/dev/null && [ $i -lt 400 ]; do sleep 0.1; i=$((i + 1)); done
wait $cpid; rc=$?
summary=$(grep 'pingloop: sent' "$T/client.log")
echo "$summary"
check "the client finished with every request accounted for (exit $rc)" test $rc -eq 0
check "it noticed the dead path" grep -Eq "heartbeat|timed out|lost" "$T/client.log"
check "it logged in again by itself (logins >= 2)" sh -c "echo '$summary' | grep -Eq 'logins ([2-9]|[1-9][0-9])'"
check "the server saw site-1 log in twice under the same identity" test "$(grep -c 'site-1 logged in' "$T/server.log")" -ge 2
check "the server did not remove site-1 as dead (outage < dead timeout)" sh -c "! grep -q 'site-1 silent' '$T/server.log'"
sent=$(echo "$summary" | sed -n 's/.*sent \([0-9]*\), ok \([0-9]*\), failed \([0-9]*\).*/\1 \2 \3/p')
set -- $sent
check "sent = ok + failed ($1 = $2 + $3)" test "$1" -eq $(($2 + $3))
check "most requests were answered" test "$2" -gt 30
stop_check "the server" $spid
finish
