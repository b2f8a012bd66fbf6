#!/bin/sh
# kill -9 of the mount's daemon during a copy, on 6 real storage nodes with RS(4,2) (after
# bad input to mount and umount, and a second mount of the same drive, all refused): a writer
# copies files into the mount one by one and notes each once its close returned; the daemon is
# killed after 100 of them. `shardfs mount` then clears the dead mount and mounts again; every
# file that was closed before the kill is whole, and the uploads left pending finish (umount
# says every write is stored); a cold mount after that reads them all from the nodes.
# Usage: mount_crash_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
start_nodes 6
init_drive 4 2

src="$dir/src"
random_files "$src" 300 7919 300000
head -c 12582912 /dev/urandom >"$src/f77"
head -c 9000000 /dev/urandom >"$src/f150"

mnt="$dir/mnt"
# Bad input first: clear errors, nothing mounted.
code=0
sfs mount "$dir/no-such-folder" 2>"$dir/err" || code=$?
[ "$code" -eq 1 ] && grep -q "not an existing folder" "$dir/err" ||
  fail "mount on a missing folder exited $code: $(cat "$dir/err")"
code=0
sfs mount "$mnt" -o bogus 2>"$dir/err" || code=$?
[ "$code" -eq 2 ] && grep -q "unknown mount option 'bogus'" "$dir/err" ||
  fail "an unknown -o option exited $code: $(cat "$dir/err")"
code=0
"$bin" umount "$mnt" 2>"$dir/err" || code=$?
[ "$code" -eq 1 ] && grep -q "is not a shardfs mount" "$dir/err" ||
  fail "umount of a folder that is not mounted exited $code: $(cat "$dir/err")"
grep -q " $mnt " /proc/mounts && fail "something got mounted"

mount_drive "$mnt"
# The drive is the daemon's: a second mount, and commands that need the drive to themselves,
# say who holds it (the file commands go through the daemon: cli/file_cli_test.sh).
code=0
mkdir -p "$dir/mnt2"
sfs mount "$dir/mnt2" 2>"$dir/err" || code=$?
[ "$code" -eq 1 ] && grep -q "shardfs mount at $mnt" "$dir/err" ||
  fail "a second mount of the drive exited $code: $(cat "$dir/err")"
code=0
sfs gc 2>"$dir/err" || code=$?
[ "$code" -eq 1 ] && grep -q "shardfs mount at $mnt" "$dir/err" ||
  fail "gc while mounted exited $code: $(cat "$dir/err")"
: >"$dir/closed"
(
  i=0
  while [ "$i" -lt 300 ]; do
    cp "$src/f$i" "$mnt/f$i" 2>/dev/null || exit 0
    echo "f$i" >>"$dir/closed"
    i=$((i + 1))
  done
) &
writer=$!
t=0
while [ "$(wc -l <"$dir/closed")" -lt 100 ]; do
  t=$((t + 1))
  [ "$t" -lt 600 ] || fail "the writer closed only $(wc -l <"$dir/closed") files in 60 s"
  sleep 0.1
done
# The kernel holds the mount's root attributes (so a stat of the dead mount may still answer).
stat "$mnt" >/dev/null
kill -9 "$mount_pid"
await_exit "$writer" 30 "the writer on the dead mount"
closed=$(wc -l <"$dir/closed")
[ "$closed" -lt 300 ] || fail "the copy ended before the kill"

mount_drive "$mnt"
grep -q "Cleared a dead shardfs mount" "$dir/mount.out" ||
  fail "mount did not say it cleared the dead mount: $(cat "$dir/mount.out")"
while read -r f; do
  cmp -s "$src/$f" "$mnt/$f" || fail "$f was closed before the kill but is not whole"
done <"$dir/closed"
unmount_drive "$mnt"
grep -q "every write is stored on the nodes" "$dir/umount.out" ||
  fail "umount said: $(cat "$dir/umount.out")"

# From the nodes: no cached chunk, a new page cache.
rm -rf "$dir/h/cache"
mount_drive "$mnt"
while read -r f; do
  cmp -s "$src/$f" "$mnt/$f" || fail "$f differs when read from the nodes"
done <"$dir/closed"
unmount_drive "$mnt"
echo "mount crash: killed after $closed closed files; all whole, all stored"
