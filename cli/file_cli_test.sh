#!/bin/sh
# put, get, ls, mkdir, stat, mv, rm, du, status on a drive over 3 real storage nodes (RS 2+1), started and stopped by
# pid: files round-trip byte for byte with their mode and mtime; the same bytes are stored
# once; a file still reads with one node stopped; errors exit 1 with a message and change
# nothing. With "daemon", `shardfs serve` holds the drive and every command goes through its
# API socket (docs/api.md); the same checks hold, and at the end the drive, opened directly
# again, holds what the commands made. Usage: file_cli_test.sh SHARDFS [daemon]
set -eu
bin=$1
daemon=${2:-}
. "$(dirname "$0")/test_nodes.sh"
start_nodes 3

init_drive 2 1
if [ -n "$daemon" ]; then
  # A short flush timeout: at the end a node is down and the serve stops without waiting.
  start_serve --flush-timeout 5
  # The drive is held: the commands must go through the socket, not open it.
  "$bin" gc --home "$dir/h" >/dev/null 2>"$dir/gc.err" && fail "gc opened a held drive"
  grep -q "Busy" "$dir/gc.err" || fail "gc on a held drive: $(cat "$dir/gc.err")"
fi

mkdir "$dir/in"
head -c 5000000 /dev/urandom >"$dir/in/big"
: >"$dir/in/empty"
printf 'caf\303\251 \n' >"$dir/in/small"
chmod 640 "$dir/in/small"
touch -d '2021-03-04 05:06:07.123456789' "$dir/in/small"

sfs mkdir -p /photos/2026 || fail "mkdir -p"
sfs mkdir -p /photos/2026 || fail "mkdir -p of an existing folder"
sfs put "$dir/in/big" /photos/2026/ || fail "put big"
sfs put "$dir/in/empty" /empty || fail "put empty"
sfs put "$dir/in/small" "/photos/a file é.txt" || fail "put small"
[ "$(node_total shards)" -gt 0 ] || fail "no shards stored"
before=$(status_field packs)
[ "$before" -gt 0 ] || fail "no packs recorded"
sfs put "$dir/in/big" /photos/copy-of-big || fail "put copy"
[ "$(status_field packs)" -eq "$before" ] || fail "the same bytes were stored again: $before -> $(status_field packs)"

sfs ls /photos >"$dir/ls" || fail "ls"
printf '2026\na file \303\251.txt\ncopy-of-big\n' | cmp -s - "$dir/ls" || fail "ls printed: $(cat "$dir/ls")"
sfs ls -l /photos/2026 | grep -q -- '^-rw-.* 5000000 .* big$' || fail "ls -l: $(sfs ls -l /photos/2026)"

mkdir "$dir/out"
sfs get /photos/2026/big "$dir/out/" || fail "get big"
cmp "$dir/in/big" "$dir/out/big" || fail "big differs"
sfs get /empty "$dir/out/empty" || fail "get empty"
[ -f "$dir/out/empty" ] && [ ! -s "$dir/out/empty" ] || fail "empty file"
sfs get "/photos/a file é.txt" "$dir/out/small" || fail "get small"
cmp "$dir/in/small" "$dir/out/small" || fail "small differs"
[ "$(stat -c '%a %y' "$dir/out/small")" = "$(stat -c '%a %y' "$dir/in/small")" ] ||
  fail "mode or mtime: $(stat -c '%a %y' "$dir/out/small") vs $(stat -c '%a %y' "$dir/in/small")"

# stat, mv, rm.
sfs stat --json "/photos/a file é.txt" >"$dir/stat" || fail "stat"
grep -q '"kind":"file"' "$dir/stat" && grep -q '"mode":416' "$dir/stat" && grep -q '"size":7' "$dir/stat" ||
  fail "stat --json: $(cat "$dir/stat")"
grep -q '"mtime_ns":1614834367123456789' "$dir/stat" || fail "stat mtime: $(cat "$dir/stat")"
sfs mkdir /archive || fail "mkdir /archive"
sfs mv /photos/copy-of-big /archive || fail "mv into a folder"
sfs mv /archive/copy-of-big /archive/big-2 || fail "mv rename"
[ "$(sfs ls /archive)" = "big-2" ] || fail "after mv: $(sfs ls /archive)"
sfs get /archive/big-2 "$dir/out/moved" && cmp "$dir/in/big" "$dir/out/moved" || fail "moved file differs"
sfs mkdir -p /tmp/x/y && sfs put "$dir/in/small" /tmp/x/y/z || fail "tree for rm"
set +e
sfs rm /tmp 2>/dev/null
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "rm of a folder without -r: exit $rc"
sfs rm -r /tmp || fail "rm -r"
sfs rm /empty || fail "rm file"
[ "$(sfs ls /)" = "$(printf 'archive\nphotos')" ] || fail "after rm: $(sfs ls /)"
# gc: the packs of removed files go from the catalog and their shards from the nodes (gc
# needs the drive to itself: not in daemon mode).
if [ -z "$daemon" ]; then
head -c 200000 /dev/urandom >"$dir/in/gcme"
sfs put "$dir/in/gcme" /gcme || fail "put gcme"
packs_with=$(status_field packs)
sfs rm /gcme || fail "rm gcme"
sfs gc --json >"$dir/gc" || fail "gc: $(cat "$dir/gc")"
grep -q '"deletions_pending":0' "$dir/gc" || fail "gc left deletions: $(cat "$dir/gc")"
[ "$(status_field packs)" -lt "$packs_with" ] || fail "gc kept the removed file's pack"
grep -q '"shards_deleted":[1-9]' "$dir/gc" || fail "gc deleted no shard from the nodes"
sfs gc --json | grep -q '"packs_dropped":0' || fail "a second gc found more garbage"
sfs get /archive/big-2 "$dir/out/after-gc" && cmp "$dir/in/big" "$dir/out/after-gc" ||
  fail "a kept file differs after gc"
