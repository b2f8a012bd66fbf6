#!/bin/sh
# A sparse file over 4 GiB (5 GiB, a few bytes at 0, 4 GiB + 1 and the end, holes between) on 3
# real storage nodes, RS(2,1): put and got back identical (cmp). `put` stores only the data
# runs (SEEK_DATA/SEEK_HOLE), so the catalog's pack bytes and the nodes' used bytes stay small,
# and `get` writes zeros as holes, so the copy is sparse too. The put's peak anonymous memory
# (sampled from /proc every 0.1 s) stays well under 4 GiB; its time is printed. Usage:
# sparse_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
start_nodes 3
init_drive 2 1
avail=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
[ "$avail" -gt 1048576 ] || fail "needs 1 GiB free in $dir, has $avail KiB"

mkdir "$dir/in" "$dir/out"
f="$dir/in/sparse"
truncate -s 5G "$f"
printf 'start' | dd of="$f" bs=1 seek=0 conv=notrunc status=none
printf 'past 4 GiB' | dd of="$f" bs=1 seek=$((4 * 1073741824 + 1)) conv=notrunc status=none
printf 'E' | dd of="$f" bs=1 seek=$((5 * 1073741824 - 1)) conv=notrunc status=none
[ "$(stat -c %s "$f")" -eq $((5 * 1073741824)) ] || fail "the file is not 5 GiB"
[ "$(du -k "$f" | cut -f1)" -lt 1024 ] || fail "the file is not sparse here"

used_before=$(node_total used)
start=$(date +%s.%N)
"$bin" put "$f" /sparse --home "$dir/h" 2>"$dir/err" &
put=$!
pids="$pids $put"
peak_anon=0
peak_rss=0
while kill -0 "$put" 2>/dev/null; do
  a=$(sed -n 's/^RssAnon:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$put/status" 2>/dev/null || true)
  r=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$put/status" 2>/dev/null || true)
  [ -z "$a" ] || [ "$a" -le "$peak_anon" ] || peak_anon=$a
  [ -z "$r" ] || [ "$r" -le "$peak_rss" ] || peak_rss=$r
  sleep 0.1
done
rc=0
wait "$put" || rc=$?
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ "$rc" -eq 0 ] || fail "put of the sparse file: exit $rc: $(cat "$dir/err")"
bytes=$(status_field pack_bytes)
grew=$(($(node_total used) - used_before))
echo "put of a 5 GiB sparse file: ${took} s; peak anonymous memory $((peak_anon / 1024)) MiB, peak RSS (with the mapped file) $((peak_rss / 1024)) MiB; $bytes pack bytes; nodes grew by $grew bytes"
[ "$peak_anon" -lt 1048576 ] || fail "the put took $((peak_anon / 1024)) MiB of anonymous memory"
[ "$bytes" -lt 67108864 ] || fail "$bytes pack bytes for a file of holes: the zeros were not deduped"
[ "$grew" -lt 134217728 ] || fail "the nodes grew by $grew bytes"

start=$(date +%s.%N)
sfs get /sparse "$dir/out/sparse" 2>"$dir/err" || fail "get: $(cat "$dir/err")"
echo "get of it: $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
cmp "$f" "$dir/out/sparse" || fail "the sparse file came back different"
[ "$(du -k "$dir/out/sparse" | cut -f1)" -lt 65536 ] ||
  fail "the copy got back is not sparse: $(du -k "$dir/out/sparse" | cut -f1) KiB"
echo "sparse: ok"
