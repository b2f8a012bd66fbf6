#!/bin/sh
# The Debian package: builds it with CPack from the build folder, checks it with lintian (no
# errors), installs it with apt on this machine, and uses what it installed: `shardfs
# --version`, the man page, the bash completion, the systemd units (systemd-analyze), and a
# node started from the installed binary with the example config as the service's user. Then
# purges it. Needs root; a machine where a shardfs package is already installed is left alone.
# Usage: deb_test.sh BUILD_DIR VERSION
set -eu
build=$1
version=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: installing a package needs root"; exit 77; }
if [ "$(dpkg-query -W -f='${Status}' shardfs 2>/dev/null || true)" = "install ok installed" ]; then
  echo "SKIP: a shardfs package is installed already; this test installs and purges its own"
  exit 77
fi

dir=$(mktemp -d)
node_pid=
installed=0
cleanup() {
  if [ -n "$node_pid" ]; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  [ "$installed" -eq 0 ] || dpkg --purge shardfs >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

cpack --config "$build/CPackConfig.cmake" -B "$dir" >"$dir/cpack.log" 2>&1 || fail "cpack: $(cat "$dir/cpack.log")"
deb=$dir/shardfs_${version}_amd64.deb
[ -f "$deb" ] || fail "no $deb: $(ls "$dir")"

# lintian: every tag is printed; an error fails the test.
lintian --fail-on error --info "$deb" >"$dir/lintian.log" 2>&1 || { cat "$dir/lintian.log"; fail "lintian"; }
cat "$dir/lintian.log"
! grep -q '^E:' "$dir/lintian.log" || fail "lintian reported errors"

dpkg-deb -c "$deb" >"$dir/contents"
for f in ./usr/bin/shardfs ./usr/share/man/man1/shardfs.1.gz ./usr/share/bash-completion/completions/shardfs \
  ./etc/shardfs/node.toml ./lib/systemd/system/shardfs-node.service ./usr/lib/systemd/user/shardfs-mount@.service \
  ./usr/share/doc/shardfs/copyright ./usr/share/doc/shardfs/quickstart.md ./usr/share/doc/shardfs/node.md; do
  grep -q " $f\$" "$dir/contents" || fail "the package has no $f"
done
dpkg-deb -f "$deb" Depends | grep -q 'libfuse3-3' || fail "Depends lacks the libraries: $(dpkg-deb -f "$deb" Depends)"

# apt installs it with its dependencies (all present here; on a clean machine apt fetches them).
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$deb" >"$dir/apt.log" 2>&1 ||
  fail "apt-get install: $(tail -20 "$dir/apt.log")"
[ "$(/usr/bin/shardfs --version)" = "shardfs $version" ] || fail "installed version: $(/usr/bin/shardfs --version)"
getent passwd shardfs-node >/dev/null || fail "no shardfs-node user"
[ "$(stat -c %U:%a /var/lib/shardfs-node)" = "shardfs-node:700" ] ||
  fail "data folder: $(stat -c %U:%a /var/lib/shardfs-node)"

# The man page renders without a warning and has every command.
man --warnings -l /usr/share/man/man1/shardfs.1.gz >"$dir/man.txt" 2>"$dir/man.err" || fail "man: $(cat "$dir/man.err")"
[ ! -s "$dir/man.err" ] || fail "man warnings: $(cat "$dir/man.err")"
for c in init put get ls mkdir rm mv stat du gc status node restore sync mount umount nodes audit repair serve \
  pair devices "devices revoke" local-network; do
  grep -q "^   shardfs $c \[options\]" "$dir/man.txt" || fail "the man page has no 'shardfs $c'"
done

# The bash completion, as bash-completion loads it.
cat >"$dir/complete.bash" <<'BASH'
. /usr/share/bash-completion/bash_completion
. /usr/share/bash-completion/completions/shardfs
complete_line() {
  COMP_LINE=$1
  COMP_POINT=${#COMP_LINE}
  read -ra COMP_WORDS <<<"$COMP_LINE"
  [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _shardfs shardfs "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  ((${#COMPREPLY[@]} == 0)) || printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
expect() {
  got=$(complete_line "$1")
  [[ $got == "$2" ]] || { echo "completing '$1': got '$got', expected '$2'" >&2; exit 1; }
}
expect 'shardfs loc' 'local-network '
expect 'shardfs local-network st' 'start stop '
expect 'shardfs devices r' 'revoke '
expect 'shardfs mount --fl' '--flush-timeout '
expect 'shardfs node --config /etc/shardfs/no' '/etc/shardfs/node.toml '
expect 'shardfs node --config=/etc/shardfs/no' '/etc/shardfs/node.toml '
expect 'shardfs put --drive /etc/shardfs/no' ''
expect 'shardfs put --drive x /etc/shardfs/no' '/etc/shardfs/node.toml '
expect 'shardfs devices revoke --j' '--json '
BASH
bash "$dir/complete.bash" || fail "bash completion"

# The units: systemd-analyze checks them (the binary and man page they name are installed
# now) and scores the node's sandbox.
systemd-analyze verify /lib/systemd/system/shardfs-node.service >"$dir/verify.log" 2>&1 ||
  fail "systemd-analyze verify shardfs-node.service: $(cat "$dir/verify.log")"
[ ! -s "$dir/verify.log" ] || fail "systemd-analyze verify shardfs-node.service: $(cat "$dir/verify.log")"
# The user unit is checked as a user's manager would load it (which needs a runtime folder).
mkdir -m 0700 "$dir/runtime"
XDG_RUNTIME_DIR=$dir/runtime systemd-analyze verify --user /usr/lib/systemd/user/shardfs-mount@.service \
  >"$dir/verify.log" 2>&1 || fail "systemd-analyze verify shardfs-mount@.service: $(cat "$dir/verify.log")"
[ ! -s "$dir/verify.log" ] || fail "systemd-analyze verify shardfs-mount@.service: $(cat "$dir/verify.log")"
systemd-analyze security --offline=true /lib/systemd/system/shardfs-node.service >"$dir/security.log" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for shardfs-node.service: \([0-9.]*\).*/\1/p' "$dir/security.log")
echo "shardfs-node.service exposure level: $exposure (systemd-analyze security; 0 is best, 10 worst)"
[ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' ||
  fail "exposure level '$exposure' above 2.0: $(tail -5 "$dir/security.log")"

# A node from the installed binary and the example config, as the service runs it (its user,
# its data folder); only the address is moved to a free loopback port.
chown shardfs-node "$dir"
# setpriv execs the node itself (runuser would stay as its parent), so $! is the node's pid.
setpriv --reuid=shardfs-node --regid=shardfs-node --init-groups -- /usr/bin/shardfs node --config /etc/shardfs/node.toml --listen 127.0.0.1:0 \
  --ready-file "$dir/ready" 2>"$dir/node.log" &
node_pid=$!
t=0
while [ ! -s "$dir/ready" ]; do
  t=$((t + 1))
  [ "$t" -lt 100 ] && kill -0 "$node_pid" 2>/dev/null || fail "the node did not start: $(cat "$dir/node.log")"
  sleep 0.1
done
curl -sf "http://$(cat "$dir/ready")/v1/status" >"$dir/status.json" || fail "the node's /v1/status"
grep -q '"capacity":10737418240' "$dir/status.json" || fail "the node did not take capacity = 10G: $(cat "$dir/status.json")"
[ "$(stat -c %U "$(ls -d /var/lib/shardfs-node/* | head -1)")" = shardfs-node ] ||
  fail "the node's files: $(ls -l /var/lib/shardfs-node)"
kill "$node_pid"
wait "$node_pid" || fail "the node's exit on SIGTERM: $?"
node_pid=

# Purge: the binary and the data folder go; the user stays (Debian keeps system users).
installed=0
dpkg --purge shardfs >"$dir/purge.log" 2>&1 || fail "dpkg --purge: $(cat "$dir/purge.log")"
[ ! -e /usr/bin/shardfs ] && [ ! -e /var/lib/shardfs-node ] && [ ! -e /etc/shardfs/node.toml ] ||
  fail "the purge left files"
echo "deb_test: $(basename "$deb") passed"
