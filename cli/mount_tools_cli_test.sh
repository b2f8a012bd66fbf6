#!/bin/sh
# The mounted drive with the real tools, on 6 real storage nodes with RS(4,2): `cp -a` and
# `rsync -a` of a generated tree (10,000 small files, a few large ones, symlinks, a hard link,
# empty folders, odd names, old times and odd modes) into the mount; every entry's type, mode,
# size, mtime (to the nanosecond) and link target compared with the source and `diff -r` on the
# bytes; `shardfs sync` while mounted; a second `rsync -a --itemize-changes` reports no change; `rsync -a --delete` after
# changes; `tar` create and extract inside the mount. Then `shardfs umount` says every write is
# stored, the drive's catalog holds exactly the files the mount showed (no temporary file of
# rsync's left behind), and a remount and a restore on a second home show the same tree.
# Usage: mount_tools_cli_test.sh SHARDFS
set -eu
bin=$1
. "$(dirname "$0")/test_nodes.sh"
start_nodes 6
"$bin" init --home "$dir/h" --node "$nodes" --k 4 --m 2 --json >"$dir/init.json" 2>"$dir/err" ||
  fail "init: $(cat "$dir/err")"
phrase=$(sed -n 's/.*"recovery_phrase": *"\([^"]*\)".*/\1/p' "$dir/init.json")

# listing DIR: every entry below DIR, NUL-separated and sorted: type, mode, size (not for
# folders, whose size differs between file systems), mtime in ns, link target, path.
listing() {
  folder_time='%T@'
  [ -z "${no_folder_times:-}" ] || folder_time='-'
  (cd "$1" && find . -mindepth 1 ! -type d -printf '%y %m %s %T@ %l %p\0' &&
    find . -mindepth 1 -type d -printf "%y %m - $folder_time - %p\\0") | sort -z
}
same_tree() {
  listing "$1" >"$dir/l1"
  listing "$2" >"$dir/l2"
  if ! cmp -s "$dir/l1" "$dir/l2"; then
    tr '\0' '\n' <"$dir/l1" >"$dir/l1.txt"
    tr '\0' '\n' <"$dir/l2" >"$dir/l2.txt"
    fail "$3: the trees differ: $(diff "$dir/l1.txt" "$dir/l2.txt" | head -20)"
  fi
  diff -r --no-dereference "$1" "$2" >"$dir/diff" 2>&1 || fail "$3: diff -r: $(head -20 "$dir/diff")"
}

# The source tree.
src="$dir/src"
mkdir -p "$src/small" "$src/big" "$src/empty/a/b" "$src/empty2" "$src/names" "$src/links"
i=0
while [ "$i" -lt 100 ]; do
  mkdir "$src/small/d$i"
  head -c 409600 /dev/urandom | split -b 4096 -d -a 2 - "$src/small/d$i/f"
  i=$((i + 1))
done
head -c 20971520 /dev/urandom >"$src/big/twenty-mib"
head -c 7340155 /dev/urandom >"$src/big/seven-mib-odd"
head -c 1 /dev/urandom >"$src/big/one"
: >"$src/big/empty"
printf x >"$src/names/with space"
printf y >"$src/names/$(printf 'new\nline')"
printf u >"$src/names/$(printf 'caf\303\251 \342\202\254')"
printf d >"$src/names/-dash"
printf l >"$src/names/$(printf '%0255d' 0 | tr 0 n)"
ln -s ../big/one "$src/links/relative"
ln -s /nowhere/at/all "$src/links/dangling"
ln "$src/big/one" "$src/links/hard"
chmod 600 "$src/big/one"
chmod 755 "$src/big/seven-mib-odd"
chmod 700 "$src/empty/a"
touch -h -d '2001-02-03 04:05:06.123456789' "$src/links/relative"
touch -d '1999-12-31 23:59:59.5' "$src/names/-dash" "$src/empty2"
touch -d '2020-06-01 12:00:00.000000001' "$src/small/d7" "$src/small"
count=$(find "$src" -type f | wc -l)
[ "$count" -ge 10000 ] || fail "the source has $count files"

mnt="$dir/mnt"
mount_drive "$mnt"

# cp -a: the same tree, times and modes included.
cp -a "$src" "$mnt/cp"
same_tree "$src" "$mnt/cp" "cp -a"
[ "$(stat -c %h "$mnt/cp/big/one")" -eq 2 ] || fail "cp -a lost the hard link"
# A backup script's next step: shardfs sync, which the mount's daemon does.
sfs sync >"$dir/sync.out" 2>&1 || fail "sync while mounted: $(cat "$dir/sync.out")"
grep -q "Synced the drive mounted at $mnt" "$dir/sync.out" || fail "sync said: $(cat "$dir/sync.out")"
# The other file commands while mounted go through the daemon's socket too, and what they
# change shows in the mount at once (the kernel's cache is told).
sfs ls /cp/small >"$dir/ls-mounted" || fail "ls while mounted"
(cd "$mnt/cp/small" && LC_ALL=C ls -A) | cmp -s - "$dir/ls-mounted" ||
  fail "ls while mounted: $(head -3 "$dir/ls-mounted")"
