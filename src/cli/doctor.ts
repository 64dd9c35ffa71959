import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { loadFuse } from '../mount/fuse/fuse-binding.js';
import { checkMountpoint } from '../mount/control/mountpoint.js';
import type { PeerSpec } from '../mount/peers/config.js';
import { PeerClient } from '../client/peer-client.js';
import { MirrorError } from '../protocol/errors.js';
import type { PeerStatus } from '../protocol/ops.js';
import { refusalCode, type RefusalCode } from '../refusal.js';

/**
 * `mirrorfs doctor`: everything a mount needs, checked without mounting, each
 * problem printed with its fix. Checks: FUSE (/dev/fuse, the library,
 * fusermount), the mount point, then for each peer: reachable (and whether its
 * certificate and our token are accepted), round-trip latency, clock skew,
 * free space, and durability (flushes that succeed; data on a disk, not in memory; not restarted uncleanly).
 */
export interface Finding {
  check: string;
  ok: boolean;
  /** What was found (ok) or what is wrong (not ok). */
  detail: string;
  /** What to do about it (problems only). */
  fix?: string;
}

/** Bounds of the checks on peers. */
const PEER_TIMEOUT_MS = 3000;
const PINGS = 5;
/** Past this the peers' clocks disagree with ours enough to confuse logs and certificates. */
export const MAX_SKEW_MS = 1000;
const MIN_FREE_BYTES = 1024 ** 3;
const MIN_FREE_RATIO = 0.05;
/** File systems that do not survive a reboot: a peer on one promises nothing durable. */
const VOLATILE_FS = new Set(['tmpfs', 'ramfs']);

