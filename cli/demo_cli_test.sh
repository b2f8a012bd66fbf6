#!/bin/sh
# The README's first command, scripts/demo, with the binary built here: it makes a drive over
# its own 6 nodes (shardfs init --local-network 6) and mounts it with the API; a file copied in reads back with a node stopped;
# `scripts/demo stop` unmounts after flushing and stops every node; started again, the drive
# still has the file. Runs under mount_cli_guard.sh (root, /dev/fuse).
# Usage: demo_cli_test.sh SHARDFS CHECKOUT
set -eu
bin=$1
checkout=$2
. "$(dirname "$0")/test_nodes.sh"

# Its own folder and ports (below the ephemeral range the other tests' nodes use).
SHARDFS_DEMO_BIN=$bin
SHARDFS_DEMO_DATA=$dir/data
SHARDFS_DEMO_MOUNT=$dir/mnt
SHARDFS_DEMO_PORT=$((20000 + ($$ % 1000) * 10))
export SHARDFS_DEMO_BIN SHARDFS_DEMO_DATA SHARDFS_DEMO_MOUNT SHARDFS_DEMO_PORT
mounts="$mounts $dir/mnt"
api=http://127.0.0.1:$SHARDFS_DEMO_PORT

# start_demo: scripts/demo in the background until it says the drive is mounted.
start_demo() {
  rm -f "$dir/demo.out"
  "$checkout/scripts/demo" >"$dir/demo.out" 2>&1 &
  demo_pid=$!
  pids="$pids $demo_pid"
  t=0
  until grep -q "^The drive is mounted" "$dir/demo.out" 2>/dev/null; do
    t=$((t + 1))
    [ "$t" -lt 600 ] || fail "the demo did not start in 60 s: $(tail -5 "$dir/demo.out")"
    kill -0 "$demo_pid" 2>/dev/null || fail "the demo ended: $(tail -5 "$dir/demo.out")"
    sleep 0.1
  done
  # Every node it started is stopped at exit, whatever happens.
  for f in "$dir"/data/home/local-network/node*/pid; do pids="$pids $(cat "$f")"; done
}

# stop_demo: scripts/demo stop, then the demo ends and no node runs.
stop_demo() {
  "$checkout/scripts/demo" stop >"$dir/stop.out" 2>&1 || fail "demo stop: $(cat "$dir/stop.out")"
  grep -q "every write is stored" "$dir/stop.out" || fail "demo stop did not flush: $(cat "$dir/stop.out")"
  await_exit "$demo_pid" 60 "the demo"
  mountpoint -q "$dir/mnt" && fail "still mounted after demo stop"
  for f in "$dir"/data/home/local-network/node*/pid; do
    [ -e "$f" ] && fail "a node's pid file is left: $f"
  done
  return 0
}

start_demo
grep -q "http://127.0.0.1:$SHARDFS_DEMO_PORT/" "$dir/demo.out" || fail "no dashboard URL printed"
curl -sf "$api/api/v1/health" | grep -q '"ok":true' || fail "the API does not answer"
curl -sf "$api/" | grep -qi "<html" || fail "no dashboard page"
head -c 3000000 /dev/urandom >"$dir/file"
cp "$dir/file" "$dir/mnt/file"
sfs() { "$bin" "$@" --home "$dir/data/home"; }
sfs sync >/dev/null || fail "sync"
node3=$(cat "$dir/data/home/local-network/node3/pid")
kill "$node3"
await_exit "$node3" 30 "node 3"
# Read through the mount, its caches dropped (a CLI command would start the node again).
echo 3 >/proc/sys/vm/drop_caches
cmp "$dir/file" "$dir/mnt/file" || fail "read with a node stopped"
kill -0 "$node3" 2>/dev/null && fail "node 3 runs again"
stop_demo

# Again: the same drive, the same file.
start_demo
grep -q "Creating the drive" "$dir/demo.out" && fail "the second start made a new drive"
cmp "$dir/file" "$dir/mnt/file" || fail "the file is not there after a restart"
stop_demo
echo "demo: ok"
