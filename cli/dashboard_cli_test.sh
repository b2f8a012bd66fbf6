#!/bin/sh
# The dashboard in Debian's chromium, driven by playwright-core (tests/browser/dashboard.mjs):
# log in with a pairing code, upload, list, download and compare, revoke a device; the
# screenshot is kept in ARTIFACTS. Usage: dashboard_cli_test.sh SHARDFS_BINARY ARTIFACTS
set -eu
bin=$1
artifacts=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/test_nodes.sh"
browser_tests="$here/../tests/browser"
[ -d "$browser_tests/node_modules/playwright-core" ] ||
  fail "playwright-core is not installed (scripts/test runs npm ci in tests/browser)"
[ -x /usr/bin/chromium ] || fail "chromium is not installed (scripts/setup installs it)"

start_nodes 6
init_drive 4 2
start_serve --listen 127.0.0.1:0 --http
code=$(sfs pair --json --name browser | jq -r .code)
other=$(sfs pair --json --name other-phone --root /Camera | jq -r .code)
curl -s -X POST "$url/api/v1/pair" -d "{\"code\": \"$other\"}" >"$dir/other.json"
other_id=$(jq -r .device.id "$dir/other.json")
other_token=$(jq -r .token "$dir/other.json")
[ -n "$other_id" ] && [ "$other_id" != null ] || fail "pairing the other device: $(cat "$dir/other.json")"
mkdir -p "$artifacts"
timeout 180 node "$browser_tests/dashboard.mjs" "$url" "$code" "$other_id" "$other_token" "$artifacts" ||
  fail "the browser test failed (screenshot: $artifacts/dashboard.png)"
echo PASS
