#!/bin/sh
# The node's unsigned endpoint as an operator reaches it, with curl (ctest, label integration):
#   node_curl_test.sh SHARDFS_BINARY status     GET and HEAD /v1/status; JSON with the node id
#   node_curl_test.sh SHARDFS_BINARY unsigned   shard and slot requests without a signature: 401
# Starts one node on an ephemeral loopback port in a temporary folder; stops it (SIGTERM, then
# SIGKILL after 5 s) and removes the folder on any exit.
set -u
bin=$1
mode=$2

command -v curl >/dev/null 2>&1 || { echo "curl is not installed (scripts/setup installs it)"; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/shardfs-curl-XXXXXX") || exit 1
pid=

# True while process $1 exists and is not a zombie.
alive() {
  [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null
}

stop_node() {
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  i=0
  while alive "$pid" && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null
  wait "$pid"
  rc=$?
  pid=
  return "$rc"
}

cleanup() {
  stop_node
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
  echo "FAIL: $*"
  echo "--- node log ---"
  cat "$dir/node.log" 2>/dev/null
  exit 1
}

id=$("$bin" node --data "$dir/data" --print-id) || fail "--print-id"
echo "$id" | grep -Eq '^[0-9a-f]{64}$' || fail "--print-id printed '$id'"

"$bin" node --data "$dir/data" --listen 127.0.0.1:0 --capacity 16M --reserve 0 \
  --ready-file "$dir/ready" >"$dir/node.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$dir/ready" ] && [ "$i" -lt 100 ]; do
  alive "$pid" || fail "node exited before it was ready"
  sleep 0.1
  i=$((i + 1))
done
[ -s "$dir/ready" ] || fail "node not ready within 10 s"
addr=$(head -n 1 "$dir/ready")
case $addr in 127.0.0.1:[0-9]*) ;; *) fail "ready file holds '$addr'" ;; esac
url=http://$addr

# curl -s -o /dev/null -w '%{http_code}' with a bound on time.
code() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$@"; }

case $mode in
status)
  body=$(curl -sS --max-time 5 "$url/v1/status") || fail "curl $url/v1/status"
  echo "$body"
  echo "$body" | grep -q "\"node_id\":\"$id\"" || fail "status does not name node $id"
  echo "$body" | grep -q '"protocol":1' || fail "status has no protocol 1"
  echo "$body" | grep -q '"capacity":16777216' || fail "status has the wrong capacity"
  head=$(curl -sS --max-time 5 -I "$url/v1/status") || fail "curl -I"
  echo "$head" | grep -q '^HTTP/1.1 200' || fail "HEAD /v1/status: $head"
  echo "$head" | grep -qi '^content-type: application/json' || fail "HEAD has no JSON type"
  [ "$(code -X POST "$url/v1/status")" = 405 ] || fail "POST /v1/status is not 405"
  [ "$(code "$url/nowhere")" = 404 ] || fail "GET /nowhere is not 404"
  ;;
unsigned)
  shard=$(printf '%064d' 0 | tr 0 a)
  [ "$(code "$url/v1/shards/$shard")" = 401 ] || fail "unsigned GET is not 401"
  [ "$(code -X DELETE "$url/v1/shards/$shard")" = 401 ] || fail "unsigned DELETE is not 401"
  [ "$(code -X PUT --data-binary 'hello' "$url/v1/shards/$shard")" = 401 ] ||
    fail "unsigned PUT is not 401"
  [ "$(code "$url/v1/slots/$id")" = 401 ] || fail "unsigned slot GET is not 401"
  [ "$(code "$url/v1/shards/not-an-id")" = 400 ] || fail "bad id is not 400"
  curl -s --max-time 5 "$url/v1/shards/$shard" | grep -q '"code":"unauthorized"' ||
    fail "401 body has no code"
  ;;
*)
  fail "unknown mode '$mode'"
  ;;
esac

stop_node
rc=$?
[ "$rc" -eq 0 ] || fail "node exited with $rc after SIGTERM"
echo "PASS"
