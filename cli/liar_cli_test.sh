#!/bin/sh
# A node that serves bad bytes, in a drive of 6 real storage nodes with RS(4,2), all started
# and stopped by pid: node 6 runs with the test-only flag --test-flip-served-bytes, so every
# shard range and proof it serves has a flipped byte. `shardfs get` still returns the exact
# bytes (the client's leaf-proof checks catch each answer and it decodes around the node), and
# `shardfs status --json`, in a later process, names node 6 and no other as having served bad
# bytes (the client's view of the nodes is kept in the catalog). Usage: liar_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
start_nodes 5
start_node 6 --test-flip-served-bytes
liar=$(cat "$dir/ready6")
nodes="$nodes,$liar"

init_drive 4 2

# Each put makes packs of its own, each placed on all six nodes: node 6 holds a data shard of
# some pack unless it drew a parity shard in all of them (odds 3^-12).
mkdir "$dir/in" "$dir/out"
head -c 20000000 /dev/urandom >"$dir/in/big"
sfs put "$dir/in/big" /big || fail "put big"
i=1
while [ "$i" -le 11 ]; do
  head -c 300000 /dev/urandom >"$dir/in/f$i"
  sfs put "$dir/in/f$i" "/f$i" || fail "put f$i"
  i=$((i + 1))
done

sfs get /big "$dir/out/big" 2>"$dir/get.log" || fail "get big: $(cat "$dir/get.log")"
cmp "$dir/in/big" "$dir/out/big" || fail "big differs"
i=1
while [ "$i" -le 11 ]; do
  sfs get "/f$i" "$dir/out/f$i" 2>>"$dir/get.log" || fail "get f$i: $(cat "$dir/get.log")"
  cmp "$dir/in/f$i" "$dir/out/f$i" || fail "f$i differs"
  i=$((i + 1))
done

# Node by node from the JSON (keys are sorted: "address" comes before "bad_bytes").
sfs status --json >"$dir/status.json" 2>"$dir/err" || fail "status: $(cat "$dir/err")"
awk '/"address":/ { gsub(/[",]/, "", $2); a = $2 } /"bad_bytes":/ { gsub(/,/, "", $2); print a, $2 }' \
  "$dir/status.json" >"$dir/bad"
[ "$(wc -l <"$dir/bad")" -eq 6 ] || fail "status lists $(wc -l <"$dir/bad") nodes: $(cat "$dir/status.json")"
while read -r address bad; do
  if [ "$address" = "$liar" ]; then
    [ "$bad" -gt 0 ] || fail "node $address served bad bytes but status says $bad: $(cat "$dir/status.json")"
  else
    [ "$bad" -eq 0 ] || fail "honest node $address is said to have served bad bytes: $bad"
  fi
done <"$dir/bad"
sfs status | grep -q "SERVED BAD BYTES" || fail "status text does not name the liar: $(sfs status)"
echo "liar_cli_test: ok"
