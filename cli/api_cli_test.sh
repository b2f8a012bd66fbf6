#!/bin/sh
# The companion API with real processes (docs/api.md): `shardfs serve` on loopback HTTP and on
# HTTPS with its generated certificate, pairing with `shardfs pair` and curl, uploads and
# downloads with curl, the changes feed, devices and revocation, and a mount with --api whose
# kernel cache follows what the API changes. Usage: api_cli_test.sh SHARDFS_BINARY
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"

start_nodes 6
init_drive 4 2
serve_pid=

stop_serve() {
  kill -TERM "$serve_pid"
  await_exit "$serve_pid" 60 "serve"
  grep -q "every write is stored" "$dir/serve.out" || fail "serve stop: $(cat "$dir/serve.out" "$dir/serve.err")"
}

# api METHOD PATH [CURL ARGS...]: the HTTP status of a request with $token; body in $dir/body.
api() {
  m=$1
  p=$2
  shift 2
  curl -s -X "$m" -H "Authorization: Bearer $token" -o "$dir/body" -w '%{http_code}' $curl_tls \
    "$@" "$url$p"
}
curl_tls=

# Plain HTTP is for loopback only; pairing needs a running server.
if sfs serve --listen 0.0.0.0:0 --http >"$dir/out" 2>&1; then fail "--http on 0.0.0.0 served"; fi
grep -q loopback "$dir/out" || fail "no reason given for refusing --http: $(cat "$dir/out")"
if sfs pair >"$dir/out" 2>&1; then fail "pair without a server worked"; fi
grep -q 'no shardfs process serves' "$dir/out" || fail "pair's message: $(cat "$dir/out")"

echo "== serve on loopback HTTP"
start_serve --listen 127.0.0.1:0 --http
[ -S "$dir/h/run/api.sock" ] || fail "no unix socket"
[ "$(stat -c %a "$dir/h/run")" = 700 ] || fail "the runtime folder is not 0700"
token=$(pair_token /Camera)
# Upload, download whole and in part, list.
head -c 5000000 /dev/urandom >"$dir/photo"
[ "$(api PUT /api/v1/files/IMG%201.jpg -T "$dir/photo")" = 201 ] || fail "PUT: $(cat "$dir/body")"
etag=$(jq -r .etag "$dir/body")
[ "$(api GET /api/v1/files/IMG%201.jpg)" = 200 ] || fail "GET"
cmp "$dir/body" "$dir/photo" || fail "downloaded bytes differ"
[ "$(api GET /api/v1/files/IMG%201.jpg -H 'Range: bytes=100-199')" = 206 ] || fail "Range"
head -c 200 "$dir/photo" | tail -c 100 | cmp - "$dir/body" || fail "range bytes differ"
[ "$(api GET /api/v1/files/IMG%201.jpg -H "If-None-Match: $etag")" = 304 ] || fail "304"
[ "$(api GET /api/v1/list/)" = 200 ] || fail "list"
[ "$(jq -r '.entries[0].path' "$dir/body")" = "/IMG 1.jpg" ] || fail "list: $(cat "$dir/body")"
# The device's root is /Camera: the file is there for the owner, on the unix socket (no token).
curl -s --unix-socket "$dir/h/run/api.sock" http://local/api/v1/list/Camera >"$dir/owner.json"
[ "$(jq -r '.entries[0].path' "$dir/owner.json")" = "/Camera/IMG 1.jpg" ] ||
  fail "the owner's listing: $(cat "$dir/owner.json")"
# Out of scope, by any spelling.
for p in /api/v1/files/../x /api/v1/files/%2e%2e/x /api/v1/files/a%00b; do
  [ "$(api GET "$p" --path-as-is)" = 400 ] || fail "GET $p was not refused"
done
# Changes: from the cursor, an upload and a folder made by the owner are seen.
[ "$(api GET /api/v1/changes)" = 200 ] || fail "changes"
cursor=$(jq -r .cursor "$dir/body")
echo second >"$dir/second"
[ "$(api PUT /api/v1/files/second.txt -T "$dir/second")" = 201 ] || fail "PUT second"
[ "$(api GET "/api/v1/changes?cursor=$cursor&wait=5")" = 200 ] || fail "changes after"
jq -e '.changes[] | select(.op == "created" and .path == "/second.txt")' "$dir/body" >/dev/null ||
  fail "no change for second.txt: $(cat "$dir/body")"
# A resumable (tus) upload of 100 MiB, cut off part way, resumes from where it stopped.
head -c 104857600 /dev/urandom >"$dir/video"
tus="-H Tus-Resumable:1.0.0"
meta="path $(printf 'clips/video.mp4' | base64)"
curl -s -D "$dir/created" -o /dev/null -X POST $tus -H "Authorization: Bearer $token" \
  -H "Upload-Length: 104857600" -H "Upload-Metadata: $meta" "$url/api/v1/uploads"
location=$(sed -n 's/^Location: *\([^[:space:]]*\).*/\1/ip' "$dir/created")
[ -n "$location" ] || fail "tus creation: $(cat "$dir/created")"
rc=0
curl -s -o /dev/null -X PATCH $tus -H "Authorization: Bearer $token" \
  -H "Content-Type: application/offset+octet-stream" -H "Upload-Offset: 0" \
  --limit-rate 40M --max-time 1 --data-binary "@$dir/video" "$url$location" || rc=$?
