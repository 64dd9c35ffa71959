#!/usr/bin/env bash
# bench-fs.sh [OUT_DIR] — the file system benchmark of issue 3 (not a test):
# ../shared/bench/fsbench.sh (fio and small-file loops) run in one sitting on
#   local           a plain directory on the root disk
#   mirrorfs        a mirrorfs mount on two loopback peers, commit level applied (the default; no local copy)
#   mirrorfs-sync   the same with --sync (every change durable before it returns)
#   mirrorfs-async  the same with --ack 0 --local-copy (the asynchronous mode)
#   mirrorfs-local  the same as mirrorfs with --local-copy
#   gluster-nowb    GlusterFS replica 2 on loopback, write-behind and flush-behind off
# then medians and ratios to gluster-nowb (../shared/bench/summarize.mjs), the
# peak resident memory (VmHWM) of the mount and peer processes, and the floors of
# this machine in the same sitting (scripts/bench-floors.mjs: what each target would
# need of Gluster for the floor alone to meet it).
#
# Needs root. Knobs: BENCH_ROUNDS (1), BENCH_TARGETS (all six), BENCH_BASE
# (/srv/mirrorfs-bench), SHARED_BENCH (../shared/bench), BENCH_FLOORS (1; 0 skips
# the floors), and fsbench.sh's FSB_* knobs.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=$(realpath -m "${1:-bench-results/fs-$(date -u +%Y%m%dT%H%M%S)}")
ROUNDS=${BENCH_ROUNDS:-1}
TARGETS=${BENCH_TARGETS:-local mirrorfs mirrorfs-sync mirrorfs-async mirrorfs-local gluster-nowb}
BASE=${BENCH_BASE:-/srv/mirrorfs-bench}
SHARED=$(realpath "${SHARED_BENCH:-$REPO/../shared/bench}")
GB_MNT=${GB_MNT:-/mnt/gv}
export GB_MNT

log() { echo "bench-fs: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
[ -x "$SHARED/fsbench.sh" ] || [ -f "$SHARED/fsbench.sh" ] || { log "no fsbench.sh in $SHARED (set SHARED_BENCH)"; exit 1; }
command -v fio >/dev/null || { log "installing fio"; apt-get install -y -q fio >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q fio >/dev/null; }; }
bash scripts/setup.sh
# The mount and the peers run with the V8 flags the installed commands give them (src/cli/node-flags.ts).
SERVICE_FLAGS=$(node -e 'import("./dist/cli/node-flags.js").then((m) => console.log(m.SERVICE_V8_FLAGS.join(" ")))')

