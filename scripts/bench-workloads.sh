#!/usr/bin/env bash
# bench-workloads.sh [OUT_DIR] — real workloads of issue 21 (not a test), timed in one
# sitting on each target:
#   local            a plain directory on the root disk
#   bindfs           a bare FUSE passthrough of a plain directory (Debian's bindfs)
#   mirrorfs         a mirrorfs mount on two loopback peers, commit level applied (default)
#   mirrorfs-sync    the same with --sync
#   gluster-nowb     GlusterFS replica 2 on loopback, write-behind and flush-behind off
# Workloads, each timed alone (seconds, wall clock):
#   tar-x            extract a tar of /usr/share/man (about 24,000 entries) into the target
#   compare          diff -r of the extracted tree against the source
#   git-clone        git clone (file://, no hard links) of a local repository
#   rm-rf            rm -rf of everything written
# Prints a table with the seconds and the ratios to gluster-nowb and to bindfs.
#
# Needs root. Knobs: WL_TARGETS (all five), WL_TREE (/usr/share/man), WL_REPO (this
# repository), BENCH_BASE (/srv/mirrorfs-bench), SHARED_BENCH (../shared/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=$(realpath -m "${1:-bench-results/workloads-$(date -u +%Y%m%dT%H%M%S)}")
TARGETS=${WL_TARGETS:-local bindfs mirrorfs mirrorfs-sync gluster-nowb}
TREE=${WL_TREE:-/usr/share/man}
SRC_REPO=${WL_REPO:-$REPO}
BASE=${BENCH_BASE:-/srv/mirrorfs-bench}
SHARED=$(realpath "${SHARED_BENCH:-$REPO/../shared/bench}")
GB_MNT=${GB_MNT:-/mnt/gv}
export GB_MNT

