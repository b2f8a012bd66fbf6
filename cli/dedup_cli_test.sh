#!/bin/sh
# Dedup on 3 real storage nodes, RS(2,1): the same 100 MiB random file put twice under two
# names stores nothing new the second time (the catalog's packs and pack bytes stay, and the
# nodes take no more than the catalog's checkpoint); the file with 1 byte changed in the
# middle put again stores under 5 MiB more (only the chunks around the change: the catalog's
# pack bytes, and the nodes' used bytes divided by the expansion 1.5). Every copy reads back
# exact. Usage: dedup_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
start_nodes 3
init_drive 2 1

mkdir "$dir/in" "$dir/out"
head -c 104857600 /dev/urandom >"$dir/in/big"
sfs put "$dir/in/big" /first 2>"$dir/err" || fail "put: $(cat "$dir/err")"
packs=$(status_field packs)
bytes=$(status_field pack_bytes)
nodes_used=$(node_total used)
[ "$bytes" -ge 104857600 ] || fail "pack bytes $bytes after a put of 100 MiB"

sfs put "$dir/in/big" /second 2>"$dir/err" || fail "second put: $(cat "$dir/err")"
[ "$(status_field packs)" -eq "$packs" ] || fail "the same bytes made new packs: $packs -> $(status_field packs)"
[ "$(status_field pack_bytes)" -eq "$bytes" ] || fail "the same bytes were stored again"
grew=$(($(node_total used) - nodes_used))
echo "second put of the same 100 MiB: nodes grew by $grew bytes (the catalog's checkpoint)"
[ "$grew" -lt 1048576 ] || fail "the nodes grew by $grew bytes for bytes already stored"

# One byte changed in the middle.
printf 'X' | dd of="$dir/in/big" bs=1 seek=52428800 conv=notrunc status=none
nodes_used=$(node_total used)
sfs put "$dir/in/big" /changed 2>"$dir/err" || fail "put of the changed file: $(cat "$dir/err")"
more=$(($(status_field pack_bytes) - bytes))
grew=$(($(node_total used) - nodes_used))
echo "1 byte changed: $more pack bytes more; nodes grew by $grew bytes ($((grew * 2 / 3)) before coding)"
[ "$more" -gt 0 ] || fail "the changed bytes were not stored"
[ "$more" -lt 5242880 ] || fail "1 byte changed stored $more bytes more: not under 5 MiB"
[ $((grew * 2 / 3)) -lt 5242880 ] || fail "the nodes took $grew bytes more: not under 5 MiB / 1.5"

sfs get /changed "$dir/out/changed" && cmp "$dir/in/big" "$dir/out/changed" || fail "changed differs"
printf 'X' | cmp -s - "$dir/out/changed" -i 0:52428800 -n 1 || fail "the changed byte is not there"
sfs get /second "$dir/out/second" 2>"$dir/err" || fail "get second: $(cat "$dir/err")"
! cmp -s "$dir/in/big" "$dir/out/second" || fail "the second copy has the changed byte"
sfs get /first "$dir/out/first" 2>"$dir/err" || fail "get first: $(cat "$dir/err")"
cmp "$dir/out/first" "$dir/out/second" || fail "the first and second copies differ"
echo "dedup: ok"
