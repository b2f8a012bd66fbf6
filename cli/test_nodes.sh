# Sourced by the CLI tests that need storage nodes: with $bin (the shardfs binary) set, makes
# the folder $dir (removed at exit), defines fail(), and start_node N [HOST:PORT] [FLAG...] (a
# node on an ephemeral loopback port, or on HOST:PORT to restart node N there on its data,
# with any further `shardfs node` flags; data in $dir/nN, its address in $dir/readyN and pid
# in $pidN; every node started is stopped by pid at exit), start_nodes COUNT (nodes
# 1..COUNT, their addresses comma-separated in $nodes), node_total FIELD (the sum of a number
# in every started node's /v1/status: shards, used); for the test's drive in $dir/h:
# init_drive K M (creates it over $nodes with RS(K,M)), sfs ARGS (shardfs on it) and
# status_field NAME (a number from its `status --json`); mount_drive and unmount_drive;
# random_files; await_exit; local_pids HOME; start_serve FLAG... (`shardfs serve` on the drive; $url, $serve_pid);
# pair_token ROOT [FLAG...] (a device token from `shardfs pair` and the API at $url, with
# $curl_tls as curl's TLS flags).
dir=$(mktemp -d)
pids=
mounts=
daemons=
cleanup() {
  # Mounts first (detached, so nothing waits on them), then their daemons, then the nodes.
  for m in $mounts; do umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true; done
  for p in $daemons; do kill -9 "$p" 2>/dev/null || true; done
  for p in $daemons; do
    t=0
    while kill -0 "$p" 2>/dev/null && [ "$t" -lt 100 ]; do
      t=$((t + 1))
      sleep 0.1
    done
  done
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

start_node() {
  node_n=$1
  shift
  listen=127.0.0.1:0
  case "${1:-}" in
    -* | "") ;;
    *)
      listen=$1
      shift
      ;;
  esac
  rm -f "$dir/ready$node_n"
  "$bin" node --data "$dir/n$node_n" --capacity 512M --reserve 0 --listen "$listen" \
    --scrub-rate 0 --ready-file "$dir/ready$node_n" "$@" 2>"$dir/log$node_n" &
  eval "pid$node_n=$!"
  pids="$pids $!"
  t=0
  while [ ! -s "$dir/ready$node_n" ]; do
    t=$((t + 1))
    [ "$t" -lt 100 ] || fail "node $node_n did not start: $(cat "$dir/log$node_n")"
    sleep 0.1
  done
}

start_nodes() {
  nodes=
  i=1
  while [ "$i" -le "$1" ]; do
    start_node "$i"
    nodes="$nodes${nodes:+,}$(cat "$dir/ready$i")"
    i=$((i + 1))
  done
}

node_total() {
  total=0
  for r in "$dir"/ready*; do
    v=$(curl -s "http://$(cat "$r")/v1/status" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p")
    [ -n "$v" ] || fail "no $1 in the status of node $(cat "$r")"
    total=$((total + v))
  done
  echo "$total"
}

sfs() { "$bin" "$@" --home "$dir/h"; }

# await_exit PID SECONDS WHAT: waits for process PID to end; fails with "WHAT did not end in
# SECONDS s" if it is still there then.
await_exit() {
  ae_t=0
  while kill -0 "$1" 2>/dev/null; do
    ae_t=$((ae_t + 1))
    [ "$ae_t" -lt $(($2 * 10)) ] || fail "$3 did not end in $2 s"
    sleep 0.1
  done
}

# random_files DIR COUNT STEP MAX: files DIR/f0 .. f(COUNT-1) of random bytes, file i holding
# (i * STEP) % MAX + 1 of them.
random_files() {
  mkdir -p "$1"
  rf_i=0
  while [ "$rf_i" -lt "$2" ]; do
    head -c $(((rf_i * $3) % $4 + 1)) /dev/urandom >"$1/f$rf_i"
    rf_i=$((rf_i + 1))
  done
}

# mount_drive MOUNTPOINT [FLAG...]: mounts the test's drive there (creating the folder); the
# daemon's pid in $mount_pid. Unmounted and killed at exit.
mount_drive() {
  mkdir -p "$1" 2>/dev/null || true  # a dead mount there cannot be looked at: mount clears it
  sfs mount "$@" >"$dir/mount.out" 2>&1 ||
    fail "mount $1: $(cat "$dir/mount.out"); log: $(tail -5 "$dir/h/mount.log" 2>/dev/null)"
  mount_pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$dir/h/mount.json")
  [ -n "$mount_pid" ] || fail "no daemon pid in $dir/h/mount.json"
  case " $mounts " in *" $1 "*) ;; *) mounts="$mounts $1" ;; esac
  daemons="$daemons $mount_pid"
}

# local_pids HOME: the pids of the local network of the drive in HOME (shardfs init
# --local-network), from their pid files.
local_pids() { cat "$1"/local-network/node*/pid 2>/dev/null || true; }

# unmount_drive MOUNTPOINT: `shardfs umount`, its message in $dir/umount.out.
unmount_drive() {
  "$bin" umount "$1" --home "$dir/h" >"$dir/umount.out" 2>&1 ||
    fail "umount $1: $(cat "$dir/umount.out")"
}

init_drive() {
  "$bin" init --home "$dir/h" --node "$nodes" --k "$1" --m "$2" >/dev/null 2>"$dir/err" ||
    fail "init: $(cat "$dir/err")"
}

status_field() { sfs status --json | sed -n "s/^  \"$1\": *\([0-9]*\).*/\1/p"; }

# start_serve FLAG...: `shardfs serve` in the background; its URL in $url once it serves.
start_serve() {
  # Gone first: the shell truncates them in the child, which the wait below could outrun and
  # find the last serve's "Serving" line.
  rm -f "$dir/serve.out" "$dir/serve.err"
  "$bin" serve --home "$dir/h" "$@" >"$dir/serve.out" 2>"$dir/serve.err" &
  serve_pid=$!
  pids="$pids $serve_pid"
  t=0
  while ! grep -q '^Serving' "$dir/serve.out" 2>/dev/null; do
    t=$((t + 1))
    [ "$t" -lt 100 ] || fail "serve did not start: $(cat "$dir/serve.err")"
    kill -0 "$serve_pid" 2>/dev/null || fail "serve ended: $(cat "$dir/serve.err")"
    sleep 0.1
  done
  url=$(sed -n 's/^Serving drive [^ ]* at \([^ ]*\) and.*/\1/p' "$dir/serve.out")
}

# pair_token ROOT [FLAG...]: a device token for ROOT, by `shardfs pair --json` and the API.
curl_tls=
pair_token() {
  root=$1
  shift
  sfs pair --json --root "$root" "$@" >"$dir/pair.json" || fail "pair: $(cat "$dir/pair.json")"
  code=$(jq -r .code "$dir/pair.json")
  curl -s -X POST "$url/api/v1/pair" -d "{\"code\": \"$code\", \"name\": \"phone\"}" \
    -o "$dir/paired.json" -w '%{http_code}' $curl_tls >"$dir/code"
  [ "$(cat "$dir/code")" = 200 ] || fail "POST pair: $(cat "$dir/code") $(cat "$dir/paired.json")"
  jq -r .token "$dir/paired.json"
}
