#!/bin/sh
# 10,000 small files (4 KiB of random bytes each, in 10 folders) on 6 real storage nodes with
# RS(4,2): put and got back identical, in few shard uploads (small files share packs): the
# shards the nodes gained (their /v1/status before and after: the files' packs and the
# catalog's checkpoint) under 3 per 1,000 files, the checkpoint one pack at most. A second put
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
# Under 3 shard uploads per 1,000 files, the catalog's checkpoint at the put's close
# included; that checkpoint is one pack (its small objects inline, the rest sharing it).
[ $((uploads * 1000)) -lt $((3 * files)) ] ||
  fail "$uploads shard uploads for $files files: not under 3 per 1,000"
[ "$uploads" -le $((data + 6)) ] ||
  fail "$uploads shard uploads: more than the files' packs' $data and one checkpoint pack"

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
