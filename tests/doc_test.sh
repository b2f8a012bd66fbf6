#!/bin/bash
# Runs a document's runnable shell blocks, so the docs cannot rot: every fenced block opened
# with "```sh test" (a plain "```sh" block is shown, not run), in order, in one bash session
# with `set -euo pipefail`, as a new user would: HOME is a fresh folder (so the drives go to
# its XDG folders), the working folder another, and `shardfs` on PATH is the binary under
# test. The blocks make their own local network (`shardfs init --local-network 6`). A block
# that fails fails the test, naming its line. Whatever the blocks leave (mounts, the drives'
# local nodes and mount daemons, background jobs) is taken away at the end, by pid.
# Usage: doc_test.sh DOC.md SHARDFS
set -euo pipefail
doc=$(realpath "$1")
bin=$(realpath "$2")
if grep -q '^shardfs mount' "$doc" && { [ "$(id -u)" -ne 0 ] || [ ! -w /dev/fuse ]; }; then
  echo "SKIP: $(basename "$doc") mounts, which needs root and /dev/fuse"
  exit 77
fi
work=$(mktemp -d /tmp/shardfs-doc.XXXXXX)
session=
cleanup() {
  local rc=$?
  set +e
  grep -o " $work[^ ]*" /proc/mounts 2>/dev/null | while read -r m; do
    fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  # The mount daemons and the local nodes left their pids in the drives' folders.
  pids=$(find "$work" \( -name mount.json -exec jq -r .pid {} \; \) -o \
    \( -path '*/local-network/node*/pid' -exec cat {} \; \) 2>/dev/null || true)
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  [ -z "$session" ] || kill -- "-$session" 2>/dev/null || true
  for p in $pids; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

mkdir -p "$work/home" "$work/cwd" "$work/bin"
ln -s "$bin" "$work/bin/shardfs"
script=$work/blocks.sh
{
  echo 'set -euo pipefail'
  echo "trap 'echo \"doc_test: $(basename "$doc") line \$block_line: \\\"\$BASH_COMMAND\\\" failed\" >&2' ERR"
  awk '
    /^```sh test[ \t]*$/ { inside = 1; n++; printf "block_line=%d\necho \"--- block %d (line %d)\"\n", NR, n, NR; next }
    /^```/ && inside { inside = 0; next }
    inside { print }
  ' "$doc"
  echo 'echo "--- all blocks ran"'
  echo "touch '$work/done'"
} >"$script"
blocks=$(grep -c '^```sh test[[:space:]]*$' "$doc" || true)
shown=$(grep -c '^```sh[[:space:]]*$' "$doc" || true)
[ "$blocks" -gt 0 ] || { echo "FAIL: $doc has no runnable block (\`\`\`sh test)" >&2; exit 1; }
echo "doc_test: $(basename "$doc"): $blocks runnable blocks ($shown shown only)"

# A new session, so every process the blocks start (but daemons) is killed with it.
cd "$work/cwd"
env -i HOME="$work/home" PATH="$work/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
  TERM=dumb LANG=C.UTF-8 setsid bash "$script" &
session=$!
wait "$session"
# A block that ends the shell early (exit 0, an unclosed heredoc) must not pass for all.
[ -e "$work/done" ] || { echo "FAIL: $(basename "$doc"): the blocks stopped before the last one" >&2; exit 1; }
