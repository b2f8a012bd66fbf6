#!/bin/sh
# WebDAV clients users already have, on the companion API's /dav (docs/api.md, "WebDAV"):
# rclone's webdav backend (copy in, a byte-for-byte check, and `rclone mount` with a file
# written and read through it) and davfs2 (mount -t davfs: a file written there is in the
# drive after its umount; a file the drive has reads back through it). Runs under
# mount_cli_guard.sh (root, /dev/fuse). Usage: webdav_clients_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
for t in rclone mount.davfs fusermount3 jq mountpoint; do
  command -v "$t" >/dev/null || { echo "SKIP: $t is missing"; exit 77; }
done

start_nodes 3
init_drive 2 1
start_serve --listen 127.0.0.1:0 --http
token=$(pair_token /)

# await_mount DIR PID WHAT: waits (10 s) until DIR is a mount point while PID runs.
await_mount() {
  t=0
  until mountpoint -q "$1"; do
    t=$((t + 1))
    [ "$t" -lt 100 ] || fail "$3 did not mount $1"
    kill -0 "$2" 2>/dev/null || fail "$3 ended before mounting: $(tail -5 "$dir/$3.log")"
    sleep 0.1
  done
}

mkdir -p "$dir/src/sub dir"
head -c 3000000 /dev/urandom >"$dir/src/big"
printf 'caf\303\251' >"$dir/src/sub dir/small é"
: >"$dir/src/empty"

echo "== rclone's webdav backend"
# A remote from the environment only (the config file stays empty).
: >"$dir/rclone.conf"
RCLONE_CONFIG_SFS_TYPE=webdav
RCLONE_CONFIG_SFS_URL="$url/dav"
RCLONE_CONFIG_SFS_VENDOR=other
RCLONE_CONFIG_SFS_USER=phone
RCLONE_CONFIG_SFS_PASS=$(rclone obscure "$token")
export RCLONE_CONFIG_SFS_TYPE RCLONE_CONFIG_SFS_URL RCLONE_CONFIG_SFS_VENDOR RCLONE_CONFIG_SFS_USER \
  RCLONE_CONFIG_SFS_PASS
rc() { rclone --config "$dir/rclone.conf" --low-level-retries 1 --retries 1 "$@"; }
rc copy "$dir/src" sfs:rc 2>"$dir/rclone.err" || fail "rclone copy: $(tail -5 "$dir/rclone.err")"
rc check --download "$dir/src" sfs:rc 2>"$dir/rclone.err" ||
  fail "rclone check: $(tail -5 "$dir/rclone.err")"
rc lsf -R sfs:rc | LC_ALL=C sort >"$dir/lsf"
printf 'big\nempty\nsub dir/\nsub dir/small \303\251\n' | cmp -s - "$dir/lsf" ||
  fail "rclone lsf: $(cat "$dir/lsf")"
# What rclone stored is in the drive (read with the CLI, through the serving process).
sfs get /rc/big "$dir/big-back" && cmp "$dir/src/big" "$dir/big-back" || fail "rclone's copy differs"

mkdir "$dir/rmnt"
rc mount sfs: "$dir/rmnt" --vfs-cache-mode off >"$dir/rclone.log" 2>&1 &
rclone_pid=$!
pids="$pids $rclone_pid"
mounts="$mounts $dir/rmnt"
await_mount "$dir/rmnt" "$rclone_pid" rclone
cmp "$dir/src/big" "$dir/rmnt/rc/big" || fail "read through rclone mount"
cp "$dir/src/big" "$dir/rmnt/via-rclone-mount" || fail "write through rclone mount"
[ "$(ls "$dir/rmnt/rc/sub dir")" = "small é" ] || fail "ls through rclone mount: $(ls "$dir/rmnt/rc/sub dir")"
fusermount3 -u "$dir/rmnt" || fail "unmount rclone"
await_exit "$rclone_pid" 30 "rclone mount"
sfs get /via-rclone-mount "$dir/back" && cmp "$dir/src/big" "$dir/back" ||
  fail "the file written through rclone mount differs in the drive"

echo "== davfs2"
# davfs2's own configuration for this mount: credentials in the test's folder; its cache in a
# folder its daemon's user (davfs2) can reach, removed at exit.
mkdir "$dir/dmnt"
davcache=$(mktemp -d /tmp/shardfs-davfs2.XXXXXX)
trap 'cleanup; rm -rf "$davcache"' EXIT
chown root:davfs2 "$davcache"
chmod 775 "$davcache"
printf '%s phone %s\n' "$url/dav/" "$token" >"$dir/davfs2.secrets"
chmod 600 "$dir/davfs2.secrets"
printf 'secrets %s\ncache_dir %s\nask_auth 0\n' "$dir/davfs2.secrets" "$davcache" \
  >"$dir/davfs2.conf"
mount -t davfs "$url/dav/" "$dir/dmnt" -o "conf=$dir/davfs2.conf" >"$dir/davfs2.log" 2>&1 ||
  fail "mount -t davfs: $(cat "$dir/davfs2.log")"
mounts="$mounts $dir/dmnt"
cmp "$dir/src/big" "$dir/dmnt/rc/big" || fail "read through davfs2"
[ "$(cat "$dir/dmnt/rc/sub dir/small é")" = "café" ] || fail "small file through davfs2"
cp "$dir/src/big" "$dir/dmnt/via-davfs2" || fail "write through davfs2"
mkdir "$dir/dmnt/made by davfs2" || fail "mkdir through davfs2"
# davfs2 uploads what it cached by its umount at the latest.
umount "$dir/dmnt" || fail "umount davfs2"
sfs get /via-davfs2 "$dir/back2" && cmp "$dir/src/big" "$dir/back2" ||
  fail "the file written through davfs2 differs in the drive"
sfs stat "/made by davfs2" | grep -q folder || fail "the folder made through davfs2"
echo "webdav clients: ok"