export function checkFuse(): Finding[] {
  const out: Finding[] = [];
  try {
    const st = statSync('/dev/fuse');
    if (!st.isCharacterDevice()) throw new Error('/dev/fuse is not a character device');
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
    out.push({ check: 'FUSE device', ok: true, detail: '/dev/fuse is usable' });
  } catch (err) {
    out.push({ check: 'FUSE device', ok: false, detail: (err as Error).message, fix: 'load the module (modprobe fuse), or run where /dev/fuse exists and this user may open it (root)' });
  }
  try {
    loadFuse();
    out.push({ check: 'FUSE library', ok: true, detail: 'fuse-native and libfuse3.so.3 load' });
  } catch (err) {
    out.push({ check: 'FUSE library', ok: false, detail: (err as Error).message, fix: 'apt-get install -y libfuse3-dev fuse3, then node scripts/patch-fuse-native.mjs; or run scripts/setup.sh' });
  }
  const fusermount = (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).map((d) => join(d, 'fusermount')).find((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  out.push(fusermount
    ? { check: 'fusermount', ok: true, detail: fusermount }
    : { check: 'fusermount', ok: false, detail: 'fusermount is not on the PATH (needed to clear a dead mount)', fix: 'apt-get install -y fuse' });
  return out;
}

export function checkMountPoint(mountpoint: string, mountedBy: number | null = null): Finding {
  if (mountedBy !== null) return { check: `mount point ${mountpoint}`, ok: true, detail: `mounted now by mirrorfs (pid ${mountedBy}); the checks below are of its peers` };
  try {
    checkMountpoint(mountpoint);
    return { check: `mount point ${mountpoint}`, ok: true, detail: 'an empty directory, not mounted' };
  } catch (err) {
    return { check: `mount point ${mountpoint}`, ok: false, detail: (err as Error).message, fix: mountPointFix(refusalCode(err), mountpoint) };
  }
}

function mountPointFix(code: RefusalCode | undefined, point: string): string {
  switch (code) {
    case 'MOUNTPOINT_MISSING':
      return `mkdir -p ${point}`;
    case 'MOUNTPOINT_DEAD':
    case 'MOUNTPOINT_MOUNTED':
      return `mirrorfs unmount ${point}`;
    case 'MOUNTPOINT_NOT_EMPTY':
      return 'mount on an empty directory (files under it would be hidden), or move them away';
    case 'MOUNTPOINT_NOT_DIR':
      return 'give a directory';
    default:
      return 'see the message';
  }
}

/** Check one peer: reachability, latency, clock, space, durability. */
export async function checkPeer(spec: PeerSpec): Promise<Finding[]> {
  const where = `peer ${spec.name} (${spec.url})`;
  const client = new PeerClient(spec.url, { name: spec.name, token: spec.token, transport: spec.transport, timeoutMs: PEER_TIMEOUT_MS });
  try {
    let status: PeerStatus;
    let skewMs = 0;
    const rtts: number[] = [];
    try {
      for (let i = 0; i < PINGS; i++) {
        const sent = Date.now();
        const t0 = performance.now();
        status = await client.status();
        const rtt = performance.now() - t0;
        rtts.push(rtt);
        // The peer read its clock about half way through the round trip (a peer older than this field cannot say).
        skewMs = typeof status.nowMs === 'number' ? status.nowMs - (sent + rtt / 2) : NaN;
      }
    } catch (err) {
      return [{ check: where, ok: false, detail: (err as Error).message, fix: peerFix(err) }];
    }
    status = status!;
    const out: Finding[] = [];
    rtts.sort((a, b) => a - b);
    out.push({ check: `${where} reachable`, ok: true, detail: `answers as ${status.name} (id ${status.id}), round trip p50 ${rtts[Math.floor(rtts.length / 2)]!.toFixed(2)} ms, max ${rtts.at(-1)!.toFixed(2)} ms; epoch ${status.epoch}${status.owner ? `, owned by ${status.owner}` : ', not owned yet'}` });
    if (Number.isNaN(skewMs)) out.push({ check: `${where} clock`, ok: true, detail: 'not checked: the peer runs an older mirrorfs that does not report its clock' });
    else out.push(Math.abs(skewMs) <= MAX_SKEW_MS
      ? { check: `${where} clock`, ok: true, detail: `skew ${formatSkew(skewMs)} against this host` }
      : { check: `${where} clock`, ok: false, detail: `its clock is ${formatSkew(skewMs)} off this host's (more than ${MAX_SKEW_MS / 1000} s): log times disagree, and certificates may look not yet valid or expired. Leases are safe either way (each peer measures them with its own monotonic clock)`, fix: 'run NTP (chrony or systemd-timesyncd) on this host and on the peer' });
    const known = status.durability === 'applied-then-flushed' || status.durability === 'queued-durably';
    const flush = status.flush;
    if (!known || !flush) {
      out.push({ check: `${where} durability`, ok: false, detail: `durability is ${status.durability}`, fix: 'run the same mirrorfs version on the peer as here' });
    } else if (status.disk && VOLATILE_FS.has(status.disk.fsType)) {
      out.push({ check: `${where} durability`, ok: false, detail: `its data directory ${status.dataDir} is on ${status.disk.fsType}: a flush reaches memory only, and a reboot loses every copy it holds`, fix: 'put the peer\'s --data on a disk-backed file system' });
    } else if (flush.lastError !== null) {
      out.push({ check: `${where} durability`, ok: false, detail: `its last flush to stable storage failed (${flush.lastError}; ${flush.failures} failures): what it applied is not durable`, fix: 'check the peer\'s disk and its log (dmesg for I/O errors)' });
    } else {
      out.push({ check: `${where} durability`, ok: true, detail: status.disk ? `changes applied before acknowledgement, flushed every ${flush.intervalMs} ms (last flush ${flush.lastFlushMs ?? '-'} ms), data on ${status.disk.fsType}` : 'a pure relay: queue in SQLite, synchronous=FULL' });
    }
    if (status.unclean) {
      out.push({ check: `${where} exact`, ok: false, detail: `it restarted at ${status.unclean.since} after its machine went down with changes not yet flushed: it serves nothing until repaired`, fix: 'mount again (the mount repairs it from a clean peer with a verified resync)' });
    }
    if (status.disk) {
      const { freeBytes, totalBytes } = status.disk;
      const low = freeBytes < MIN_FREE_BYTES || freeBytes < totalBytes * MIN_FREE_RATIO;
      out.push(low
        ? { check: `${where} free space`, ok: false, detail: `${gib(freeBytes)} free of ${gib(totalBytes)}: changes will fail with ENOSPC soon`, fix: `free space on the peer's data file system, or move --data to a larger one (want at least ${gib(MIN_FREE_BYTES)} and ${MIN_FREE_RATIO * 100}% free)` }
        : { check: `${where} free space`, ok: true, detail: `${gib(freeBytes)} free of ${gib(totalBytes)}` });
    }
    if (status.relay && !status.relay.connected && status.relay.queue.depth > 0) {
      out.push({ check: `${where} next hop`, ok: false, detail: `a relay whose next hop ${status.relay.to} does not answer; ${status.relay.queue.depth} changes queued: ${status.relay.lastError ?? ''}`, fix: 'bring the next hop back, or check the relay\'s --forward-to' });
    }
    return out;
  } finally {
    await client.close();
  }
}

function peerFix(err: unknown): string {
  if (!(err instanceof MirrorError)) return 'see the message';
  switch (err.code) {
    case 'MFS_UNREACHABLE':
    case 'MFS_TIMEOUT':
      return 'start mirrorfs-peer there, or check the address in --peers and the firewall';
    case 'MFS_UNTRUSTED':
      return 'add the peer\'s fingerprint (mirrorfs-peer init prints it) to this host\'s trust file, if the key is really the peer\'s';
    case 'MFS_AUTH_CERT':
      return 'add this host\'s fingerprint (mirrorfs init prints it) to the peer\'s trust file';
    case 'MFS_AUTH':
      return 'use the token the peer expects (--token-file)';
    case 'MFS_PROTOCOL_MISMATCH':
      return 'run the same mirrorfs version on this host and the peer';
    default:
      return 'see the message';
  }
}

function formatSkew(ms: number): string {
  const abs = Math.abs(ms);
  const text = abs >= 1000 ? `${(abs / 1000).toFixed(1)} s` : `${Math.round(abs)} ms`;
  return `${ms >= 0 ? '+' : '-'}${text}`;
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** The report as the CLI prints it. */
export function formatFindings(findings: Finding[]): string {
  const lines: string[] = [];
  for (const f of findings) {
    lines.push(`${f.ok ? 'ok   ' : 'FAIL '} ${f.check}: ${f.detail}`);
    if (!f.ok && f.fix) lines.push(`      fix: ${f.fix}`);
  }
  const problems = findings.filter((f) => !f.ok).length;
  lines.push(problems === 0 ? '\nno problems found' : `\n${problems} problem${problems === 1 ? '' : 's'} found`);
  return `${lines.join('\n')}\n`;
}
