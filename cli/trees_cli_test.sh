#!/bin/sh
# Trees and names on 6 real storage nodes with RS(4,2): a deep tree (64 levels), a wide
# folder (2,500 entries, more than one page of a listing), names with spaces, a tab, a
# newline, UTF-8, a leading dash and 255 bytes, a link, and files of 0, 1, 4095, 4096 bytes
# and of exactly and just over the largest chunk (4 MiB). put, `ls -R`, get into a new folder:
# every entry comes back with its type, mode, size, times, link target and bytes.
# Usage: trees_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
start_nodes 6
init_drive 4 2

t="$dir/in/t"
deep="$t/deep"
i=0
while [ "$i" -lt 64 ]; do
  deep="$deep/level $i"
  i=$((i + 1))
done
mkdir -p "$deep" "$t/wide" "$t/names" "$t/sizes"
echo bottom >"$deep/leaf"
i=0
while [ "$i" -lt 2500 ]; do
  : >"$t/wide/e$i"
  i=$((i + 1))
done
printf x >"$t/names/with space"
printf y >"$t/names/$(printf 'new\nline')"
printf z >"$t/names/$(printf 'tab\there')"
printf u >"$t/names/$(printf 'caf\303\251 \342\202\254 \346\227\245\346\234\254')"
printf d >"$t/names/-dash"
long=$(printf '%0255d' 0 | tr 0 n)
printf l >"$t/names/$long"
ln -s "with space" "$t/names/link"
: >"$t/sizes/empty"
head -c 1 /dev/urandom >"$t/sizes/one"
head -c 4095 /dev/urandom >"$t/sizes/page-1"
head -c 4096 /dev/urandom >"$t/sizes/page"
head -c 4194304 /dev/urandom >"$t/sizes/max-chunk"
head -c 4194305 /dev/urandom >"$t/sizes/max-chunk+1"
chmod 0750 "$t/sizes/one"
chmod 0600 "$t/names/with space"
touch -h -d '2001-02-03 04:05:06.789' "$t/names/link"
touch -d '2020-01-01 00:00:00.25' "$deep" "$t/wide" "$t/names" "$t/sizes" "$t"

sfs put "$dir/in/t" / 2>"$dir/err" || fail "put: $(cat "$dir/err")"

# Listings: the wide folder whole, the deepest folder named by ls -R, odd names printed as
# they are.
[ "$(sfs ls /t/wide | wc -l)" -eq 2500 ] || fail "ls /t/wide listed $(sfs ls /t/wide | wc -l) entries"
sfs ls -R /t >"$dir/lsR" 2>"$dir/err" || fail "ls -R: $(cat "$dir/err")"
want_header="${deep#"$dir/in"}:"
grep -qxF "$want_header" "$dir/lsR" || fail "ls -R has no header for the deepest folder"
grep -qxF leaf "$dir/lsR" || fail "ls -R does not list the leaf"
grep -qxF "$long" "$dir/lsR" || fail "ls -R does not list the 255-byte name"
[ "$(grep -c '^/t.*:$' "$dir/lsR")" -eq $((64 + 5)) ] || fail "ls -R headed $(grep -c '^/t.*:$' "$dir/lsR") folders, not 69"
[ "$(head -n 1 "$dir/lsR")" = "/t:" ] || fail "ls -R starts with $(head -n 1 "$dir/lsR")"

mkdir "$dir/out"
sfs get /t "$dir/out/t" 2>"$dir/err" || fail "get: $(cat "$dir/err")"
# (A folder's own size depends on how its entries were made: not compared.)
listing() {
  (cd "$1" && { find . -type d -printf '%P|%y|%m|%T@\0'; find . ! -type d -printf '%P|%y|%m|%s|%T@|%l\0'; } |
    sort -z | tr '\0' '\n')
}
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
listing "$dir/in/t" >"$dir/want.list"
listing "$dir/out/t" >"$dir/got.list"
cmp -s "$dir/want.list" "$dir/got.list" || fail "the tree came back different: $(diff "$dir/want.list" "$dir/got.list" | head -8 | tr "\n" " ")"
sums "$dir/in/t" >"$dir/want.sha"
sums "$dir/out/t" >"$dir/got.sha"
cmp -s "$dir/want.sha" "$dir/got.sha" || fail "file contents differ: $(diff "$dir/want.sha" "$dir/got.sha" | head -5)"
[ "$(readlink "$dir/out/t/names/link")" = "with space" ] || fail "the link points elsewhere"

# The odd names one by one, through the CLI's own path handling.
sfs stat "/t/names/$(printf 'new\nline')" >/dev/null 2>"$dir/err" || fail "stat of a name with a newline: $(cat "$dir/err")"
sfs get "/t/names/$(printf 'tab\there')" "$dir/tab" 2>"$dir/err" || fail "get of a name with a tab: $(cat "$dir/err")"
[ "$(cat "$dir/tab")" = z ] || fail "the file with a tab in its name came back as $(cat "$dir/tab")"
sfs rm -r /t/deep 2>"$dir/err" || fail "rm -r of the deep tree: $(cat "$dir/err")"
[ "$(sfs ls /t)" = "$(printf 'names\nsizes\nwide')" ] || fail "after rm -r: $(sfs ls /t)"
echo "trees: ok"
