#!/bin/sh
# Runs a test of the mount (SCRIPT SHARDFS) where a mount can be made: as root with /dev/fuse.
# Elsewhere exits 77, which ctest reports as skipped.
# Usage: mount_cli_guard.sh SCRIPT SHARDFS
if [ "$(id -u)" -ne 0 ] || [ ! -w /dev/fuse ]; then
  echo "SKIP: mounting needs root and /dev/fuse"
  exit 77
fi
exec sh "$@"
