#!/bin/sh
# 10,000 small files (4 KiB of random bytes each, in 10 folders) on 6 real storage nodes with
# RS(4,2): put and got back identical, in few shard uploads (small files share packs): the
# shards the nodes gained (their /v1/status before and after: the files' packs and the
# catalog's checkpoint) at most 3 per 1,000 files, the files' packs under 2, the checkpoint
# two packs at most. A second put
# of the unchanged tree uploads nothing. Usage: small_files_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
start_nodes 6
init_drive 4 2

files=10000
mkdir -p "$dir/in/small"
i=0
while [ "$i" -lt 10 ]; do
  mkdir "$dir/in/small/d$i"
  head -c $((files / 10 * 4096)) /dev/urandom | split -b 4096 -d -a 4 - "$dir/in/small/d$i/f"
  i=$((i + 1))
done
[ "$(find "$dir/in/small" -type f | wc -l)" -eq "$files" ] || fail "made the wrong number of files"

before=$(node_total shards)
start=$(date +%s)
sfs put "$dir/in/small" / 2>"$dir/err" || fail "put: $(cat "$dir/err")"
took=$(($(date +%s) - start))
uploads=$(($(node_total shards) - before))
data=$(($(status_field packs) * 6))
echo "put of $files files: $took s, $uploads shard uploads, $data of them for the files' packs"
[ "$data" -gt 0 ] || fail "nothing was uploaded"
# The files share packs: under 2 shard uploads per 1,000 files for them. The catalog's
# checkpoint at the put's close adds one pack (its base and small objects inline or sharing
# it), or two: the base's index, stored after the base, is inline only up to 4 KiB, and at
# 10,000 files the base has about 70 chunks of 54 index bytes each, so how the random catalog
# chunks decides. In all, at most 3 per 1,000.
[ $((data * 1000)) -lt $((2 * files)) ] ||
  fail "$data shard uploads for the packs of $files files: not under 2 per 1,000"
[ "$uploads" -le $((data + 12)) ] ||
  fail "$uploads shard uploads: more than the files' packs' $data and two checkpoint packs"
[ $((uploads * 1000)) -le $((3 * files)) ] ||
  fail "$uploads shard uploads for $files files: more than 3 per 1,000"

mkdir "$dir/out"
sfs get /small "$dir/out/small" 2>"$dir/err" || fail "get: $(cat "$dir/err")"
diff -r "$dir/in/small" "$dir/out/small" >/dev/null || fail "the files came back different"
(cd "$dir/in/small" && find . -type f -exec sha256sum {} + | sort -k 2) >"$dir/want.sha"
(cd "$dir/out/small" && find . -type f -exec sha256sum {} + | sort -k 2) >"$dir/got.sha"
cmp -s "$dir/want.sha" "$dir/got.sha" || fail "sha256 lists differ"

before=$(node_total shards)
sfs put "$dir/in/small" / 2>"$dir/err" || fail "second put: $(cat "$dir/err")"
[ "$(node_total shards)" -eq "$before" ] || fail "the unchanged second put uploaded $(($(node_total shards) - before)) shards"
echo "small files: ok"
