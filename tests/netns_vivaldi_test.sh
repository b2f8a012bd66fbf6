#!/bin/sh
# Network coordinates over real, delayed links (issue 6): 8 `shardfs node` processes, each in a
# network namespace of its own, joined by veth pairs to a bridge in a hub namespace; tc netem
# delays each node's link in both directions (node i by D_i ms each way), so the round trip
# between nodes a and b is about 2 (D_a + D_b). A client namespace (delay 1 ms) holds the
# drive. After a minute of gossip:
#  - each node's coordinate predicts the round trips it measured to the others within 25% for
#    at least 80% of the pairs;
#  - `shardfs nodes` (the client's own coordinate, fitted to its status round trips) predicts
#    its round trip to each node within 25% for at least 6 of the 8.
# Everything is made in namespaces this test creates (named sfsv<pid>*), and deleted at exit;
# the host's own network is not touched. Without root, ip, tc, network namespaces, veth,
# bridges or netem (sch_netem), it exits 77 (skipped) saying which is missing;
# GossipIntegrationTest.CoordinatesLearnTheDelaysOfRealProcesses covers the coordinates on
# loopback then. Usage: netns_vivaldi_test.sh SHARDFS
set -eu
bin=$1
skip() {
  echo "SKIPPED: $*" >&2
  exit 77
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "no 'ip' (iproute2)"
command -v tc >/dev/null || skip "no 'tc' (iproute2)"
command -v jq >/dev/null || skip "no jq"

id=sfsv$$
hub=${id}h
dir=$(mktemp -d)
namespaces=
pids=
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  for ns in $namespaces; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

ip netns add "$hub" 2>/dev/null || skip "cannot create a network namespace here (not permitted)"
namespaces="$hub"
ip -n "$hub" link set lo up
ip -n "$hub" link add br0 type bridge 2>/dev/null || skip "no bridge support in this kernel"
ip -n "$hub" link set br0 up
ip netns exec "$hub" tc qdisc add dev lo root netem delay 1ms 2>/dev/null ||
  skip "tc netem is not available in this kernel (no sch_netem)"
ip netns exec "$hub" tc qdisc del dev lo root

# attach NAME INDEX DELAY_MS: namespace NAME with address 10.77.0.INDEX, linked to the hub,
# its link delayed DELAY_MS each way.
attach() {
  ip netns add "$1"
  namespaces="$namespaces $1"
  ip -n "$hub" link add "a$2" type veth peer name eth0 netns "$1" 2>/dev/null ||
    skip "no veth support in this kernel"
  ip -n "$hub" link set "a$2" master br0 up
  ip -n "$1" link set lo up
  ip -n "$1" addr add "10.77.0.$2/24" dev eth0
  ip -n "$1" link set eth0 up
  ip netns exec "$1" tc qdisc add dev eth0 root netem delay "${3}ms"
  ip netns exec "$hub" tc qdisc add dev "a$2" root netem delay "${3}ms"
}

set -- 2 5 10 20 3 8 15 4
n=0
for d in "$@"; do
  n=$((n + 1))
  attach "${id}n$n" "$n" "$d"
  eval "delay$n=$d"
done
attach "${id}c" 100 1
gossip="--gossip-period 0.5 --gossip-ping-timeout 0.25 --gossip-republish 2"
i=1
nodes=
while [ "$i" -le "$n" ]; do
  join=
  [ "$i" -gt 1 ] && join="--join 10.77.0.1:7070"
  # shellcheck disable=SC2086
  ip netns exec "${id}n$i" "$bin" node --data "$dir/n$i" --capacity 256M --reserve 0 \
    --listen "10.77.0.$i:7070" --scrub-rate 0 --ready-file "$dir/ready$i" $gossip $join \
    2>"$dir/log$i" &
  pids="$pids $!"
  t=0
  while [ ! -s "$dir/ready$i" ]; do
    t=$((t + 1))
    [ "$t" -lt 100 ] || fail "node $i did not start: $(cat "$dir/log$i")"
    sleep 0.1
  done
  nodes="$nodes${nodes:+,}10.77.0.$i:7070"
  i=$((i + 1))
done
client() { ip netns exec "${id}c" "$bin" "$@" --home "$dir/h"; }
client init --node "$nodes" --k 4 --m 2 >/dev/null 2>"$dir/err" || fail "init: $(cat "$dir/err")"

echo "gossip for 60 s over links of $* ms each way..."
sleep 60

# Each node's own view: its live coordinate and its measured round trips.
i=1
while [ "$i" -le "$n" ]; do
  ip netns exec "${id}n$i" curl -s "http://10.77.0.$i:7070/v1/members" >"$dir/view$i" ||
    fail "no view from node $i"
  i=$((i + 1))
done
# Pairs within 25%: for each view a and member b, |pred(a, b) - rtt_ms| <= 0.25 rtt_ms, with
# pred the distance of a's live coordinate and b's own (from b's view).
jq -s '
  def dist($a; $b): ([range(0; 4) as $i | ($a.vec[$i] - $b.vec[$i]) | . * .] | add | sqrt)
                    + $a.height + $b.height;
  (map({key: .node, value: .coordinate}) | from_entries) as $coords
  | [ .[] as $v | $v.members[] | select(.self | not) | select(.rtt_ms != null)
      | {m: .rtt_ms, p: dist($coords[$v.node]; $coords[.id])} ]
  | {pairs: length, good: (map(select(((.p - .m) | fabs) <= 0.25 * .m)) | length)}
' "$dir"/view* >"$dir/pairs" || fail "cannot read the views: $(head -c 300 "$dir/view1")"
pairs=$(jq .pairs "$dir/pairs")
good=$(jq .good "$dir/pairs")
echo "nodes: $good of $pairs pairs predicted within 25%"
[ "$pairs" -ge $((n * (n - 1) / 2)) ] || fail "only $pairs pairs measured"
[ $((good * 10)) -ge $((pairs * 8)) ] || fail "only $good of $pairs pairs within 25%"

# The client: its coordinate moves a little with each look; ten looks.
r=0
while [ "$r" -lt 10 ]; do
  client nodes --json >"$dir/nodes.json" 2>"$dir/err" || fail "nodes: $(cat "$dir/err")"
  r=$((r + 1))
done
close=$(jq '[.members[] | select(.in_drive) | select(.predicted_ms != null and .measured_ms != null)
             | select(((.predicted_ms - .measured_ms) | fabs) <= 0.25 * .measured_ms)] | length' \
  "$dir/nodes.json")
jq -r '.members[] | "  \(.address): predicted \(.predicted_ms) ms, measured \(.measured_ms) ms"' \
  "$dir/nodes.json"
echo "client: $close of $n nodes predicted within 25%"
[ "$close" -ge 6 ] || fail "the client predicts only $close of $n nodes within 25%"
echo "netns vivaldi: ok"