fi

# Trees, as cp -a: folders (an empty one too), links, modes and nanosecond times.
mkdir -p "$dir/tree/sub dir/deeper" "$dir/tree/empty"
printf 'one' >"$dir/tree/a"
printf 'two' >"$dir/tree/sub dir/b c"
head -c 300000 /dev/urandom >"$dir/tree/sub dir/deeper/bin"
ln -s "../a" "$dir/tree/sub dir/link-to-a"
ln -s "/nowhere/at all" "$dir/tree/dangling"
chmod 751 "$dir/tree/sub dir"
chmod 600 "$dir/tree/a"
touch -h -d '2019-05-06 07:08:09.987654321' "$dir/tree/sub dir/link-to-a"
touch -d '2018-01-01 00:00:00.5' "$dir/tree/sub dir/deeper" "$dir/tree/empty" "$dir/tree"
sfs put "$dir/tree" / || fail "put tree"
sfs get /tree "$dir/tree-back" || fail "get tree"
listing() { (cd "$1" && find . -printf '%P|%y|%m|%s|%T@|%l\n' | sort); }
listing "$dir/tree" >"$dir/tree.list"
listing "$dir/tree-back" >"$dir/tree-back.list"
diff "$dir/tree.list" "$dir/tree-back.list" >&2 || fail "the tree came back different"
diff -r --no-dereference "$dir/tree" "$dir/tree-back" || fail "tree contents differ"
# Putting it again over itself changes nothing and stores nothing new.
before_tree=$(status_field packs)
sfs put "$dir/tree" / || fail "put tree again"
[ "$(status_field packs)" -eq "$before_tree" ] || fail "an unchanged tree stored new packs"

# du and status.
[ "$(sfs du /archive)" = "$(printf '5000000\t/archive')" ] || fail "du: $(sfs du /archive)"
sfs status --json >"$dir/status" || fail "status"
grep -q '"up": true' "$dir/status" && grep -q '"k": 2' "$dir/status" || fail "status: $(cat "$dir/status")"
sfs status | grep -q '^drive default: RS(2,1)' || fail "status text: $(sfs status)"
grep -q '"layers": 0' "$dir/status" || fail "status shows pending uploads: $(cat "$dir/status")"
sfs sync || fail "sync with nothing pending"
rc=0
sfs sync --timeout -1 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "sync --timeout -1 must be a usage error, not $rc"

# One node of three stopped: RS 2+1 still reads every byte.
kill "$pid2"
wait "$pid2" 2>/dev/null || true
sfs get /archive/big-2 "$dir/out/copy" || fail "get with a node down"
cmp "$dir/in/big" "$dir/out/copy" || fail "copy differs with a node down"
sfs status | grep -q 'DOWN' || fail "status does not show the stopped node: $(sfs status)"

# Errors: exit 1, a message, nothing changed.
expect_fail() {
  set +e
  sfs "$@" >"$dir/out.txt" 2>"$dir/err"
  rc=$?
  set -e
  [ "$rc" -eq 1 ] || fail "exit $rc, not 1, for: $*"
  [ -s "$dir/err" ] || fail "no message for: $*"
}
expect_fail get /missing "$dir/out/missing"
[ ! -e "$dir/out/missing" ] || fail "a failed get left a file"
expect_fail put "$dir/in/big" /no/such/folder/big
mkfifo "$dir/fifo"
expect_fail put "$dir/fifo" /fifo  # not a file, folder or link: skipped, exit 1
expect_fail ls /missing
expect_fail mkdir /photos
expect_fail mv /missing /photos
expect_fail rm /missing
expect_fail stat /missing
# New bytes with a node down: a pack needs 3 distinct nodes, so the put fails. Directly, it
# leaves no file behind; through the process, the file waits in its write-back queue, as a
# file written in the mount does, and status says so. (Bytes the drive stores already need
# no node: that put succeeds.)
head -c 300000 /dev/urandom >"$dir/in/fresh"
expect_fail put "$dir/in/fresh" /photos/new
if [ -z "$daemon" ]; then
  expect_fail ls /photos/new
else
  grep -q "wait in its queue" "$dir/err" || fail "put through the process: $(cat "$dir/err")"
  sfs status --json | grep -q '"layers": [1-9]' || fail "the queued file is not in status"
  sfs rm /photos/new || fail "rm of the queued file"
fi
sfs put "$dir/in/big" /photos/again || fail "a put of stored bytes needs no node"
if [ -n "$daemon" ]; then
  # Stopped, the serve lets the drive go; opened directly, it holds what went through it.
  kill -TERM "$serve_pid"
  await_exit "$serve_pid" 60 "serve"
  "$bin" ls --home "$dir/h" /tree >"$dir/ls-after" || fail "ls after serve stopped"
  printf 'a\ndangling\nempty\nsub dir\n' | cmp -s - "$dir/ls-after" || fail "after serve: $(cat "$dir/ls-after")"
  sfs get /photos/again "$dir/out/again" && cmp "$dir/in/big" "$dir/out/again" ||
    fail "the file put through the process differs"
fi
echo "file commands${daemon:+ through the drive's process}: ok"
