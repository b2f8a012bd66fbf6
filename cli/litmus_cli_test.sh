#!/bin/sh
# The companion API's WebDAV against the litmus suite (Debian's litmus): basic, copymove,
# props, locks and http, through `shardfs serve` on loopback with a paired device's token as
# the Basic password, as a WebDAV app would log in. Every group must pass with no failure.
# Usage: litmus_cli_test.sh SHARDFS_BINARY
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
command -v litmus >/dev/null || fail "litmus is not installed (scripts/setup installs it)"

start_nodes 6
init_drive 4 2
start_serve --listen 127.0.0.1:0 --http
sfs pair --json --root /webdav >"$dir/pair.json" || fail "pair: $(cat "$dir/pair.json")"
token=$(curl -s -X POST "$url/api/v1/pair" -d "{\"code\": \"$(jq -r .code "$dir/pair.json")\"}" |
  jq -r .token)
[ "${token#sfs_}" != "$token" ] || fail "no token"

# Each group on its own, so that one group's leftovers cannot hide another's result.
for group in basic copymove props locks http; do
  TESTS=$group timeout 300 litmus "$url/dav/" phone "$token" >"$dir/litmus-$group.out" 2>&1 ||
    true
  summary=$(grep "summary for \`$group'" "$dir/litmus-$group.out" || true)
  echo "$summary"
  case "$summary" in
    *" 0 failed"*) ;;
    *) fail "litmus $group: $(grep -E 'FAIL|WARNING' "$dir/litmus-$group.out" | head -20)" ;;
  esac
done
kill -TERM "$serve_pid"
await_exit "$serve_pid" 60 "serve"
echo "PASS"
