import { closeSync, constants, openSync, statSync } from 'node:fs';
import type { Logger } from '../log.js';
import type { MountDurability } from '../protocol/ops.js';
import { syncfs } from '../store/posix.js';

/**
 * Durability on the peer (docs/ARCHITECTURE.md, "Durability on the peer"):
 * a change is answered once it is applied to the file system (the "applied"
 * commit level); this flusher makes what was applied durable in the
 * background, every `intervalMs`, and at once for a barrier (the wire `fsync`
 * an fsync through the mount sends).
 *
 * One flush is one syncfs(2) per file system the peer writes (the data
 * directory's and, when it is elsewhere, the state directory's): it writes out
 * every dirty page, inode and directory entry, and the SQLite WAL, in one call,
 * instead of an fsync per file and directory touched.
 *
 * Group commit: a flush covers only what was applied before it started, so a
 * barrier that arrives while one runs waits for the next, which every barrier
 * arriving meanwhile shares.
 *
 * Per mount the flusher knows how far changes are applied ("applied through":
 * every seq up to it that this peer has seen is applied; one still running
 * holds it back) and how far they are durable; the durable point is recorded
 * in the peer's state (a flush later makes that record itself durable), so
 * after a crash of the machine the peer knows what it certainly holds.
 */

export interface DurabilityDeps {
  /** Directories whose file systems hold the peer's data and state. */
  dirs: string[];
  intervalMs: number;
  log: Logger;
  /** Seqs of this mount still being applied (peer.running), to hold the applied point back. */
  runningSeqs: (mount: string) => Iterable<number>;
  /** Record the durable points (they become durable with the next flush). */
  record: (durable: Map<string, number>) => void;
  /** The durable points recorded before this start. */
  recorded: Map<string, number>;
}

export interface FlushStats {
  intervalMs: number;
  flushes: number;
  failures: number;
  /** How long the last flush took, ms (null before the first). */
  lastFlushMs: number | null;
  lastError: string | null;
}

export class Flusher {
  private readonly fds: number[];
  private readonly applied = new Map<string, number>();
  private readonly durable: Map<string, number>;
  /** Per mount: when the oldest change applied since the last flush started was applied. */
  private readonly dirtySince = new Map<string, number>();
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  readonly stats: FlushStats;

  constructor(private readonly deps: DurabilityDeps) {
    // One descriptor per file system: syncfs flushes the whole file system whatever the fd names.
    const seen = new Set<number>();
    this.fds = [];
    for (const dir of deps.dirs) {
      const dev = statSync(dir).dev;
      if (seen.has(dev)) continue;
      seen.add(dev);
      this.fds.push(openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY));
    }
    this.durable = new Map(deps.recorded);
    for (const [mount, seq] of deps.recorded) this.applied.set(mount, seq);
    this.stats = { intervalMs: deps.intervalMs, flushes: 0, failures: 0, lastFlushMs: null, lastError: null };
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.dirtySince.size > 0 && !this.running) this.flush().catch(() => undefined); // logged in flushOnce
    }, this.deps.intervalMs);
    this.timer.unref();
  }

  /** A change of this mount was applied (its outcome recorded). */
  noteApplied(mount: string, seq: number): void {
    if (seq > (this.applied.get(mount) ?? 0)) this.applied.set(mount, seq);
    if (!this.dirtySince.has(mount)) this.dirtySince.set(mount, Date.now());
  }

  /** Resolves once everything applied before this call is on stable storage. */
  flush(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('the flusher has stopped'));
    if (!this.running) {
      this.running = this.flushOnce().finally(() => this.advance());
      return this.running;
    }
    // The running flush may have started before this caller's change: wait for the next one.
    this.next ??= this.running.catch(() => undefined).then(() => this.flushOnce());
    return this.next;
  }

  private advance(): void {
    if (this.next) {
      this.running = this.next.finally(() => this.advance());
      this.next = null;
    } else {
      this.running = null;
    }
  }

  private async flushOnce(): Promise<void> {
    // What this flush covers: everything applied before it starts.
    const targets = new Map<string, number>();
    for (const [mount, through] of this.applied) targets.set(mount, this.appliedThrough(mount, through));
    this.dirtySince.clear();
    const started = performance.now();
    try {
      for (const fd of this.fds) await syncfs(fd);
    } catch (err) {
      this.stats.failures++;
      this.stats.lastError = (err as Error).message;
      this.deps.log.error({ err: (err as Error).message }, 'flush to stable storage failed: what was applied is not yet durable');
      // What it should have covered is still dirty.
      for (const mount of targets.keys()) if (!this.dirtySince.has(mount)) this.dirtySince.set(mount, Date.now());
      throw err;
    }
    this.stats.flushes++;
    this.stats.lastFlushMs = Math.round((performance.now() - started) * 10) / 10;
    this.stats.lastError = null;
    let moved = false;
    for (const [mount, through] of targets) {
      if (through > (this.durable.get(mount) ?? 0)) {
        this.durable.set(mount, through);
        moved = true;
      }
    }
    if (moved) this.deps.record(this.durable);
  }

  /** The applied point of a mount: its highest applied seq, held below any of its seqs still running. */
  private appliedThrough(mount: string, highest: number): number {
    let through = highest;
    for (const seq of this.deps.runningSeqs(mount)) if (seq <= through) through = seq - 1;
    return through;
  }

  report(mount: string): MountDurability {
    const since = this.dirtySince.get(mount);
    return {
      appliedThrough: this.appliedThrough(mount, this.applied.get(mount) ?? 0),
      durableThrough: this.durable.get(mount) ?? 0,
      oldestUndurableAgeMs: since === undefined ? null : Date.now() - since,
    };
  }

  durableThrough(mount: string): number {
    return this.durable.get(mount) ?? 0;
  }

  /** Every mount this peer has changes of, with where it stands. */
  reportAll(): Record<string, MountDurability> {
    return Object.fromEntries([...this.applied.keys()].map((m) => [m, this.report(m)]));
  }

  /** A last flush (what a clean shutdown relies on); resolves true when it succeeded. */
  async stop(): Promise<boolean> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    let ok = true;
    try {
      await this.running?.catch(() => undefined);
      await this.flush();
    } catch {
      ok = false;
    }
    this.stopped = true;
    for (const fd of this.fds) closeSync(fd);
    return ok;
  }
}
