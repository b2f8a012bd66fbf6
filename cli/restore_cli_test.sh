#!/bin/sh
# sync and restore over 4 real storage nodes (RS 2+1), started and stopped by pid: a tree with
# modes, nanosecond times, symlinks and empty entries is put, changed and synced; a restore
# into a NEW home from one node's address and the recovery phrase gets back the same tree
# (every entry's sha256, kind, mode, size, mtime and link target), and the restored drive goes
# on working (put, sync, restore again). A wrong phrase, a malformed one and an existing home
# fail clearly and change nothing. Usage: restore_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
start_nodes 4
first=$(cat "$dir/ready1")
third=$(cat "$dir/ready3")

"$bin" init --home "$dir/h" --node "$nodes" --k 2 --m 1 --json >"$dir/init.json" 2>"$dir/err" ||
  fail "init: $(cat "$dir/err")"
phrase=$(sed -n 's/.*"recovery_phrase": *"\([^"]*\)".*/\1/p' "$dir/init.json")
[ -n "$phrase" ] || fail "init printed no recovery phrase"

# Before any checkpoint there is nothing to restore: a clear error, nothing left behind.
"$bin" restore --home "$dir/early" --node "$first" --recovery-phrase "$phrase" 2>"$dir/err" &&
  fail "restore before any checkpoint succeeded"
grep -q "no drive found" "$dir/err" || fail "restore with no head said: $(cat "$dir/err")"
[ ! -e "$dir/early/config.toml" ] && [ ! -e "$dir/early/catalog.db" ] ||
  fail "a failed restore left files"

mkdir -p "$dir/tree/sub dir/deeper" "$dir/tree/empty"
printf 'one' >"$dir/tree/a"
printf 'two\n' >"$dir/tree/sub dir/b c"
: >"$dir/tree/sub dir/deeper/nothing"
head -c 2500000 /dev/urandom >"$dir/tree/sub dir/deeper/bin"
ln -s "../a" "$dir/tree/sub dir/link-to-a"
ln -s "/nowhere/at all" "$dir/tree/dangling"
chmod 751 "$dir/tree/sub dir"
chmod 600 "$dir/tree/a"
chmod 755 "$dir/tree/sub dir/b c"
touch -d '2020-02-03 04:05:06.123456789' "$dir/tree/a"
touch -h -d '2019-05-06 07:08:09.987654321' "$dir/tree/sub dir/link-to-a"
touch -d '2018-01-01 00:00:00.5' "$dir/tree/sub dir/deeper" "$dir/tree/empty" "$dir/tree"

sfs put "$dir/tree" / || fail "put tree"
sfs sync >"$dir/sync1" || fail "sync"
# put checkpoints as it ends (a command's changes are not left waiting), so sync has nothing
# left to store.
grep -q "Up to date" "$dir/sync1" || fail "sync printed: $(cat "$dir/sync1")"
# Changes after the first checkpoint: a rename, a removal, a new file (deltas).
sfs mkdir /other || fail "mkdir"
sfs mv /tree/dangling /other/moved-link || fail "mv"
printf 'late\n' >"$dir/late"
touch -d '2022-12-31 23:59:59.999999999' "$dir/late"
sfs put "$dir/late" /other/late || fail "put late"
sfs sync --json >"$dir/sync2" || fail "sync --json"
grep -q '"head_sequence":[1-9]' "$dir/sync2" || fail "sync --json: $(cat "$dir/sync2")"
sfs sync >"$dir/sync3" || fail "sync again"
grep -q "Up to date" "$dir/sync3" || fail "a second sync stored again: $(cat "$dir/sync3")"

