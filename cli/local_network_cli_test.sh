#!/bin/sh
# A drive's own nodes on this machine (shardfs init --local-network): init starts them and
# makes the drive over them; every command that opens the drive starts those not running but
# those held down by `shardfs local-network stop I`; `shardfs local-network stop` stops them
# all. Bad uses change nothing.
# Usage: local_network_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
h=$dir/h
# Whatever happens, the nodes the drive started are stopped by their pids.
stop_local() {
  "$bin" local-network stop --home "$h" >/dev/null 2>&1 || true
  for p in $(local_pids "$h"); do kill -9 "$p" 2>/dev/null || true; done
}
trap 'stop_local; cleanup' EXIT
sfsh() { "$bin" "$@" --home "$h"; }
running() {
  n=0
  for p in $(local_pids "$h"); do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done
  echo "$n"
}

# Bad uses: exit 2, nothing made.
rc=0
sfsh init --local-network 5 >/dev/null 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "at least 6" "$dir/err" || fail "5 nodes for RS(4,2): exit $rc, $(cat "$dir/err")"
rc=0
sfsh init --local-network 6 --node 127.0.0.1:1 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--node with --local-network: exit $rc"
rc=0
sfsh init >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "init with no nodes: exit $rc"
[ ! -e "$h/local-network" ] || fail "a refused init left a local network"

sfsh init --local-network 6 --local-capacity 512M >"$dir/init.out" || fail "init"
[ "$(running)" -eq 6 ] || fail "$(running) of 6 local nodes run after init"
head -c 2000000 /dev/urandom >"$dir/f"
sfsh put "$dir/f" /f || fail "put"
sfsh status --json | grep -c '"up": true' | grep -qx 6 || fail "status: not 6 nodes up"

sfsh local-network stop >"$dir/out" || fail "stop"
grep -q "Stopped 6" "$dir/out" || fail "stop said: $(cat "$dir/out")"
[ "$(running)" -eq 0 ] || fail "$(running) nodes still run after stop"
# A command starts them again.
sfsh get /f "$dir/back" && cmp "$dir/f" "$dir/back" || fail "get after stop"
[ "$(running)" -eq 6 ] || fail "$(running) of 6 nodes run after get"
# One killed: the next command starts it.
kill "$(cat "$h/local-network/node2/pid")"
await_exit "$(cat "$h/local-network/node2/pid")" 30 "node 2"
sfsh ls / >/dev/null || fail "ls with a node killed"
[ "$(running)" -eq 6 ] || fail "the killed node was not started again"
sfsh local-network start >/dev/null || fail "start when all run"

# Stopped by number: held down (no command starts it) until `start`; the drive reads around it.
rc=0
sfsh local-network stop 7 >/dev/null 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "no node 7" "$dir/err" || fail "stop 7 of 6: exit $rc, $(cat "$dir/err")"
[ ! -e "$h/local-network/node1/held" ] && [ "$(running)" -eq 6 ] || fail "a refused stop changed something"
sfsh local-network stop 2 5 >"$dir/out" || fail "stop 2 5"
grep -q "Stopped 2 of the 2" "$dir/out" || fail "stop 2 5 said: $(cat "$dir/out")"
[ "$(running)" -eq 4 ] && [ -e "$h/local-network/node2/held" ] && [ -e "$h/local-network/node5/held" ] ||
  fail "after stop 2 5: $(running) run"
sfsh get /f "$dir/back2" && cmp "$dir/f" "$dir/back2" || fail "get with 2 nodes held down"
[ "$(running)" -eq 4 ] || fail "a command started a node held down"
sfsh status --json | grep -c '"up": false' | grep -qx 2 || fail "status: not 2 nodes down"
sfsh local-network start 2 2 >/dev/null || fail "start 2 2"
[ "$(running)" -eq 5 ] || fail "start 2 2: $(running) run"
sfsh local-network stop 2 2 >"$dir/out" || fail "stop 2 2"
grep -q "Stopped 1 of the 1" "$dir/out" || fail "stop 2 2 said: $(cat "$dir/out")"
sfsh local-network start 2 >/dev/null || fail "start 2"
[ "$(running)" -eq 5 ] && [ ! -e "$h/local-network/node2/held" ] || fail "start 2: $(running) run"
sfsh local-network start >/dev/null || fail "start"
[ "$(running)" -eq 6 ] && [ ! -e "$h/local-network/node5/held" ] || fail "start: $(running) run"

# A second init, and a damaged list: a clear error, nothing started.
rc=0
sfsh init --local-network 6 >/dev/null 2>"$dir/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "already exists" "$dir/err" || fail "second init: exit $rc, $(cat "$dir/err")"
sfsh local-network stop >/dev/null
cp "$h/local-network/nodes.json" "$dir/nodes.json"
printf '{"version": 1, "nodes": [{"address": "10.0.0.1:80", "capacity": "1G"}]}' \
  >"$h/local-network/nodes.json"
rc=0
sfsh ls / >/dev/null 2>"$dir/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "not a loopback address" "$dir/err" || fail "bad list: exit $rc, $(cat "$dir/err")"
[ "$(running)" -eq 0 ] || fail "a damaged list started nodes"
cp "$dir/nodes.json" "$h/local-network/nodes.json"
sfsh ls / | grep -qx f || fail "ls after the list was mended"
sfsh local-network stop >/dev/null
echo "local network: ok"
