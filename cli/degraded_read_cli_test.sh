#!/bin/sh
# A tree on 6 real storage nodes with RS(4,2) reads back byte for byte with ANY two nodes
# stopped (SIGSTOP: the node keeps its sockets and answers nothing), and with three stopped
# `get` fails with exit 1 and a message that names stopped nodes and leaves no file behind.
# With SIGSTOP both come promptly: a get with two nodes stopped takes at most twice as long as
# with all up plus 20 s (the client reads around them instead of waiting for them), and with
# three stopped the error comes within 25 s (a request to a stopped node ends at
# HttpPeerOptions::answer_timeout, 5 s, and is not retried). The tree has a 3 MiB random
# file, small files, files of exactly the chunker's largest (4 MiB) and smallest (256 KiB)
# chunk, an empty file, names with spaces, a newline and UTF-8, a folder 50 levels deep and
# one of 1,000 entries. With MODE kill the nodes are stopped with SIGTERM instead (connections
# are refused) and restarted on their port and data. PAIRS (like "1-2 3-5") limits the pairs
# stopped; the default is every pair. Usage: degraded_read_cli_test.sh SHARDFS [stop|kill]
# [PAIRS]
set -eu
bin=$1
mode=${2:-stop}
pairs=${3:-}
if [ -z "$pairs" ]; then
  for a in 1 2 3 4 5 6; do
    for b in 1 2 3 4 5 6; do [ "$a" -lt "$b" ] && pairs="$pairs $a-$b"; done
  done
fi
. "$(dirname "$0")/test_nodes.sh"
start_nodes 6
stopped=
# Stopped nodes are continued before the cleanup kills them (a stopped process gets SIGTERM
# only once continued).
cont_all() {
  for p in $stopped; do
    if [ "$mode" = stop ]; then
      kill -CONT "$p" 2>/dev/null || true
    else
      addr=$(cat "$dir/ready$p")
      start_node "$p" "$addr"
    fi
  done
  stopped=
}
trap '[ "$mode" = kill ] || cont_all; cleanup' EXIT
stop() {
  for i in "$@"; do
    eval "p=\$pid$i"
    if [ "$mode" = stop ]; then
      kill -STOP "$p"
      stopped="$stopped $p"
    else
      kill "$p"
      wait "$p" 2>/dev/null || true
      stopped="$stopped $i"
    fi
  done
}

init_drive 4 2

tree="$dir/in/tree"
mkdir -p "$tree/wide" "$tree/sub dir"
head -c 3145728 /dev/urandom >"$tree/random 3MiB"
head -c 4194304 /dev/urandom >"$tree/exactly 4MiB"
head -c 262144 /dev/urandom >"$tree/exactly 256KiB"
: >"$tree/empty"
printf 'small one\n' >"$tree/sub dir/a b c"
head -c 1000 /dev/urandom >"$tree/sub dir/binary"
printf 'utf-8\n' >"$tree/sub dir/$(printf 'caf\303\251 \342\202\254 \346\227\245\346\234\254')"
printf 'newline\n' >"$tree/sub dir/$(printf 'line\nbreak')"
deep="$tree/deep"
i=0
while [ "$i" -lt 50 ]; do
  deep="$deep/l$i"
  i=$((i + 1))
done
mkdir -p "$deep"
printf 'at the bottom\n' >"$deep/leaf"
# 1,000 entries: 998 small files of distinct random bytes, a link and a folder.
head -c 998000 /dev/urandom | split -b 1000 -d -a 3 - "$tree/wide/f"
ln -s ../empty "$tree/wide/link"
mkdir "$tree/wide/folder"
[ "$(ls -A "$tree/wide" | wc -l)" -eq 1000 ] || fail "the wide folder has $(ls -A "$tree/wide" | wc -l) entries"

sfs put "$tree" / 2>"$dir/err" || fail "put: $(cat "$dir/err")"

listing() { (cd "$1" && find . -printf '%P|%y|%m|%s|%T@|%l\n' | sort); }
listing "$tree" >"$dir/want.list"
# get of the whole tree into a fresh folder; returns get's exit status.
get_tree() {
  # Without the chunk cache, so every get reads from the nodes.
  rm -rf "$dir/out" "$dir/h/cache"
  mkdir "$dir/out"
  rc=0
  timeout 300 "$bin" get /tree "$dir/out/tree" --home "$dir/h" >"$dir/get.out" 2>"$dir/get.err" || rc=$?
  return "$rc"
}
check_tree() {
  listing "$dir/out/tree" >"$dir/got.list"
  diff "$dir/want.list" "$dir/got.list" >&2 || fail "$1: the tree came back different"
  diff -r --no-dereference "$tree" "$dir/out/tree" >&2 || fail "$1: contents differ"
}
start=$(date +%s)
get_tree || fail "get with all nodes up: $(cat "$dir/get.err")"
up=$(($(date +%s) - start))
echo "all nodes up: get took $up s"
check_tree "all nodes up"
# How long a get with stopped nodes may take; generous: CI is a shared machine with two cores.
pair_limit=$((2 * up + 20))
three_limit=25
# within SECONDS LIMIT: true unless the nodes are SIGSTOP'd and SECONDS > LIMIT (nodes that
# refuse connections cost nothing to wait for, and are not timed).
within() { [ "$mode" != stop ] || [ "$1" -le "$2" ]; }

# The pairs of the 6 nodes stopped.
for pair in $pairs; do
  a=${pair%-*}
  b=${pair#*-}
  stop "$a" "$b"
  start=$(date +%s)
  get_tree || fail "get with nodes $a and $b stopped: exit $rc: $(cat "$dir/get.err")"
  took=$(($(date +%s) - start))
  echo "nodes $a and $b stopped: get took $took s"
  cont_all
  check_tree "nodes $a and $b stopped"
  within "$took" "$pair_limit" ||
    fail "get with nodes $a and $b stopped took $took s, more than $pair_limit s"
done

# Three stopped: some pack has fewer than k shards left. get fails with exit 1 and a message,
# and leaves no file that is not whole: every file it left equals the source.
stop 1 2 3
start=$(date +%s)
rc=0
get_tree || rc=$?
took=$(($(date +%s) - start))
echo "nodes 1, 2 and 3 stopped: get exit $rc after $took s: $(head -c 600 "$dir/get.err")"
cont_all
[ "$rc" -eq 1 ] || fail "get with 3 of 6 nodes stopped: exit $rc, not 1"
[ -s "$dir/get.err" ] || fail "get with 3 nodes stopped printed no message"
grep -qi 'unavailable\|node\|shard' "$dir/get.err" || fail "unclear message: $(cat "$dir/get.err")"
within "$took" "$three_limit" ||
  fail "get with 3 nodes stopped failed after $took s, not within $three_limit s"
named=0
for i in 1 2 3; do grep -qF "$(cat "$dir/ready$i")" "$dir/get.err" && named=1; done
[ "$named" -eq 1 ] || fail "the message names none of the stopped nodes: $(cat "$dir/get.err")"
if [ -d "$dir/out/tree" ]; then
  left=$(cd "$dir/out/tree" && find . -name '*.shardfs-*')
  [ -z "$left" ] || fail "temporary files were left behind: $left"
  (cd "$dir/out/tree" &&
    find . -type f -exec sh -c 'for f; do cmp -s "$0/$f" "$f" || { echo "$f" >&2; exit 1; }; done' "$tree" {} +) ||
    fail "get left a file that differs from the source (above)"
fi
# The nodes are back: the tree reads whole again.
get_tree || fail "get after the nodes came back: $(cat "$dir/get.err")"
check_tree "nodes continued"
echo "degraded reads: ok"
