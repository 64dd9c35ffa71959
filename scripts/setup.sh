#!/usr/bin/env bash
# Idempotent set-up on a fresh machine of this kind (Debian 12, Node 20, root):
# system packages FUSE needs, npm dependencies from the lock file, and the build.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

# The FUSE binding is built against libfuse 3 (Debian: libfuse3-dev, found with
# pkg-config; docs/decisions/0003); fuse3 gives fusermount (a link to fusermount3),
# which unmounts a dead mount without root tricks (it replaces Debian's fuse). attr gives getfattr
# and setfattr for looking at xattrs by hand. For the tests only: chromium renders
# the status page, faketime runs a peer whose clock is off (doctor's skew check),
# python3 drives the POSIX conformance cases (mknod, utimensat, raw xattr buffers),
# rsync, acl (getfacl/setfacl) and tar round-trip trees through the mount.
missing=()
for pkg in libfuse3-dev fuse3 pkg-config attr chromium faketime python3 rsync acl tar; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing system packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -e /dev/fuse ] || log "warning: /dev/fuse does not exist; mounting will fail (load the fuse module)"

# Dependencies, exactly as locked. Re-run when the lock file or our patch of
# fuse-native changed since the last install (npm ci puts back its pristine
# source, which the patch expects, and runs the postinstall).
stamp=node_modules/.mirrorfs-lock-stamp
if [ ! -f "$stamp" ] || ! cat package-lock.json scripts/patch-fuse-native.mjs | cmp -s - "$stamp"; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  cat package-lock.json scripts/patch-fuse-native.mjs > "$stamp"
fi
# Our fixes to fuse-native and our own addon (both also run by npm's postinstall;
# again here, idempotently, for a node_modules installed before they changed).
node scripts/patch-fuse-native.mjs
node scripts/build-native.mjs
# Native addons must have built (npm 11 may warn about install scripts).
for addon in node_modules/better-sqlite3/build/Release/better_sqlite3.node node_modules/fs-xattr/build/Release/xattr.node native/posix/build/Release/posix.node; do
  [ -f "$addon" ] || { log "native addon $addon did not build; see npm's output above"; exit 1; }
done

log "building (tsc)"
npm run --silent build

# mount(8) helper (mount -t fuse.mirrorfs, /etc/fstab) and the commands on the PATH.
if [ "$(id -u)" -eq 0 ]; then
  node dist/cli/mirrorfs.js install-helpers >/dev/null
  log "installed /sbin/mount.fuse.mirrorfs and /usr/local/bin/mirrorfs{,-peer,-link}"
fi
