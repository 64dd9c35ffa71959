import { printable } from '../protocol/byte-names.js';
import type { ControllerStatus } from '../mount/fanout/mirror.js';
import type { RouteHop } from '../mount/fanout/route-status.js';
import type { MemberStatus } from '../mount/peers/member.js';
import type { VerifyReport } from '../mount/control/verify.js';

/** `mirrorfs status` as a table for people (`--json` gives the raw object). */
export function formatStatus(s: ControllerStatus & { mountpoint: string; pid: number; routes?: Record<string, RouteHop[] | { error: string }> }): string {
  const lines = [
    `mount      ${s.mountpoint} (pid ${s.pid})`,
    `identity   ${s.mountId}, epoch ${s.epoch}, last seq ${s.seq}`,
    `ack policy ${s.ackPolicy} (${s.requiredAcks} of ${s.peers.length} peers must commit); in flight ${s.inFlight}, waiting for order ${s.queued}`,
    `ack mode   ${s.ackMode}${s.endToEnd ? ` (${s.endToEnd.executing} changes executing, ${s.endToEnd.committed} committed end to end)` : ''}`,
    `commit     ${describeLevel(s)}; fsync barriers ${s.barriers.sent}${s.barriers.failed ? `, ${s.barriers.failed} FAILED` : ''}${s.barriers.waiting ? `, ${s.barriers.waiting} waiting` : ''}`,
    ...(s.lag ? [`async lag  limit ${s.lag.max.ops} changes, ${bytes(s.lag.max.bytes)}, ${s.lag.max.ageMs / 1000} s; ${s.lag.waiting} changes waiting for the peers`] : []),
    ...(s.fenced ? [`FENCED     ${s.fenced}`] : []),
    `local copy ${s.localCopy ? `${s.localCopy.dir} (${s.localCopy.active ? 'serving reads' : `DISABLED: ${s.localCopy.reason}`})` : 'none (reads from the fastest peer)'}`,
    '',
  ];
  const rows = [['peer', 'address', 'state', 'connected', 'applied', 'durable', 'p50 µs', 'p99 µs', 'operations', 'bytes', 'in flight', 'failures']];
  for (const p of s.peers) {
    const d = p.durability;
    const durable = d ? `${d.durableThrough}${d.oldestUndurableAgeMs !== null ? ` (+${d.appliedThrough - d.durableThrough}, ${d.oldestUndurableAgeMs} ms)` : ''}` : '-';
    rows.push([p.name, p.url.includes('|') ? `${p.route} (1 of ${p.url.split('|').length} routes)` : p.url, p.unclean ? 'UNCLEAN' : describeState(p), p.connected ? 'yes' : 'no', d ? String(d.appliedThrough) : '-', durable, fmt(p.latencyUsP50), fmt(p.latencyUsP99), String(p.operations), bytes(p.bytes), String(p.inFlight), String(p.failures)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) lines.push(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  for (const p of s.peers) if (p.behind) lines.push('', `${p.name}: ${p.behind.reason}`);
  for (const [name, hops] of Object.entries(s.routes ?? {})) {
    if ('error' in hops) lines.push('', `${name} route: status unavailable (${hops.error})`);
    else if (hops.some((h) => h.relay)) lines.push('', `${name} route: ${hops.map(describeHop).join(' -> ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The commit level, as a user reads it. */
function describeLevel(s: ControllerStatus): string {
  if (s.lag) return 'asynchronous (--ack 0): a call returns once the local copy applied it and the journal holds it; fsync waits for every peer';
  if (s.commitLevel === 'sync') return 'sync: every change durable on the peers before it returns';
  if (s.commitLevel === 'dirsync') return 'dirsync: changes applied on the peers before they return, changes to names durable; fsync makes the rest durable';
  return 'applied: changes applied on the peers before they return; fsync makes them durable';
}

/** in sync / catching up (behind, rate, ETA) / down since. */
function describeState(p: MemberStatus): string {
  if (!p.behind) return 'in sync';
  const lag = `${p.behind.ops} ops, ${bytes(p.behind.bytes)} behind`;
  if (p.state === 'down') return `down since ${p.behind.since} (${lag})`;
  const rate = p.behind.opsPerS !== null ? `, ${p.behind.opsPerS} ops/s, ${bytes(p.behind.bytesPerS ?? 0)}/s, ETA ${p.behind.etaS ?? '?'} s` : '';
  return `catching up (${lag}${rate})`;
}

/** A relay with its queue for the next hop, or the mirror at the end. */
function describeHop(h: RouteHop): string {
  if (!h.relay) return h.lastError ? `${h.name} (${h.lastError})` : h.name;
  const age = h.oldestAgeMs === null ? '' : `, oldest ${h.oldestAgeMs} ms`;
  const trouble = h.lastError ? `, ${h.connected ? '' : 'next hop down: '}${h.lastError}` : '';
  const diverged = h.diverged > 0 ? `, ${h.diverged} DIVERGED` : '';
  return `${h.name} [queue ${h.queueDepth}${age}${trouble}${diverged}]`;
}

function fmt(v: number | null): string {
  return v === null ? '-' : String(v);
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** `mirrorfs verify` for people. */
export function formatVerify(r: VerifyReport): string {
  const lines = [`compared ${r.copies.join(', ')}: ${r.entries} entries${r.from !== undefined ? ` after ${printable(r.from)} (resumed)` : ''} in ${r.seconds.toFixed(1)} s`];
  for (const s of r.skipped) lines.push(`skipped ${s}`);
  for (const d of r.differences) {
    // Names that are not UTF-8 show their odd bytes as \xNN (--json keeps the wire form).
    lines.push(`${d.path === '' ? '(root)' : printable(d.path)}:`);
    for (const [copy, what] of Object.entries(d.copies)) lines.push(`  ${copy}: ${printable(what)}`);
    if (d.repairedFrom) lines.push(`  repaired from ${d.repairedFrom}`);
    if (d.unresolved) lines.push(`  NOT repaired: ${d.unresolved}`);
  }
  const remaining = r.differences.filter((d) => !d.repairedFrom).length;
  lines.push(r.differences.length === 0 ? 'the copies are equal' : `${r.differences.length} difference(s), ${r.repaired} repaired, ${remaining} remaining`);
  return `${lines.join('\n')}\n`;
}
