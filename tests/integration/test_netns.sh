#!/bin/bash
# The seed's multi-address case on separate test hosts: network namespaces made here, the server
# reachable at two addresses (one per network), a client in each network connecting through the
# address its connect_to names, both passing the certificate check.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

id=$$
NS_S=cfl-s-$id; NS_A=cfl-a-$id; NS_B=cfl-b-$id
if [ "$(id -u)" -ne 0 ] || ! ip netns add "$NS_S" 2>/dev/null; then
	echo "SKIP: cannot create network namespaces here (needs root and CAP_SYS_ADMIN)"
	exit 77
fi
netns_cleanup() {
	ip netns del "$NS_S" 2>/dev/null; ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_B" 2>/dev/null
	rm -rf "/etc/netns/$NS_B"
}
trap 'cleanup; netns_cleanup' EXIT
ip netns add "$NS_A" && ip netns add "$NS_B" || { fail "netns"; finish; exit 1; }
# Two private networks that exist only inside these namespaces.
ip link add va-$id type veth peer name vas-$id
ip link add vb-$id type veth peer name vbs-$id
ip link set va-$id netns "$NS_A"; ip link set vas-$id netns "$NS_S"
ip link set vb-$id netns "$NS_B"; ip link set vbs-$id netns "$NS_S"
ip -n "$NS_S" addr add 10.251.1.1/24 dev vas-$id
ip -n "$NS_S" addr add 10.251.2.1/24 dev vbs-$id
ip -n "$NS_A" addr add 10.251.1.2/24 dev va-$id
ip -n "$NS_B" addr add 10.251.2.2/24 dev vb-$id
for ns in "$NS_S" "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
ip -n "$NS_S" link set vas-$id up; ip -n "$NS_S" link set vbs-$id up
ip -n "$NS_A" link set va-$id up; ip -n "$NS_B" link set vb-$id up
# Network B knows the server by a name only ("ip netns exec" mounts this file over /etc/hosts).
mkdir -p "/etc/netns/$NS_B"
printf '127.0.0.1 localhost\n10.251.2.1 fl-internal.test\n' >"/etc/netns/$NS_B/hosts"

check "network A cannot reach network B's address" sh -c "! ip netns exec $NS_A ping -c1 -W1 10.251.2.1"

cat >multi.yml <<'YML'
api_version: 3
name: multi
participants:
  - name: server
    type: server
    org: test
    fed_learn_port: 8002
    admin_port: 8003
    host_names: [10.251.1.1, fl-internal.test]
    default_host: 10.251.1.1
  - {name: red, type: client, org: test, connect_to: 10.251.1.1}
  - {name: blue, type: client, org: test, connect_to: fl-internal.test}
  - {name: silver, type: client, org: test}
YML
P=$(provision multi.yml "$T/ws")
start_bg "$T/server.log" ip netns exec "$NS_S" "$CFL_BIN" server "$P/server" --diag
spid=$LAST_PID
check "the server listens" wait_log "$T/server.log" "listening on port 8002" 10

out=$(timeout 20 ip netns exec "$NS_A" "$CFL_BIN" client "$P/red" --message from-a 2>&1); rc=$?
check "red (network A) connects through 10.251.1.1: $(echo "$out" | tail -n 1)" test $rc -eq 0
out=$(timeout 20 ip netns exec "$NS_B" "$CFL_BIN" client "$P/blue" --message from-b 2>&1); rc=$?
check "blue (network B) connects through fl-internal.test: $(echo "$out" | tail -n 1)" test $rc -eq 0
out=$(timeout 20 ip netns exec "$NS_A" "$CFL_BIN" client "$P/silver" --message from-a 2>&1); rc=$?
check "silver (network A, default host 10.251.1.1) connects" test $rc -eq 0
check "server logged red through 10.251.1.1" grep -Eq "red logged in from 10\.251\.1\.2:[0-9]+ to (\[::ffff:)?10\.251\.1\.1" "$T/server.log"
check "server logged blue through 10.251.2.1" grep -Eq "blue logged in from 10\.251\.2\.2:[0-9]+ to (\[::ffff:)?10\.251\.2\.1" "$T/server.log"
out=$(timeout 20 ip netns exec "$NS_B" "$CFL_BIN" client "$P/red" --message wrong-net 2>&1); rc=$?
check "red's address is unreachable from network B (fails)" test $rc -ne 0
stop_check "the server" $spid
finish
