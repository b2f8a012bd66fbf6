#!/bin/sh
# Stopped nodes under the mount, on 6 real storage nodes with RS(4,2). Two of six stopped
# (SIGSTOP: they keep their sockets and answer nothing) during a cold read of a large file and
# during a copy into the mount: both complete with the right bytes (the copy's uploads finish
# once the nodes are back). Three stopped, below k: a read of data that is not cached fails with
# EIO within a bound, and nothing hangs.
# Usage: mount_faults_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
start_nodes 6
init_drive 4 2
mnt="$dir/mnt"

head -c 50331648 /dev/urandom >"$dir/big"
want=$(sha256sum <"$dir/big")
mount_drive "$mnt"
cp "$dir/big" "$mnt/big"
unmount_drive "$mnt"
grep -q "every write is stored" "$dir/umount.out" || fail "umount said: $(cat "$dir/umount.out")"

# A cold read (no cached chunk, a new page cache) while two nodes stop.
rm -rf "$dir/h/cache"
mount_drive "$mnt"
sha256sum <"$mnt/big" >"$dir/got" &
reader=$!
sleep 0.3
kill -STOP "$pid2" "$pid5"
await_exit "$reader" 120 "the read with two nodes stopped"
wait "$reader" || fail "the read with two nodes stopped failed"
[ "$(cat "$dir/got")" = "$want" ] || fail "the read with two nodes stopped gave other bytes"

# A copy while they are still stopped: it lands in the write-back area and reads back.
random_files "$dir/tree" 200 4099 200000
cp -a "$dir/tree" "$mnt/tree" || fail "the copy with two nodes stopped failed"
diff -r "$dir/tree" "$mnt/tree" >/dev/null || fail "the copy with two nodes stopped differs"
kill -CONT "$pid2" "$pid5"
unmount_drive "$mnt"
grep -q "every write is stored" "$dir/umount.out" || fail "umount said: $(cat "$dir/umount.out")"
rm -rf "$dir/h/cache"
mount_drive "$mnt"
diff -r "$dir/tree" "$mnt/tree" >/dev/null || fail "the copied tree differs when read from the nodes"

# Below k: three nodes stopped. A read of data not cached fails with EIO, within a bound.
unmount_drive "$mnt"
rm -rf "$dir/h/cache"
mount_drive "$mnt"
kill -STOP "$pid1" "$pid3" "$pid6"
start=$(date +%s)
if cat "$mnt/big" >/dev/null 2>"$dir/err"; then
  fail "a read with three of six nodes stopped succeeded"
fi
took=$(($(date +%s) - start))
grep -q "Input/output error" "$dir/err" || fail "the failed read said: $(cat "$dir/err")"
[ "$took" -le 60 ] || fail "the failed read took $took s"
# The mount still answers, and reads again once the nodes are back.
ls "$mnt" >/dev/null || fail "ls failed with three nodes stopped"
kill -CONT "$pid1" "$pid3" "$pid6"
# Nodes that let requests time out are backed off (5 s, doubling up to 30 s), but the drive
# asks them for their status every second: reads come back within seconds of their return.
back=$(date +%s)
t=0
until [ "$(sha256sum <"$mnt/big" 2>/dev/null)" = "$want" ]; do
  t=$((t + 1))
  [ "$t" -lt 15 ] || fail "reads did not come back within 15 s of the nodes' return"
  sleep 1
done
back=$(($(date +%s) - back))
unmount_drive "$mnt"
echo "mount faults: reads and a copy with 2 of 6 stopped; EIO in $took s with 3 stopped;" \
  "reads back $back s after the nodes were"
