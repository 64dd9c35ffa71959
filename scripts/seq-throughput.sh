#!/usr/bin/env bash
# Sequential throughput through a mount on two loopback peers (not a test): dd of
# SIZE_MIB MiB in 1 MiB blocks, written with an fsync at the end, then read back after
# dropping the page cache; ROUNDS times. Needs root (drop_caches) and a build (npm run build).
#   bash scripts/seq-throughput.sh [SIZE_MIB] [ROUNDS]
set -euo pipefail
SIZE_MIB=${1:-512}
ROUNDS=${2:-2}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE="$(mktemp -d /tmp/mirrorfs-seq-XXXXXX)"
PIDS=()
cleanup() {
  node "$ROOT/dist/cli/mirrorfs.js" unmount "$BASE/m" >/dev/null 2>&1 || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$BASE"
}
trap cleanup EXIT
mkdir -p "$BASE"/{east,west,m,state}
echo "seq-throughput-token-0123456789" > "$BASE/token"
for i in 0 1; do
  name=$([ $i -eq 0 ] && echo east || echo west)
  node "$ROOT/dist/cli/mirrorfs-peer.js" --data "$BASE/$name" --listen "127.0.0.1:$((17301 + i))" --name "$name" \
    --token-file "$BASE/token" --insecure-cleartext --log-level warn > "$BASE/$name.log" 2>&1 &
  PIDS+=($!)
done
for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/17302) 2>/dev/null && break; sleep 0.1; done
node "$ROOT/dist/cli/mirrorfs.js" mount "$BASE/m" --peers east=http://127.0.0.1:17301,west=http://127.0.0.1:17302 \
  --token-file "$BASE/token" --state-dir "$BASE/state" --insecure-cleartext --log-level warn
rate() { tail -1 | awk '{print $(NF-1), $NF}'; }
echo "| round | write ${SIZE_MIB} MiB (1 MiB blocks, fsync) | read back (cold) |"
echo "| --- | ---: | ---: |"
for r in $(seq "$ROUNDS"); do
  rm -f "$BASE/m/f"
  w=$(dd if=/dev/zero of="$BASE/m/f" bs=1M count="$SIZE_MIB" conv=fsync 2>&1 | rate)
  echo 3 > /proc/sys/vm/drop_caches
  rd=$(dd if="$BASE/m/f" of=/dev/null bs=1M 2>&1 | rate)
  echo "| $r | $w | $rd |"
done
