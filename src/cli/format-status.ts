import type { ControllerStatus } from '../mount/controller.js';

/** `mirrorfs status` as a table for people (`--json` gives the raw object). */
export function formatStatus(s: ControllerStatus & { mountpoint: string; pid: number }): string {
  const lines = [
    `mount      ${s.mountpoint} (pid ${s.pid})`,
    `identity   ${s.mountId}, epoch ${s.epoch}, last seq ${s.seq}`,
    `ack policy ${s.ackPolicy}; in flight ${s.inFlight}, waiting for order ${s.queued}`,
    `local copy ${s.localCopy ? `${s.localCopy.dir} (${s.localCopy.active ? 'serving reads' : `DISABLED: ${s.localCopy.reason}`})` : 'none (reads from the fastest peer)'}`,
    '',
  ];
  const rows = [['peer', 'address', 'connected', 'p50 µs', 'p99 µs', 'operations', 'bytes', 'in flight', 'failures']];
  for (const p of s.peers) {
    rows.push([p.name, p.url, p.outOfStep ? 'OUT OF STEP' : p.connected ? 'yes' : `no${p.lastError ? ` (${p.lastError.slice(0, 60)})` : ''}`, fmt(p.latencyUsP50), fmt(p.latencyUsP99), String(p.operations), bytes(p.bytes), String(p.inFlight), String(p.failures)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) lines.push(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  for (const p of s.peers) if (p.outOfStep) lines.push('', `${p.name} is out of step ${p.outOfStep}`);
  return `${lines.join('\n')}\n`;
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
