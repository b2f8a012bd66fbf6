#!/bin/sh
# kill -9 of `shardfs put -v` of 200 files midway, once some "stored" lines are out; then
# `shardfs sync` (which finds the drive's lock free and the catalog consistent) and a get of
# what the drive holds: every file printed as stored is there and whole; every other file is
# either absent or whole; the drive holds no file the source does not. A put again then
# completes the tree. 3 real storage nodes, RS(2,1). Usage: put_crash_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
start_nodes 3
init_drive 2 1

# 200 files of 1.5 MiB: a put stores them in batches of 64 MiB, so "stored" lines come out
# batch by batch while later files are still being stored.
mkdir -p "$dir/in/t"
head -c $((200 * 1572864)) /dev/urandom | split -b 1572864 -d -a 3 - "$dir/in/t/f"

"$bin" put -v "$dir/in/t" / --home "$dir/h" >"$dir/put.out" 2>"$dir/put.err" &
put=$!
pids="$pids $put"
n=0
while ! grep -q '^stored ' "$dir/put.out"; do
  n=$((n + 1))
  [ "$n" -lt 1200 ] || fail "no 'stored' line within 60 s: $(cat "$dir/put.err")"
  kill -0 "$put" 2>/dev/null || break
  sleep 0.05
done
kill -9 "$put" 2>/dev/null || true
rc=0
wait "$put" || rc=$?
printed=$(grep -c '^stored ' "$dir/put.out" || true)
echo "put killed (wait status $rc) after $printed 'stored' lines"
[ "$rc" -eq 137 ] || echo "NOTE: the put ended before the kill (exit $rc): the crash was not midway"

sfs sync --timeout 60 2>"$dir/err" || fail "sync after the crash: $(cat "$dir/err")"

mkdir "$dir/out"
sfs get /t "$dir/out/t" 2>"$dir/err" || fail "get after the crash: $(cat "$dir/err")"
# Every file printed as stored is whole.
sed -n 's/^stored //p' "$dir/put.out" | while IFS= read -r f; do
  name=$(basename "$f")
  [ -f "$dir/out/t/$name" ] || fail "$name was printed as stored but is absent"
  cmp -s "$f" "$dir/out/t/$name" || fail "$name was printed as stored but differs"
done || exit 1
# Every file the drive holds is whole, and one of the source's.
got=0
for g in "$dir/out/t"/*; do
  [ -e "$g" ] || continue
  name=$(basename "$g")
  [ -f "$dir/in/t/$name" ] || fail "the drive holds $name, which the source does not"
  cmp -s "$dir/in/t/$name" "$g" || fail "$name is in the drive but not whole"
  got=$((got + 1))
done
echo "after the crash the drive holds $got whole files of 200 ($printed printed as stored)"
[ "$got" -ge "$printed" ] || fail "fewer files than printed as stored"
sfs status --json | grep -q '"layers": 0' || fail "uploads still pending: $(sfs status --json)"

# A put again stores the rest.
sfs put "$dir/in/t" / 2>"$dir/err" || fail "put again: $(cat "$dir/err")"
rm -rf "$dir/out/t"
sfs get /t "$dir/out/t" 2>"$dir/err" || fail "get after the second put: $(cat "$dir/err")"
diff -r "$dir/in/t" "$dir/out/t" >/dev/null || fail "the tree is not whole after a put again"
echo "put crash: ok"