[ "$rc" = 28 ] || fail "the first PATCH was not cut off (curl exit $rc)"
curl -s -I $tus -H "Authorization: Bearer $token" "$url$location" >"$dir/head"
offset=$(sed -n 's/^Upload-Offset: *\([0-9]*\).*/\1/ip' "$dir/head")
[ -n "$offset" ] && [ "$offset" -gt 0 ] && [ "$offset" -lt 104857600 ] ||
  fail "offset after the cut: '$offset' ($(cat "$dir/head"))"
echo "tus: cut off at $offset of 104857600 bytes; resuming"
tail -c +$((offset + 1)) "$dir/video" | curl -s -D "$dir/patched" -o /dev/null -X PATCH $tus \
  -H "Authorization: Bearer $token" -H "Content-Type: application/offset+octet-stream" \
  -H "Upload-Offset: $offset" --data-binary @- "$url$location"
grep -qi '^Upload-Offset: 104857600' "$dir/patched" || fail "resumed PATCH: $(cat "$dir/patched")"
[ "$(api GET /api/v1/files/clips/video.mp4)" = 200 ] || fail "GET the tus upload"
cmp "$dir/body" "$dir/video" || fail "the resumed upload's bytes differ"
rm -f "$dir/video" "$dir/body"
# Devices: listed, then revoked at once.
sfs devices --json >"$dir/devices.json" || fail "devices: $(cat "$dir/devices.json")"
id=$(jq -r '.devices[0].id' "$dir/devices.json")
[ "$(jq -r '.devices[0].root' "$dir/devices.json")" = /Camera ] || fail "device root"
sfs devices revoke "$id" >"$dir/out" || fail "revoke: $(cat "$dir/out")"
[ "$(api GET /api/v1/list/)" = 401 ] || fail "a revoked token still works"
# A read-only device.
token=$(pair_token / --read-only)
[ "$(api GET /api/v1/files/Camera/second.txt)" = 200 ] || fail "read-only GET"
[ "$(api PUT /api/v1/files/x -T "$dir/second")" = 403 ] || fail "read-only PUT"
stop_serve

echo "== serve on HTTPS"
start_serve --listen 127.0.0.1:0
printed=$(sed -n 's/^Certificate SHA-256 fingerprint[^:]*: //p' "$dir/serve.out")
actual=$(openssl x509 -in "$dir/h/tls-cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
[ -n "$printed" ] && [ "$printed" = "$actual" ] || fail "fingerprint: printed $printed, is $actual"
[ "$(stat -c %a "$dir/h/tls-key.pem")" = 600 ] || fail "the key file is not 0600"
# The certificate names 127.0.0.1: curl verifies it against itself.
curl_tls="--cacert $dir/h/tls-cert.pem"
token=$(pair_token /)
[ "$(api GET /api/v1/files/Camera/IMG%201.jpg)" = 200 ] || fail "GET over HTTPS"
cmp "$dir/body" "$dir/photo" || fail "bytes over HTTPS differ"
stop_serve
# The same certificate on the next start.
start_serve --listen 127.0.0.1:0
grep -q "(new)" "$dir/serve.out" && fail "a new certificate on the second start"
stop_serve
curl_tls=

echo "== mount with --api"
mount_drive "$dir/mnt" --api 127.0.0.1:0 --http
url=$(sed -n 's/^Companion API at //p' "$dir/mount.out")
[ -n "$url" ] || fail "mount printed no API URL: $(cat "$dir/mount.out")"
token=$(pair_token /)
# The kernel has looked (and cached that there is nothing); the API's upload shows at once.
[ ! -e "$dir/mnt/from-phone.txt" ] || fail "from-phone.txt exists early"
echo "from the phone" >"$dir/phone.txt"
[ "$(api PUT /api/v1/files/from-phone.txt -T "$dir/phone.txt")" = 201 ] || fail "PUT to mount"
cmp "$dir/mnt/from-phone.txt" "$dir/phone.txt" || fail "the mount does not show the API's file"
# Replaced through the API: the mount shows the new bytes, not its cached pages.
echo "changed on the phone" >"$dir/phone2.txt"
[ "$(api PUT /api/v1/files/from-phone.txt -T "$dir/phone2.txt")" = 200 ] || fail "PUT replace"
cmp "$dir/mnt/from-phone.txt" "$dir/phone2.txt" || fail "the mount shows stale bytes"
# Written in the mount: in the API and its changes feed.
[ "$(api GET /api/v1/changes)" = 200 ] || fail "changes"
cursor=$(jq -r .cursor "$dir/body")
echo "from the desktop" >"$dir/mnt/from-desktop.txt"
[ "$(api GET "/api/v1/changes?cursor=$cursor&wait=10")" = 200 ] || fail "changes from FUSE"
jq -e '.changes[] | select(.path == "/from-desktop.txt")' "$dir/body" >/dev/null ||
  fail "no change for the desktop's file: $(cat "$dir/body")"
[ "$(api GET /api/v1/files/from-desktop.txt)" = 200 ] || fail "GET the desktop's file"
[ "$(cat "$dir/body")" = "from the desktop" ] || fail "the desktop's file: $(cat "$dir/body")"
[ "$(api DELETE /api/v1/files/from-phone.txt)" = 204 ] || fail "DELETE"
[ ! -e "$dir/mnt/from-phone.txt" ] || fail "the mount still shows a deleted file"
unmount_drive "$dir/mnt"
[ ! -e "$dir/h/run/api.sock" ] || fail "the socket outlived the mount"
echo "PASS"
