#!/usr/bin/env bash
# The main job on one machine: two loopback peers ("east", "west"), set up with
# init and mutual TLS as in production (fingerprints exchanged), a mount that
# mirrors to both, a few changes through it, status, an outage of west (writes go
# on with --ack 1, west is caught up when it returns), verify, and a clean unmount.
#   bash scripts/demo.sh            (as root; sets everything up first)
# Leaves nothing running; the demo's directories are under $DEMO_DIR (default: a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

DEMO_DIR=${DEMO_DIR:-$(mktemp -d /tmp/mirrorfs-demo.XXXXXX)}
mkdir -p "$DEMO_DIR"/{east,west,mnt,state}
TOKEN="$DEMO_DIR/token"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TOKEN"
PEER="node dist/cli/mirrorfs-peer.js"
MIRRORFS="node dist/cli/mirrorfs.js"
pids=()

cleanup() {
  $MIRRORFS unmount "$DEMO_DIR/mnt" >/dev/null 2>&1 || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "init: a TLS identity for each peer and for the mount; every trust file lists all three fingerprints, each with its roles"
fingerprint() { sed -n 's/^fingerprint: //p'; }
EAST_FP=$($PEER init --data "$DEMO_DIR/east" --name east --token-file "$TOKEN" | tee /dev/stderr | fingerprint)
WEST_FP=$($PEER init --data "$DEMO_DIR/west" --name west --token-file "$TOKEN" | fingerprint)
MOUNT_FP=$($MIRRORFS init --tls-identity "$DEMO_DIR/etc/tls" --trust "$DEMO_DIR/etc/trust" --name primary | fingerprint)
for trust in "$DEMO_DIR/east.state/trust" "$DEMO_DIR/west.state/trust" "$DEMO_DIR/etc/trust"; do
  printf '%s east roles=peer\n%s west roles=peer\n%s primary roles=mount,standby\n' "$EAST_FP" "$WEST_FP" "$MOUNT_FP" >> "$trust"
done
TLS=(--tls-identity "$DEMO_DIR/etc/tls" --trust "$DEMO_DIR/etc/trust")

say "starting peers east (https://127.0.0.1:17071) and west (https://127.0.0.1:17072)"
$PEER --data "$DEMO_DIR/east" --listen 127.0.0.1:17071 --name east --token-file "$TOKEN" --log-level warn &
pids+=($!)
$PEER --data "$DEMO_DIR/west" --listen 127.0.0.1:17072 --name west --token-file "$TOKEN" --log-level warn &
pids+=($!)
for pid in "${pids[@]}"; do
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "demo: a peer failed to start (see above)" >&2; exit 1; }
    [ -n "$(find "$DEMO_DIR" -maxdepth 3 -name peer.db -newer "$TOKEN" 2>/dev/null | head -1)" ] && break
    sleep 0.1
  done
done
for port in 17071 17072; do
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

say "mirrorfs mount $DEMO_DIR/mnt --peers east,west --local-copy ..."
$MIRRORFS mount "$DEMO_DIR/mnt" --peers east=https://127.0.0.1:17071,west=https://127.0.0.1:17072 \
  --token-file "$TOKEN" --state-dir "$DEMO_DIR/state" --local-copy "$DEMO_DIR/local" "${TLS[@]}"

say "changing files through the mount"
M="$DEMO_DIR/mnt"
mkdir -p "$M/project/src"
echo 'console.log("hello")' > "$M/project/src/main.js"
cp -r scripts "$M/project/"
dd if=/dev/urandom of="$M/project/blob.bin" bs=1M count=8 status=none
mv "$M/project/src/main.js" "$M/project/src/index.js"
chmod 640 "$M/project/src/index.js"
ln -s src/index.js "$M/project/entry"
setfattr -n user.owner -v demo "$M/project/blob.bin"
rm "$M/project/scripts/demo.sh"

say "the same tree on the mount and on both peers"
for d in mnt east west; do
  printf '%-5s ' "$d"
  (cd "$DEMO_DIR/$d" && find . | LC_ALL=C sort | while read -r p; do
     if [ -f "$p" ] && [ ! -L "$p" ]; then md5sum "$p"; else stat -c '%A %N' "$p"; fi
   done | md5sum | cut -c1-32)
done
ls -l "$DEMO_DIR/east/project" "$DEMO_DIR/west/project/src"
getfattr -d "$DEMO_DIR/west/project/blob.bin"

say "mirrorfs status"
$MIRRORFS status "$M"

say "an outage: remount with --ack 1, kill west, keep writing"
$MIRRORFS unmount "$M"
$MIRRORFS mount "$M" --peers east=https://127.0.0.1:17071,west=https://127.0.0.1:17072 \
  --token-file "$TOKEN" --state-dir "$DEMO_DIR/state" --local-copy "$DEMO_DIR/local" --ack 1 --peer-timeout 1000 "${TLS[@]}"
kill -9 "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true
for i in $(seq 1 50); do echo "written while west is down ($i)" > "$M/project/outage-$i.txt"; done
$MIRRORFS status "$M" | grep -E '^(peer|east|west)'

say "west comes back and is caught up from the primary's journal"
$PEER --data "$DEMO_DIR/west" --listen 127.0.0.1:17072 --name west --token-file "$TOKEN" --log-level warn &
pids+=($!)
for _ in $(seq 1 300); do
  $MIRRORFS status "$M" --json | grep -q '"state": "catching-up"\|"state": "down"' || break
  sleep 0.1
done
$MIRRORFS status "$M" | grep -E '^(peer|east|west)'

say "mirrorfs verify (content hashes of both peers and the local copy)"
$MIRRORFS verify "$M"

say "mirrorfs unmount"
$MIRRORFS unmount "$M"
echo "demo files are in $DEMO_DIR"