listing() {  # every entry: path, kind, mode, size, mtime, link target, sha256 of a file
  (cd "$1" && find . -mindepth 1 -printf '%P|%y|%m|%s|%T@|%l|' -exec sh -c \
    'if [ -f "$1" ] && [ ! -h "$1" ]; then sha256sum <"$1" | cut -d" " -f1; else echo; fi' \
    sh {} \; | sort)
}
mkdir "$dir/want"
sfs get /tree "$dir/want/tree" || fail "get tree"
sfs get /other "$dir/want/other" || fail "get other"
listing "$dir/want" >"$dir/want.list"
# The drive's tree is the local one, moved link and late file aside.
mkdir "$dir/local"
cp -a "$dir/tree" "$dir/local/tree"
mkdir "$dir/local/other"
mv "$dir/local/tree/dangling" "$dir/local/other/moved-link"
cp -a "$dir/late" "$dir/local/other/late"
touch -h -r "$dir/want/other" "$dir/local/other"
touch -h -r "$dir/want/tree" "$dir/local/tree"
listing "$dir/local" >"$dir/local.list"
diff "$dir/local.list" "$dir/want.list" >&2 || fail "the drive's tree is not the local one"

# A wrong phrase (valid, another key) finds no head; a malformed one is a usage error.
other=$("$bin" init --home "$dir/other-drive" --node "$nodes" --k 2 --m 1 --json |
  sed -n 's/.*"recovery_phrase": *"\([^"]*\)".*/\1/p')
[ -n "$other" ] || fail "second init"
"$bin" restore --home "$dir/wrong" --node "$first" --recovery-phrase "$other" 2>"$dir/err" &&
  fail "restore with a wrong phrase succeeded"
grep -q "no drive head that verifies" "$dir/err" || fail "wrong phrase said: $(cat "$dir/err")"
[ ! -e "$dir/wrong/catalog.db" ] || fail "a failed restore left a catalog"
set +e
"$bin" restore --home "$dir/typo" --node "$first" --recovery-phrase "NOT-A-PHRASE" 2>"$dir/err"
code=$?
set -e
[ "$code" -eq 2 ] || fail "a malformed phrase exited $code: $(cat "$dir/err")"

# Restore into a new home from one node (the others are found from the head).
printf '%s\n' "$phrase" >"$dir/phrase"
"$bin" restore --home "$dir/new" --node "$third" --recovery-phrase-file "$dir/phrase" \
  >"$dir/restore.out" 2>"$dir/err" || fail "restore: $(cat "$dir/err")"
grep -q 'restored from checkpoint' "$dir/restore.out" || fail "restore printed: $(cat "$dir/restore.out")"
[ "$(stat -c %a "$dir/new/key")" = 600 ] || fail "key file mode $(stat -c %a "$dir/new/key")"
[ "$(stat -c %a "$dir/new/config.toml")" = 600 ] || fail "config mode"
grep -c '^\[\[nodes\]\]' "$dir/new/config.toml" | grep -q '^4$' || fail "config: $(cat "$dir/new/config.toml")"
new() { "$bin" "$@" --home "$dir/new"; }
mkdir "$dir/got"
new get /tree "$dir/got/tree" || fail "get tree from the restored drive"
new get /other "$dir/got/other" || fail "get other from the restored drive"
listing "$dir/got" >"$dir/got.list"
diff "$dir/want.list" "$dir/got.list" >&2 || fail "the restored tree differs"

# The restored drive goes on: a change, a sync, and a restore of that sees it.
printf 'after\n' >"$dir/after"
new put "$dir/after" /after || fail "put on the restored drive"
new sync >/dev/null || fail "sync of the restored drive"
"$bin" restore --home "$dir/new2" --node "$first" --recovery-phrase "$phrase" >/dev/null \
  2>"$dir/err" || fail "second restore: $(cat "$dir/err")"
"$bin" get /after "$dir/after-back" --home "$dir/new2" || fail "get after"
cmp "$dir/after" "$dir/after-back" || fail "after differs"

# An existing home is never overwritten.
"$bin" restore --home "$dir/new" --node "$first" --recovery-phrase "$phrase" 2>"$dir/err" &&
  fail "restore over an existing drive succeeded"
grep -q "already exists" "$dir/err" || fail "existing home said: $(cat "$dir/err")"
echo "restore: ok"
