#!/bin/sh
# Durability with real processes (issue 6): a drive with RS(4,2) on 8 gossiping nodes.
#  1. Two nodes are killed for good (SIGKILL); once the network holds them for dead,
#     `shardfs repair --now` brings every pack back to 6 healthy shards on the other six, and
#     then two more of the original holders may go: every file reads back byte for byte.
#  2. Nodes 1 and 2 come back. Shard files are damaged on one node's disk: `shardfs audit
#     --now` finds them (exit 1),
#     the node's reputation falls below the threshold, `shardfs repair --now` moves its shards
#     elsewhere, and with that node stopped every file still reads back.
# Usage: durability_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
command -v jq >/dev/null || fail "jq is needed (scripts/setup installs it)"

gossip="--gossip-period 0.2 --gossip-ping-timeout 0.1 --push-pull-interval 2"
# shellcheck disable=SC2086
start_node 1 $gossip
nodes=$(cat "$dir/ready1")
i=2
while [ "$i" -le 8 ]; do
  # shellcheck disable=SC2086
  start_node "$i" $gossip --join "$(cat "$dir/ready1")"
  nodes="$nodes,$(cat "$dir/ready$i")"
  i=$((i + 1))
done
init_drive 4 2

# Files of several packs: small ones sharing packs, and larger ones.
random_files "$dir/in" 60 97313 2000000
sfs put "$dir/in" /data >/dev/null 2>"$dir/err" || fail "put: $(cat "$dir/err")"
sfs sync >/dev/null 2>"$dir/err" || fail "sync: $(cat "$dir/err")"

dump() { echo "--- $1"; cat "$dir/$1"; }
check_all() {
  rm -rf "$dir/out"
  sfs get /data "$dir/out" >/dev/null 2>"$dir/err" || fail "$1: get: $(cat "$dir/err")"
  diff -r "$dir/in" "$dir/out" >/dev/null || fail "$1: the files read back differ"
}

# wait_state ADDRESS STATE SECONDS: until the drive's `nodes` shows the node in that state.
wait_state() {
  t=0
  while :; do
    s=$(sfs nodes --json 2>/dev/null | jq -r --arg a "$1" '.members[] | select(.address == $a) | .state')
    [ "$s" = "$2" ] && return 0
    t=$((t + 1))
    [ "$t" -lt $(($3 * 2)) ] || fail "node $1 is '$s', not $2, after $3 s"
    sleep 0.5
  done
}

packs_on() {  # how many packs the drive has on node N (by its address, from status)
  sfs status --json | jq --arg a "$(cat "$dir/ready$1")" '.nodes[] | select(.address == $a) | .shards'
}

# --- 1. two nodes die for good ------------------------------------------------------------
sfs repair --json >"$dir/r0" || fail "repair (count) failed before any loss"
packs=$(jq .durability.packs "$dir/r0")
[ "$packs" -gt 2 ] || fail "only $packs packs stored"
[ "$(jq .durability.full "$dir/r0")" = "$packs" ] || fail "not every pack full at first"
for n in 1 2; do
  eval "p=\$pid$n"
  kill -9 "$p"
  wait "$p" 2>/dev/null || true
done
wait_state "$(cat "$dir/ready1")" dead 30
wait_state "$(cat "$dir/ready2")" dead 30
sfs repair --json >"$dir/r1" || fail "repair (count) failed with no pack lost"
[ "$(jq .durability.lost "$dir/r1")" = 0 ] || fail "packs lost with 2 of 8 nodes gone"
[ "$(jq .durability.full "$dir/r1")" -lt "$packs" ] || fail "every pack full with 2 nodes dead"
sfs repair --now --json >"$dir/r2" 2>"$dir/err" || fail "repair --now: $(cat "$dir/err") $(cat "$dir/r2")"
[ "$(jq .after.full "$dir/r2")" = "$packs" ] || fail "after repair: $(cat "$dir/r2" "$dir/err")"
rebuilt=$(jq .shards_rebuilt "$dir/r2")
[ "$rebuilt" -gt 0 ] || fail "repair rebuilt nothing"
echo "repair: $rebuilt shards rebuilt, $(jq .bytes_stored "$dir/r2") bytes stored, in $(jq .seconds "$dir/r2") s"
# Two more of the original holders go (SIGSTOP: they keep their sockets, answer nothing).
kill -STOP "$pid3" "$pid4"
check_all "with nodes 1-2 killed and 3-4 stopped after repair"
kill -CONT "$pid3" "$pid4"

# --- 2. damage on one node's disk --------------------------------------------------------
# Nodes 1 and 2 come back (same data, same key): room for what part 2 repairs.
for n in 1 2; do
  # shellcheck disable=SC2086
  start_node "$n" "$(cat "$dir/ready$n")" $gossip --join "$(cat "$dir/ready3")"
  wait_state "$(cat "$dir/ready$n")" alive 30
done
bad=5
damaged=0
# A byte of every 64 KiB leaf (a shard file starts with the shard's bytes), so the audit of
# any leaf finds it: an audit checks one random leaf per shard.
for f in "$dir/n$bad"/shards/*/*; do
  [ -f "$f" ] || continue
  size=$(stat -c %s "$f")
  off=100
  while [ "$off" -lt "$size" ]; do
    printf '\001' | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null
    off=$((off + 65536))
  done
  damaged=$((damaged + 1))
done
[ "$damaged" -gt 0 ] || fail "node $bad holds no shard files"
sfs audit --now --json >"$dir/a1" && fail "audit --now exit 0 with damaged shards"
failed=$(jq .pass.failed "$dir/a1")
[ "$failed" -gt 0 ] || fail "the audit found nothing: $(jq -c .pass "$dir/a1")"
bad_id=$(jq -r --arg a "$(cat "$dir/ready$bad")" '.nodes[] | select(.address == $a) | .id' "$dir/a1")
others=$(jq --arg id "$bad_id" '[.faults[] | select(.node != $id)] | length' "$dir/a1")
[ "$others" = 0 ] || fail "faults on other nodes than the damaged one"
rep=$(jq --arg id "$bad_id" '.nodes[] | select(.id == $id) | .reputation' "$dir/a1")
jq -e --arg id "$bad_id" '.nodes[] | select(.id == $id) | .reputation < 0.5' "$dir/a1" >/dev/null ||
  fail "node $bad's reputation is $rep"
echo "audit: $failed shards failed on node $bad (reputation $rep), $(jq .pass.passed "$dir/a1") passed"
sfs repair --now --json >"$dir/r3" 2>"$dir/err" || fail "repair --now: $(cat "$dir/err") $(cat "$dir/r3")"
[ "$(jq .after.full "$dir/r3")" = "$packs" ] || fail "after the second repair: $(jq -c .after "$dir/r3")"
sfs audit --now --json >"$dir/a2" || fail "audit after repair: $(jq -c .pass "$dir/a2")"
eval "p=\$pid$bad"
kill -STOP "$p"
check_all "with node $bad stopped after its shards were repaired"
kill -CONT "$p"
echo "durability: ok ($packs packs)"
