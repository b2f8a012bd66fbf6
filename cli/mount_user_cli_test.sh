#!/bin/sh
# A user who is not root mounts their drive and works in it: every file shows as theirs
# (whatever owner the drive stored: its root folder's is 0), so they can write, `cp -a` and
# `rsync -a` into it, and unmount it (through fusermount3). Runs as root and acts as the user
# nobody (65534) with setpriv. This machine's /dev/fuse may be root's only (a container's
# is); a desktop's is open to all (0666), so the test opens it so for its run and puts the
# mode back at the end.
# Usage: mount_user_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
fuse_mode=$(stat -c %a /dev/fuse)
h=$dir/h
mnt=$dir/mnt
as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups -- env HOME="$dir" "$@"; }
# The mount and its daemon go with test_nodes.sh's cleanup; the drive's local nodes first.
finish() {
  chmod "$fuse_mode" /dev/fuse
  for p in $(local_pids "$h"); do kill "$p" 2>/dev/null || true; done
  cleanup
}
trap finish EXIT
chmod 0666 /dev/fuse
chmod 0755 "$dir"
chown 65534:65534 "$dir"

as_user "$bin" init --home "$h" --local-network 6 --local-capacity 512M >/dev/null || fail "init as nobody"
as_user mkdir "$mnt"
as_user "$bin" mount --home "$h" "$mnt" >/dev/null || fail "mount as nobody: $(tail -3 "$h/mount.log")"
mounts="$mnt"
daemons=$(jq -r .pid "$h/mount.json")
[ "$(as_user stat -c %u:%g "$mnt")" = 65534:65534 ] || fail "the drive's root shows as $(as_user stat -c %u:%g "$mnt")"
as_user sh -c "echo hello > '$mnt/a'" || fail "nobody cannot write in their own mount"
as_user cp -a /usr/share/common-licenses "$mnt/" || fail "cp -a as nobody"
as_user rsync -a /usr/share/common-licenses/ "$mnt/again/" || fail "rsync -a as nobody"
as_user diff -r "$mnt/common-licenses" /usr/share/common-licenses || fail "cp -a copy differs"
[ -z "$(as_user find "$mnt" ! -uid 65534)" ] || fail "files not shown as nobody's: $(as_user find "$mnt" ! -uid 65534 | head -3)"
as_user chmod 600 "$mnt/a" && [ "$(as_user stat -c %a "$mnt/a")" = 600 ] || fail "chmod as nobody"
# Root does not see into another user's mount (no allow_other).
! ls "$mnt" >/dev/null 2>&1 || fail "root could list nobody's mount without allow_other"
as_user "$bin" sync --home "$h" >/dev/null || fail "sync as nobody"
as_user "$bin" umount --home "$h" "$mnt" >"$dir/umount.out" || fail "umount as nobody"
grep -q "every write is stored" "$dir/umount.out" || fail "umount said: $(cat "$dir/umount.out")"
! grep -q " $mnt " /proc/mounts || fail "still mounted after umount"
as_user "$bin" get --home "$h" /a "$dir/a.back" && [ "$(cat "$dir/a.back")" = hello ] || fail "get after umount"
as_user "$bin" local-network stop --home "$h" >/dev/null
echo "mount as a user: ok"
