/**
 * The asynchronous mode's backlog (`--ack 0`): changes the call was answered
 * for (the primary's journal holds them) that some peer has not yet applied.
 * Kept in memory for the admission check (`--max-lag`, on every change) and
 * the fsync barrier; the journal is what survives a crash.
 */

/** The most the peers may lag before a change waits: any of changes, bytes, age. */
export interface MaxLag {
  ops: number;
  bytes: number;
  ageMs: number;
}

export const DEFAULT_MAX_LAG: MaxLag = { ops: 10_000, bytes: 256 * 1024 * 1024, ageMs: 30_000 };

/** One peer's lag: changes and bytes it lacks, and how long the oldest has waited. */
export interface PeerLag {
  ops: number;
  bytes: number;
  oldestAgeMs: number | null;
}

interface Pending {
  bytes: number;
  at: number;
  /** Peers that still lack it. */
  left: Set<string>;
}

export class Backlog {
  /** By seq, in insertion (= seq) order: the first entries are the oldest. */
  private readonly pending = new Map<number, Pending>();
  private readonly perPeer = new Map<string, { ops: number; bytes: number }>();
  private waiters: Array<() => void> = [];

  constructor(private readonly peers: readonly string[], readonly max: MaxLag) {
    for (const p of peers) this.perPeer.set(p, { ops: 0, bytes: 0 });
  }

  /** A change every peer lacks (journaled for all of them). */
  add(seq: number, bytes: number): void {
    this.pending.set(seq, { bytes, at: Date.now(), left: new Set(this.peers) });
    for (const p of this.peers) {
      const c = this.perPeer.get(p)!;
      c.ops++;
      c.bytes += bytes;
    }
  }

  /** The peer has the change now. */
  delivered(peer: string, seq: number): void {
    const entry = this.pending.get(seq);
    if (!entry || !entry.left.delete(peer)) return;
    const c = this.perPeer.get(peer)!;
    c.ops--;
    c.bytes -= entry.bytes;
    if (entry.left.size === 0) this.pending.delete(seq);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  lagOf(peer: string): PeerLag {
    const c = this.perPeer.get(peer) ?? { ops: 0, bytes: 0 };
    let oldest: number | null = null;
    for (const entry of this.pending.values()) {
      if (entry.left.has(peer)) {
        oldest = entry.at;
        break;
      }
    }
    return { ops: c.ops, bytes: c.bytes, oldestAgeMs: oldest === null ? null : Date.now() - oldest };
  }

  /** Why a new change must wait (a peer past --max-lag), or null. */
  overLimit(): string | null {
    for (const p of this.peers) {
      const lag = this.lagOf(p);
      if (lag.ops >= this.max.ops) return `${p} lacks ${lag.ops} changes (--max-lag ${this.max.ops} changes)`;
      if (lag.bytes >= this.max.bytes) return `${p} lacks ${lag.bytes} bytes (--max-lag ${this.max.bytes} bytes)`;
      if (lag.oldestAgeMs !== null && lag.oldestAgeMs >= this.max.ageMs) return `${p}'s oldest missing change is ${Math.round(lag.oldestAgeMs / 1000)} s old (--max-lag ${this.max.ageMs / 1000} s)`;
    }
    return null;
  }

  /** True when no peer lacks any change up to seq. */
  settledThrough(seq: number): boolean {
    const first = this.pending.keys().next();
    return first.done === true || first.value > seq;
  }

  get empty(): boolean {
    return this.pending.size === 0;
  }

  /** Resolves at the next delivery, or after ms. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const waiters = this.waiters;
      function done() {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      this.waiters.push(done);
    });
  }
}

/** Parse --max-lag: a comma-separated list of N (changes), N with KiB/MiB/GiB (bytes), N with s or ms (age). */
export function parseMaxLag(text: string): MaxLag {
  const out: MaxLag = { ...DEFAULT_MAX_LAG };
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d+(?:\.\d+)?)\s*(|kib|mib|gib|ms|s)$/i.exec(part);
    if (!m) throw new Error(`--max-lag ${JSON.stringify(part)}: give changes (10000), bytes (256MiB) or an age (30s), comma-separated`);
    const n = Number(m[1]);
    const unit = m[2]!.toLowerCase();
    if (unit === '') {
      if (!Number.isInteger(n) || n < 1) throw new Error(`--max-lag ${part}: a number of changes is a whole number, at least 1`);
      out.ops = n;
    } else if (unit === 'ms' || unit === 's') {
      out.ageMs = unit === 's' ? n * 1000 : n;
      if (out.ageMs < 100) throw new Error(`--max-lag ${part}: an age of at least 100 ms`);
    } else {
      out.bytes = Math.round(n * 1024 ** { kib: 1, mib: 2, gib: 3 }[unit as 'kib' | 'mib' | 'gib']);
      if (out.bytes < 1024 * 1024) throw new Error(`--max-lag ${part}: at least 1MiB`);
    }
  }
  return out;
}
