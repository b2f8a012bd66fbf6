#!/bin/sh
# `shardfs node` command line: usage errors exit 2 and change nothing, the config file is read
# (and the command line wins over it), --print-id is stable. Usage: node_cli_test.sh SHARDFS
set -eu
bin=$1
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

expect_usage() {  # args...: must exit 2 with a message, and create nothing
  set +e
  "$bin" node "$@" >"$dir/out" 2>"$dir/err"
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || fail "exit $rc, not 2, for: $*"
  grep -q 'shardfs node\|Error\|required\|not' "$dir/err" || fail "no message for: $*"
}

expect_usage --capacity 1G
expect_usage --data "$dir/a" --capacity 1Q
expect_usage --data "$dir/a" --capacity 0
expect_usage --data "$dir/a" --capacity 1G --listen nowhere
expect_usage --data "$dir/a" --capacity 1G --threads 0
expect_usage --data "$dir/a" --capacity 1G --allow-owner xyz
expect_usage --data "$dir/a" --capacity 1G --scrub-rate fast
[ ! -e "$dir/a" ] || fail "a refused command created the data folder"
printf 'bogus = 1\n' >"$dir/bad.toml"
expect_usage --config "$dir/bad.toml"
expect_usage --config "$dir/missing.toml"
printf '[other]\ncapacity = "1G"\n' >"$dir/section.toml"
expect_usage --config "$dir/section.toml"

id1=$("$bin" node --data "$dir/n" --print-id)
id2=$("$bin" node --data "$dir/n" --print-id)
[ "$id1" = "$id2" ] || fail "--print-id changed: $id1 then $id2"
echo "$id1" | grep -Eq '^[0-9a-f]{64}$' || fail "--print-id printed '$id1'"

# Options from the file; --capacity on the command line overrides the file's.
cat >"$dir/node.toml" <<EOC
[node]
data = "$dir/n"
capacity = "1G"
reserve = "0"
listen = "127.0.0.1:0"
ready-file = "$dir/ready"
scrub-rate = "0"
EOC
"$bin" node --config "$dir/node.toml" --capacity 2G 2>"$dir/log" &
pid=$!
i=0
while [ ! -s "$dir/ready" ]; do
  i=$((i + 1))
  [ "$i" -lt 100 ] || fail "node did not start: $(cat "$dir/log")"
  sleep 0.1
done
grep -q "capacity 2.0 GiB" "$dir/log" || fail "command line did not win over the file: $(cat "$dir/log")"
grep -q "$id1" "$dir/log" || fail "node id differs from --print-id"
grep -q "scrubbing is off" "$dir/log" || fail "scrub-rate from the file was not used: $(cat "$dir/log")"
kill -TERM "$pid"
wait "$pid" || fail "node did not exit 0 on SIGTERM"
pid=
grep -q "stopped cleanly" "$dir/log" || fail "no clean stop in the log"
echo PASS