log() { echo "bench-workloads: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
has() { case " $TARGETS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if has bindfs && ! command -v bindfs >/dev/null; then
  log "installing bindfs"
  apt-get install -y -q bindfs >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q bindfs >/dev/null; }
fi
[ -d dist ] && [ -f native/posix/build/Release/posix.node ] || bash scripts/setup.sh
SERVICE_FLAGS=$(node -e 'import("./dist/cli/node-flags.js").then((m) => console.log(m.SERVICE_V8_FLAGS.join(" ")))')

mkdir -p "$OUT" "$BASE"
RAW="$OUT/raw.tsv"
: >"$RAW"
TAR="$BASE/tree.tar"
[ -f "$TAR" ] || tar -C "$(dirname "$TREE")" -cf "$TAR" "$(basename "$TREE")"
log "tree: $TREE ($(tar -tf "$TAR" | wc -l) entries, $(du -sh "$TAR" | cut -f1)); repository: $SRC_REPO ($(git -C "$SRC_REPO" rev-list --count HEAD) commits)"
TOKEN="$BASE/token"
[ -f "$TOKEN" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOKEN"
{ read -r PEER_TLS; read -r MOUNT_TLS; } < <(node scripts/lib/bench-tls.mjs "$BASE")
PIDS=()

start_mirrorfs() { # $1 = extra mount args
  rm -rf "$BASE/east" "$BASE/west" "$BASE/east.state" "$BASE/west.state" "$BASE/state" && mkdir -p "$BASE/east" "$BASE/west" "$BASE/mnt"
  # shellcheck disable=SC2086
  node $SERVICE_FLAGS dist/cli/mirrorfs-peer.js --data "$BASE/east" --listen 127.0.0.1:27071 --name east --token-file "$TOKEN" $PEER_TLS --log-level warn >>"$OUT/peers.log" 2>&1 &
  PIDS+=($!)
  # shellcheck disable=SC2086
  node $SERVICE_FLAGS dist/cli/mirrorfs-peer.js --data "$BASE/west" --listen 127.0.0.1:27072 --name west --token-file "$TOKEN" $PEER_TLS --log-level warn >>"$OUT/peers.log" 2>&1 &
  PIDS+=($!)
  for port in 27071 27072; do for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done; done
  # shellcheck disable=SC2086
  node $SERVICE_FLAGS dist/cli/mirrorfs.js mount "$BASE/mnt" --peers "east=https://127.0.0.1:27071,west=https://127.0.0.1:27072" \
    --token-file "$TOKEN" --state-dir "$BASE/state" --log-level warn --foreground $MOUNT_TLS $1 >>"$OUT/mount.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 200); do awk -v m="$BASE/mnt" '$2==m{f=1} END{exit !f}' /proc/mounts && return 0; sleep 0.1; done
  log "mount did not come up; see $OUT/mount.log"; exit 1
}

stop_all() {
  awk -v m="$BASE/mnt" '$2==m{f=1} END{exit !f}' /proc/mounts && { umount "$BASE/mnt" 2>/dev/null || fusermount -u -z "$BASE/mnt"; } || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}

GLUSTER_UP=0
cleanup() {
  stop_all >/dev/null 2>&1 || true
  [ "$GLUSTER_UP" = 1 ] && "$SHARED/gluster-down.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT

timed() { # $1 = target, $2 = workload, rest = command
  local t=$1 w=$2
  shift 2
  local start end
  start=$(date +%s.%N)
  "$@" >>"$OUT/commands.log" 2>&1 || { log "$t $w failed (see $OUT/commands.log)"; printf '%s\t%s\tfailed\n' "$t" "$w" >>"$RAW"; return 0; }
  end=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  printf '%s\t%s\t%s\n' "$t" "$w" "$secs" >>"$RAW"
  log "$t $w $secs s"
}

run_workloads() { # $1 = target label, $2 = directory
  local d=$2
  timed "$1" tar-x tar -C "$d" -xf "$TAR"
  timed "$1" compare diff -r "$TREE" "$d/$(basename "$TREE")"
  timed "$1" git-clone git clone -q --no-hardlinks "file://$SRC_REPO" "$d/repo"
  timed "$1" rm-rf rm -rf "$d/$(basename "$TREE")" "$d/repo"
}

for t in $TARGETS; do
  log "target $t"
  case "$t" in
    local) rm -rf "$BASE/plain" && mkdir -p "$BASE/plain" && run_workloads local "$BASE/plain" ;;
    bindfs)
      rm -rf "$BASE/plain" "$BASE/bind" && mkdir -p "$BASE/plain" "$BASE/bind"
      bindfs "$BASE/plain" "$BASE/bind"
      run_workloads bindfs "$BASE/bind"
      umount "$BASE/bind" ;;
    mirrorfs) start_mirrorfs ""; run_workloads mirrorfs "$BASE/mnt"; stop_all ;;
    mirrorfs-sync) start_mirrorfs "--sync"; run_workloads mirrorfs-sync "$BASE/mnt"; stop_all ;;
    gluster-nowb)
      GLUSTER_UP=1; GB_WRITE_BEHIND=off bash "$SHARED/gluster-up.sh" >/dev/null
      rm -rf "${GB_MNT:?}"/* 2>/dev/null || true
      run_workloads gluster-nowb "$GB_MNT" ;;
    *) log "unknown target $t"; exit 2 ;;
  esac
done

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); mirrorfs $(git -C "$REPO" rev-parse --short HEAD); $(nproc) cpus"
  echo
  node -e '
    const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split("\t"));
    const targets = [...new Set(rows.map((r) => r[0]))];
    const works = [...new Set(rows.map((r) => r[1]))];
    const v = (t, w) => { const r = rows.find((x) => x[0] === t && x[1] === w); return r && r[2] !== "failed" ? Number(r[2]) : null; };
    const ratio = (t, base, w) => { const a = v(t, w), b = v(base, w); return a !== null && b ? (a / b).toFixed(2) : "-"; };
    const cols = targets.filter((t) => t.startsWith("mirrorfs"));
    const head = ["workload (s)", ...targets, ...cols.flatMap((c) => [`${c}/gluster-nowb`, `${c}/bindfs`])];
    console.log(`| ${head.join(" | ")} |`);
    console.log(`|${head.map(() => "---").join("|")}|`);
    for (const w of works) console.log(`| ${[w, ...targets.map((t) => v(t, w) ?? "failed"), ...cols.flatMap((c) => [ratio(c, "gluster-nowb", w), ratio(c, "bindfs", w)])].join(" | ")} |`);
  ' "$RAW"
} | tee "$OUT/summary.md"