[ ! -e "$mnt/via-cli" ] || fail "via-cli exists before the put"
sfs put "$src/big/seven-mib-odd" /via-cli || fail "put while mounted"
cmp "$src/big/seven-mib-odd" "$mnt/via-cli" || fail "a file put while mounted differs in the mount"
[ "$(stat -c '%a %Y' "$mnt/via-cli")" = "$(stat -c '%a %Y' "$src/big/seven-mib-odd")" ] ||
  fail "put while mounted: mode or mtime $(stat -c '%a %Y' "$mnt/via-cli")"
sfs mv /via-cli /via-cli-2 || fail "mv while mounted"
[ ! -e "$mnt/via-cli" ] && [ -f "$mnt/via-cli-2" ] || fail "the mount did not see the mv"
sfs get /cp/big/one "$dir/one-back" && cmp "$src/big/one" "$dir/one-back" || fail "get while mounted"
sfs status | grep -q '^drive default: RS' || fail "status while mounted: $(sfs status 2>&1 | head -3)"
sfs rm /via-cli-2 || fail "rm while mounted"
[ ! -e "$mnt/via-cli-2" ] || fail "the mount still shows a file rm removed"

# rsync -a, then again: nothing to do.
rsync -a "$src/" "$mnt/rs/"
same_tree "$src" "$mnt/rs" "rsync -a"
rsync -a --itemize-changes "$src/" "$mnt/rs/" >"$dir/itemize" || fail "second rsync failed"
[ ! -s "$dir/itemize" ] || fail "a second rsync -a changed: $(head -5 "$dir/itemize")"

# Changes in the source, then rsync --delete.
printf 'more' >>"$src/small/d3/f05"
head -c 5000 /dev/urandom >"$src/small/d4/f10"
rm -r "$src/small/d9" "$src/names/-dash"
mkdir "$src/new"
head -c 100000 /dev/urandom >"$src/new/file"
touch -d '2010-01-01 00:00:00.25' "$src/new/file"
chmod 640 "$src/small/d5/f01"
# rsync leaves a folder it deleted in with the deletion's time (on any file system: a plain
# folder does the same), and then sees no difference in it: folders' times are not compared.
rsync -a --delete "$src/" "$mnt/rs/"
no_folder_times=1
same_tree "$src" "$mnt/rs" "rsync -a --delete"
rsync -a --delete --itemize-changes "$src/" "$mnt/rs/" >"$dir/itemize"
[ ! -s "$dir/itemize" ] || fail "rsync --delete again changed: $(head -5 "$dir/itemize")"

# (From here on $mnt/rs is compared with $src without folders' times; the listings of the whole
# mount, which are compared with each other, have them.)

# tar inside the mount (POSIX format keeps nanosecond times).
tar --format=posix -C "$mnt" -cf "$mnt/rs.tar" rs
mkdir "$mnt/untar"
tar -C "$mnt/untar" -xf "$mnt/rs.tar"
same_tree "$mnt/rs" "$mnt/untar/rs" "tar"
rm "$mnt/rs.tar"

# What the mount shows, then unmount: every write stored.
no_folder_times= listing "$mnt" >"$dir/before"
files=$(find "$mnt" -type f -printf '%i\n' | sort -u | wc -l)
unmount_drive "$mnt"
grep -q "every write is stored on the nodes" "$dir/umount.out" ||
  fail "umount said: $(cat "$dir/umount.out")"
[ ! -e "$dir/h/mount.json" ] || fail "the daemon's record is still there"
mountpoint -q "$mnt" && fail "still mounted after umount"
# The catalog holds exactly those files: none of rsync's temporary files is left over.
[ "$(status_field files)" -eq "$files" ] || fail "the drive has $(status_field files) files, the mount showed $files"
sfs ls -R / >"$dir/ls"
grep -q '^\.' "$dir/ls" && fail "a hidden temporary file is in the drive: $(grep '^\.' "$dir/ls" | head -3)"

# Remount: the same tree, now read from the nodes.
mount_drive "$mnt"
no_folder_times= listing "$mnt" >"$dir/after"
cmp -s "$dir/before" "$dir/after" || fail "the tree changed across a remount"
same_tree "$src" "$mnt/rs" "after a remount"
unmount_drive "$mnt"

# A restore on a second home, mounted: the same tree.
"$bin" restore --home "$dir/h2" --node "$(cat "$dir/ready2")" --recovery-phrase "$phrase" \
  >"$dir/restore.out" 2>&1 || fail "restore: $(cat "$dir/restore.out")"
mkdir -p "$dir/mnt2"
"$bin" mount "$dir/mnt2" --home "$dir/h2" >"$dir/mount2.out" 2>&1 || fail "mount h2: $(cat "$dir/mount2.out")"
mounts="$mounts $dir/mnt2"
daemons="$daemons $(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$dir/h2/mount.json")"
no_folder_times= listing "$dir/mnt2" >"$dir/restored"
cmp -s "$dir/before" "$dir/restored" || fail "the restored drive's tree differs"
same_tree "$src" "$dir/mnt2/rs" "after a restore"
"$bin" umount "$dir/mnt2" --home "$dir/h2" >/dev/null || fail "umount of the restored drive"
echo "mount tools: $count files through cp -a, rsync -a, rsync --delete and tar; remount and restore"
