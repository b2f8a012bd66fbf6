#!/bin/sh
# `shardfs init`: usage errors exit 2 and create nothing; an unreachable node exits 1 and
# creates nothing; a drive is created with its key (0600), config and catalog, its recovery
# phrase printed once (as text, or in --json); a second init on the same home is refused.
# Starts 3 storage nodes on loopback and stops them by pid. Usage: init_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
start_nodes 3

expect() {  # code args...: must exit with code, print a message, and create no drive
  want=$1
  shift
  set +e
  "$bin" init "$@" >"$dir/out" 2>"$dir/err"
  rc=$?
  set -e
  [ "$rc" -eq "$want" ] || fail "exit $rc, not $want, for: $* ($(cat "$dir/err"))"
  [ -s "$dir/err" ] || fail "no message for: $*"
  [ ! -e "$dir/h/key" ] && [ ! -e "$dir/h/config.toml" ] || fail "a refused init made files: $*"
}
expect 2 --home "$dir/h"
expect 2 --home "$dir/h" --node nowhere
expect 2 --home "$dir/h" --node "$nodes" --k 4 --m 2
expect 2 --home "$dir/h" --node "$nodes" --k 2 --m 0
expect 2 --home "$dir/h" --node "$nodes" --k 2 --m 1 --drive ../up
expect 2 --home "$dir/h" --node "$nodes,$(cat "$dir/ready1")" --k 2 --m 1
printf '\n' >"$dir/empty-pass"
expect 1 --home "$dir/h" --node "$nodes" --k 2 --m 1 --passphrase-file "$dir/empty-pass"
# A port nothing listens on (the node is stopped): exit 1, nothing written.
start_node gone
kill "$pidgone"
wait "$pidgone" 2>/dev/null || true
expect 1 --home "$dir/h" --node "$nodes,$(cat "$dir/readygone")" --k 2 --m 1

# A drive, as JSON.
"$bin" init --home "$dir/h" --node "$nodes" --k 2 --m 1 --json >"$dir/init.json" 2>"$dir/err" ||
  fail "init failed: $(cat "$dir/err")"
phrase=$(sed -n 's/.*"recovery_phrase": "\([0-9A-Z-]*\)".*/\1/p' "$dir/init.json")
echo "$phrase" | grep -Eq '^([0-9A-Z]{4}-){13}[0-9A-Z]{4}$' || fail "no recovery phrase in $(cat "$dir/init.json")"
grep -q '"passphrase_protected": false' "$dir/init.json" || fail "json: $(cat "$dir/init.json")"
for f in key config.toml catalog.db; do [ -f "$dir/h/$f" ] || fail "missing $f"; done
[ "$(stat -c %a "$dir/h/key")" = 600 ] || fail "key file mode $(stat -c %a "$dir/h/key")"
[ "$(stat -c %a "$dir/h/config.toml")" = 600 ] || fail "config mode"
[ "$(stat -c %a "$dir/h")" = 700 ] || fail "home mode"
grep -q '^k = 2$' "$dir/h/config.toml" || fail "config: $(cat "$dir/h/config.toml")"
[ "$(grep -c 'address' "$dir/h/config.toml")" -eq 3 ] || fail "config nodes: $(cat "$dir/h/config.toml")"
sum=$(md5sum "$dir/h/key")
# Again on the same home: refused, the key untouched.
set +e
"$bin" init --home "$dir/h" --node "$nodes" --k 2 --m 1 >"$dir/out" 2>"$dir/err"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "second init exit $rc"
grep -q 'already exists' "$dir/err" || fail "second init said: $(cat "$dir/err")"
[ "$(md5sum "$dir/h/key")" = "$sum" ] || fail "second init changed the key"

# As text, in the XDG folders, with a passphrase.
printf 'correct horse battery staple\n' >"$dir/pass"
env -u XDG_CONFIG_HOME -u XDG_DATA_HOME -u XDG_CACHE_HOME HOME="$dir/user" \
  "$bin" init --drive photos --node "$nodes" --k 2 --m 1 --passphrase-file "$dir/pass" \
  >"$dir/text" 2>"$dir/err" || fail "text init: $(cat "$dir/err")"
grep -q 'Recovery phrase' "$dir/text" || fail "text output: $(cat "$dir/text")"
grep -Eq '^    ([0-9A-Z]{4}-){13}[0-9A-Z]{4}$' "$dir/text" || fail "no phrase line: $(cat "$dir/text")"
[ -f "$dir/user/.config/shardfs/photos/key" ] || fail "no key under XDG config"
[ -f "$dir/user/.config/shardfs/photos/config.toml" ] || fail "no config under XDG config"
[ -f "$dir/user/.local/share/shardfs/photos/catalog.db" ] || fail "no catalog under XDG data"
[ -d "$dir/user/.cache/shardfs/photos" ] || fail "no cache folder"
echo "init cli: ok"