mkdir -p "$OUT" "$BASE"
RAW="$OUT/raw.tsv"
: >"$RAW"
TOKEN="$BASE/token"
[ -f "$TOKEN" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOKEN"
# Mutual TLS, as users run it (MIRRORFS_BENCH_CLEARTEXT=1: cleartext, to measure what TLS costs).
{ read -r PEER_TLS; read -r MOUNT_TLS; } < <(node scripts/lib/bench-tls.mjs "$BASE")
SCHEME=https; [ "${MIRRORFS_BENCH_CLEARTEXT:-}" = 1 ] && SCHEME=http
PEER_PIDS=()
MOUNT_PID=
MEM="$OUT/memory.tsv"
: >"$MEM"

has() { case " $TARGETS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
hwm() { awk '/VmHWM/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

start_peers() {
  rm -rf "$BASE/east" "$BASE/west" "$BASE/east.state" "$BASE/west.state" && mkdir -p "$BASE/east" "$BASE/west"
  # shellcheck disable=SC2086
  node $SERVICE_FLAGS dist/cli/mirrorfs-peer.js --data "$BASE/east" --listen 127.0.0.1:27071 --name east --token-file "$TOKEN" $PEER_TLS --log-level warn >>"$OUT/peers.log" 2>&1 &
  PEER_PIDS=($!)
  # shellcheck disable=SC2086
  node $SERVICE_FLAGS dist/cli/mirrorfs-peer.js --data "$BASE/west" --listen 127.0.0.1:27072 --name west --token-file "$TOKEN" $PEER_TLS --log-level warn >>"$OUT/peers.log" 2>&1 &
  PEER_PIDS+=($!)
  for port in 27071 27072; do for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done; done
}

start_mount() { # $1 = extra args
  mkdir -p "$BASE/mnt"
  rm -rf "$BASE/state" "$BASE/local"
  # shellcheck disable=SC2086
  node $SERVICE_FLAGS dist/cli/mirrorfs.js mount "$BASE/mnt" --peers "east=$SCHEME://127.0.0.1:27071,west=$SCHEME://127.0.0.1:27072" \
    --token-file "$TOKEN" --state-dir "$BASE/state" --log-level warn --foreground $MOUNT_TLS $1 >>"$OUT/mount.log" 2>&1 &
  MOUNT_PID=$!
  for _ in $(seq 1 200); do awk -v m="$BASE/mnt" '$2==m{f=1} END{exit !f}' /proc/mounts && return 0; sleep 0.1; done
  log "mount did not come up; see $OUT/mount.log"; exit 1
}

stop_all() { # $1 = label for the memory record
  if [ -n "$MOUNT_PID" ]; then
    printf '%s\tmount\t%s\n' "$1" "$(hwm "$MOUNT_PID")" >>"$MEM"
    kill "$MOUNT_PID" 2>/dev/null || true
    wait "$MOUNT_PID" 2>/dev/null || true
    MOUNT_PID=
  fi
  awk -v m="$BASE/mnt" '$2==m{f=1} END{exit !f}' /proc/mounts && fusermount -u -z "$BASE/mnt" || true
  for pid in "${PEER_PIDS[@]}"; do
    printf '%s\tpeer\t%s\n' "$1" "$(hwm "$pid")" >>"$MEM"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PEER_PIDS=()
}

GLUSTER_UP=0
cleanup() {
  stop_all cleanup >/dev/null 2>&1 || true
  [ "$GLUSTER_UP" = 1 ] && "$SHARED/gluster-down.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel: $(uname -r); cpus: $(nproc); mem: $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "fio: $(fio --version); node: $(node --version); mirrorfs: $(git -C "$REPO" rev-parse --short HEAD)"
  echo "rounds: $ROUNDS; targets: $TARGETS"
} >"$OUT/env.txt"

run_suite() { # $1 = dir, $2 = label, $3 = round
  log "round $3/$ROUNDS: $2"
  bash "$SHARED/fsbench.sh" "$1" "$2" 2>>"$OUT/fsbench.log" | awk -v r="$3" -F'\t' '!/^#/ && NF==4 {print r "\t" $0}' >>"$RAW"
}

for r in $(seq 1 "$ROUNDS"); do
  for t in $TARGETS; do
    case "$t" in
      local) rm -rf "$BASE/localdir" && mkdir -p "$BASE/localdir" && run_suite "$BASE/localdir" local "$r" ;;
      mirrorfs) start_peers; start_mount ""; run_suite "$BASE/mnt" mirrorfs "$r"; stop_all mirrorfs ;;
      mirrorfs-sync) start_peers; start_mount "--sync"; run_suite "$BASE/mnt" mirrorfs-sync "$r"; stop_all mirrorfs-sync ;;
      mirrorfs-async) start_peers; start_mount "--ack 0 --local-copy $BASE/local"; run_suite "$BASE/mnt" mirrorfs-async "$r"; stop_all mirrorfs-async ;;
      mirrorfs-local) start_peers; start_mount "--local-copy $BASE/local"; run_suite "$BASE/mnt" mirrorfs-local "$r"; stop_all mirrorfs-local ;;
      gluster-nowb) GLUSTER_UP=1; GB_WRITE_BEHIND=off bash "$SHARED/gluster-up.sh" >/dev/null; run_suite "$GB_MNT" gluster-nowb "$r" ;;
      *) log "unknown target $t"; exit 2 ;;
    esac
  done
done

baseline=gluster-nowb
has gluster-nowb || baseline=local
has "$baseline" || baseline=${TARGETS%% *}
{
  node "$SHARED/summarize.mjs" "$RAW" "$baseline"
  echo
  echo "peak resident memory (VmHWM, MiB), max over rounds:"
  echo
  echo "| target | mount | peer (max of two) |"
  echo "|---|---|---|"
  node -e '
    const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").filter(Boolean).map((l) => l.split("\t"));
    const peak = {};
    for (const [label, kind, kib] of rows) {
      if (label === "cleanup") continue;
      peak[label] ??= { mount: 0, peer: 0 };
      peak[label][kind] = Math.max(peak[label][kind], Number(kib));
    }
    for (const [label, p] of Object.entries(peak)) console.log(`| ${label} | ${Math.round(p.mount / 1024)} | ${Math.round(p.peer / 1024)} |`);
  ' "$MEM"
  if [ "${BENCH_FLOORS:-1}" = 1 ]; then
    echo
    log "floors (scripts/bench-floors.mjs)"
    node scripts/bench-floors.mjs --dir "$BASE" 2>>"$OUT/fsbench.log" || log "the floors failed (see $OUT/fsbench.log)"
  fi
} | tee "$OUT/summary.md"
