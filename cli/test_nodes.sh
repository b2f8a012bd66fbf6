# Sourced by the CLI tests that need storage nodes: with $bin (the shardfs binary) set, makes
# the folder $dir (removed at exit), defines fail(), and start_node N [HOST:PORT] [FLAG...] (a
# node on an ephemeral loopback port, or on HOST:PORT to restart node N there on its data,
# with any further `shardfs node` flags; data in $dir/nN, its address in $dir/readyN and pid
# in $pidN; every node started is stopped by pid at exit), start_nodes COUNT (nodes
# 1..COUNT, their addresses comma-separated in $nodes), node_total FIELD (the sum of a number
# in every started node's /v1/status: shards, used); for the test's drive in $dir/h:
# init_drive K M (creates it over $nodes with RS(K,M)), sfs ARGS (shardfs on it) and
# status_field NAME (a number from its `status --json`).
dir=$(mktemp -d)
pids=
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

start_node() {
  node_n=$1
  shift
  listen=127.0.0.1:0
  case "${1:-}" in
    -* | "") ;;
    *)
      listen=$1
      shift
      ;;
  esac
  rm -f "$dir/ready$node_n"
  "$bin" node --data "$dir/n$node_n" --capacity 512M --reserve 0 --listen "$listen" \
    --scrub-rate 0 --ready-file "$dir/ready$node_n" "$@" 2>"$dir/log$node_n" &
  eval "pid$node_n=$!"
  pids="$pids $!"
  t=0
  while [ ! -s "$dir/ready$node_n" ]; do
    t=$((t + 1))
    [ "$t" -lt 100 ] || fail "node $node_n did not start: $(cat "$dir/log$node_n")"
    sleep 0.1
  done
}

start_nodes() {
  nodes=
  i=1
  while [ "$i" -le "$1" ]; do
    start_node "$i"
    nodes="$nodes${nodes:+,}$(cat "$dir/ready$i")"
    i=$((i + 1))
  done
}

node_total() {
  total=0
  for r in "$dir"/ready*; do
    v=$(curl -s "http://$(cat "$r")/v1/status" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p")
    [ -n "$v" ] || fail "no $1 in the status of node $(cat "$r")"
    total=$((total + v))
  done
  echo "$total"
}

sfs() { "$bin" "$@" --home "$dir/h"; }

init_drive() {
  "$bin" init --home "$dir/h" --node "$nodes" --k "$1" --m "$2" >/dev/null 2>"$dir/err" ||
    fail "init: $(cat "$dir/err")"
}

status_field() { sfs status --json | sed -n "s/^  \"$1\": *\([0-9]*\).*/\1/p"; }
