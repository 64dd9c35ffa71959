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
 * every seq up to it is applied here; one still running or still on its way
 * holds it back) and how far they are durable; the durable point is recorded
 * in the peer's state (a flush later makes that record itself durable), so
 * after a crash of the machine the peer knows what it certainly holds.
 */

export interface DurabilityDeps {
  /** Directories whose file systems hold the peer's data and state. */
  dirs: string[];
  intervalMs: number;
  log: Logger;
  /** Where a mount's applied point starts: every seq up to it is recorded here (the state's progress), asked once per mount. */
  contiguousFrom: (mount: string) => number;
  /** Record the durable points (they become durable with the next flush). */
  record: (durable: Map<string, number>) => void;
  /** The durable points recorded before this start. */
  recorded: Map<string, number>;
  /** A flush failed: what was applied may be lost (a writeback error), so the copy is no longer known exact. */
  onFailure: (err: Error) => void;
  /**
   * Told when a flush starts (its answer is handed back when that flush succeeded): the state
   * keeps whether anything not yet flushed may be applied (PeerState.noteUndurable).
   */
  undurable?: { flushStarts: () => number; flushed: (startedAt: number) => void };
  /** syncfs(2); a unit test stands in a failing one. */
  syncfs?: (fd: number) => Promise<void>;
}

export interface FlushStats {
  intervalMs: number;
  flushes: number;
  failures: number;
  /** How long the last flush took, ms (null before the first). */
  lastFlushMs: number | null;
  lastError: string | null;
}

/** One mount's applied point: every seq up to `through` is applied here; `above`: applied seqs past a gap. */
interface Applied {
  through: number;
  above: Set<number>;
}

export class Flusher {
  private readonly fds: number[];
  private readonly applied = new Map<string, Applied>();
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
    for (const [mount, seq] of deps.recorded) this.applied.set(mount, { through: seq, above: new Set() });
    this.stats = { intervalMs: deps.intervalMs, flushes: 0, failures: 0, lastFlushMs: null, lastError: null };
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.dirtySince.size > 0 && !this.running) this.flush().catch(() => undefined); // logged in flushOnce
    }, this.deps.intervalMs);
    this.timer.unref();
  }

  /**
   * A change of this mount was applied (its outcome recorded). The applied point
   * moves only over seqs without a gap below them: one still running, or still on
   * its way (sent beside a later one), holds it back.
   */
  noteApplied(mount: string, seq: number): void {
    const a = this.appliedOf(mount);
    if (seq > a.through) {
      a.above.add(seq);
      while (a.above.delete(a.through + 1)) a.through++;
    }
    if (!this.dirtySince.has(mount)) this.dirtySince.set(mount, Date.now());
  }

  /** Every copy holds this mount's history through seq (the owner settled it, or rebuilt this copy): no gap below it is waited for. */
  noteSettled(mount: string, seq: number): void {
    const a = this.appliedOf(mount);
    if (seq <= a.through) return;
    a.through = seq;
    for (const s of a.above) if (s <= seq) a.above.delete(s);
    while (a.above.delete(a.through + 1)) a.through++;
  }

  private appliedOf(mount: string): Applied {
    let a = this.applied.get(mount);
    if (!a) {
      a = { through: Math.max(this.durable.get(mount) ?? 0, this.deps.contiguousFrom(mount)), above: new Set() };
      this.applied.set(mount, a);
    }
    return a;
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
      const running = this.next.finally(() => this.advance());
      // Its callers hold `next` and see a failure there; this copy of it must not count as unhandled.
      running.catch(() => undefined);
      this.running = running;
      this.next = null;
    } else {
      this.running = null;
    }
  }

  private async flushOnce(): Promise<void> {
    // What this flush covers: everything applied before it starts.
    const targets = new Map<string, number>();
    for (const [mount, a] of this.applied) targets.set(mount, a.through);
    this.dirtySince.clear();
    const undurableAt = this.deps.undurable?.flushStarts();
    const started = performance.now();
    try {
      for (const fd of this.fds) await (this.deps.syncfs ?? syncfs)(fd);
    } catch (err) {
      this.stats.failures++;
      this.stats.lastError = (err as Error).message;
      this.deps.log.error({ err: (err as Error).message }, 'flush to stable storage failed: what was applied may be lost (a write-back error is reported once); this copy serves nothing until its owner repairs it');
      // What it should have covered is still dirty; and a later flush that succeeds cannot vouch for it.
      for (const mount of targets.keys()) if (!this.dirtySince.has(mount)) this.dirtySince.set(mount, Date.now());
      this.deps.onFailure(err as Error);
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
    if (undurableAt !== undefined) this.deps.undurable!.flushed(undurableAt);
  }

  report(mount: string): MountDurability {
    const since = this.dirtySince.get(mount);
    return {
      appliedThrough: this.applied.get(mount)?.through ?? this.durable.get(mount) ?? 0,
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
