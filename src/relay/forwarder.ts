import type { Logger } from '../log.js';
import { resendClaims } from '../ordering/claims.js';
import { Scheduler } from '../ordering/scheduler.js';
import { MirrorError, isDeterministic } from '../protocol/errors.js';
import type { ManifestEntry, Mutation, PeerStatus, RelayStatus, Request } from '../protocol/ops.js';
import type { CallResult, PeerClient } from '../protocol/peer-client.js';
import type { PeerState, QueuedRow } from '../peer/state.js';

/**
 * A relay's downstream half (Fig. 6 of the patent): every change the relay
 * accepted sits in its durable queue (PeerState `forward`) until the next hop
 * acknowledges it; this sends them on.
 *
 * Order: changes go out in the order the relay accepted them, with the same
 * ordering claims catch-up uses (a change waits for every earlier queued change
 * that touches one of its names; writes to different blocks of one file do not
 * wait for each other), so the next hop applies conflicting changes in the
 * mount's order while unrelated ones travel together (a window of them in
 * flight, which is what makes a long link fast).
 *
 * Exactly once: each change keeps the mount's stamp (mount, epoch, seq), and
 * every hop answers a re-sent seq from its record. So after a restart, a cut
 * link or a dead next hop, everything still queued is simply sent again.
 */

/** Changes in flight to the next hop at once. */
const WINDOW = 64;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;
/** How long a queued change may wait before the loop looks again without being woken. */
const IDLE_POLL_MS = 1000;

export type ForwarderStatus = Omit<RelayStatus, 'next'>;

export class Forwarder {
  private readonly order = new Scheduler();
  private readonly running = new Set<Promise<void>>();
  private loadedThrough = 0;
  /** The epoch of the changes in flight: a change of a newer epoch waits until they are all delivered. */
  private runningEpoch = 0;
  private stopped = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private readonly handshaken = new Set<string>();
  private dequeued: number[] = [];
  private dequeueScheduled = false;
  private drainedWaiters: Array<() => void> = [];
  private dequeueWaiters: Array<() => void> = [];
  private connected = false;
  private forwarded = 0;
  private forwardedBytes = 0;
  private diverged = 0;
  private lastError: string | null = null;

  constructor(
    private readonly state: PeerState,
    private readonly next: PeerClient,
    private readonly log: Logger,
  ) {}

  get to(): string {
    return this.next.url;
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => this.log.error({ err }, 'forwarder stopped by an internal error'));
  }

  /** New changes were queued. */
  kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.kick();
    await this.loop;
    await Promise.allSettled(this.running);
    this.flushDequeued();
  }

  /** Resolves once nothing is queued (everything was acknowledged by the next hop), or rejects after timeoutMs. */
  waitDrained(timeoutMs: number): Promise<void> {
    if (this.state.queueStats().depth === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.drainedWaiters = this.drainedWaiters.filter((w) => w !== done);
        const q = this.state.queueStats();
        reject(new MirrorError('MFS_TIMEOUT', `relay: ${q.depth} changes still queued for ${this.next.url} after ${timeoutMs} ms (${this.lastError ?? 'next hop slow'})`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.drainedWaiters.push(done);
    });
  }

  /**
   * End-to-end commitment through this relay: the lowest seq of the mount
   * queued here or held by a hop after it. Waits (until the deadline) while
   * nothing can have changed for the asker: the queue here still holds a seq
   * at or below what it knows, or (asked on) the next hop has no news.
   */
  async committed(mount: string, seq: number, known: number, deadline: number): Promise<number | null> {
    for (;;) {
      const own = this.state.queueMin(mount);
      const remaining = deadline - Date.now();
      if (own !== null && own <= known && own <= seq) {
        if (remaining <= 0) return own;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, remaining);
          this.dequeueWaiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        continue;
      }
      const next = await this.next.committed(mount, seq, known, Math.max(0, Math.min(10_000, remaining)));
      const nowOwn = this.state.queueMin(mount);
      return minOrNull(nowOwn, next.holdsFrom);
    }
  }

  /**
   * Tell the next hop who owns the chain now (the relay's own handshake passes
   * it on) - but only once every queued change of an older epoch has reached
   * it, since the new epoch fences the old one there. Waits for that (bounded);
   * if they are still queued, the next hop is told later, when the first change
   * of the new epoch goes out (after the older ones: see run). Returns whether
   * the next hop was told now.
   */
  async handshakeWhenOlderDrained(mount: string, epoch: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.state.queuedBefore(epoch) > 0) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.dequeueWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await this.handshake(mount, epoch);
    return true;
  }

  async handshake(mount: string, epoch: number): Promise<void> {
    await this.next.handshake(mount, epoch);
    this.handshaken.add(`${mount}@${epoch}`);
    this.connected = true;
  }

  /** A request for the next hop itself (a pure relay's reads and repairs). */
  call(req: Request, payload?: Buffer, timeoutMs?: number): Promise<CallResult> {
    return this.next.call(req, payload, timeoutMs);
  }

  manifest(opts: { content?: boolean; path?: string }): Promise<ManifestEntry[]> {
    return this.next.manifest(opts);
  }

  /** The next hop's own status (and so on down the chain), bounded. */
  nextStatus(): Promise<PeerStatus> {
    return this.next.status();
  }

  status(): ForwarderStatus {
    const q = this.state.queueStats();
    return {
      to: this.next.url,
      connected: this.connected,
      queue: { depth: q.depth, bytes: q.bytes, oldestAgeMs: q.oldestAtMs === null ? null : Date.now() - q.oldestAtMs },
      forwarded: this.forwarded,
      forwardedBytes: this.forwardedBytes,
      diverged: this.diverged,
      lastError: this.lastError,
    };
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.running.size >= WINDOW) {
        await Promise.race(this.running);
        continue;
      }
      const rows = this.state.queued(this.loadedThrough, WINDOW - this.running.size);
      if (rows.length === 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, IDLE_POLL_MS).unref();
        });
        this.wake = null;
        continue;
      }
      for (const row of rows) {
        // Epochs only grow in the queue (a relay refuses an older epoch once it took a newer
        // one). The next hop is told the newer epoch before its first change, which fences
        // the older one there: so every change of the older epoch goes first.
        if (row.epoch > this.runningEpoch && this.running.size > 0) await Promise.all(this.running);
        if (this.stopped) return;
        this.runningEpoch = row.epoch;
        this.loadedThrough = row.qid;
        const request = JSON.parse(row.request) as Mutation;
        const p: Promise<void> = this.order
          .run(resendClaims(request, row.payload.length), () => this.deliver(row, request))
          .catch((err: unknown) => this.log.error({ err, seq: row.seq }, 'forwarding failed unexpectedly'))
          .finally(() => this.running.delete(p));
        this.running.add(p);
      }
    }
  }

  /** Send one change until the next hop commits an outcome for it (or the relay stops). */
  private async deliver(row: QueuedRow, request: Mutation): Promise<void> {
    let backoff = RETRY_MIN_MS;
    while (!this.stopped) {
      try {
        const key = `${request.mount}@${request.epoch}`;
        if (!this.handshaken.has(key)) await this.handshake(request.mount, request.epoch);
        let got = 'ok';
        try {
          await this.next.call(request, row.payload);
        } catch (err) {
          if (!(err instanceof MirrorError) || err.code !== 'MFS_ERRNO' || !isDeterministic(err.errno)) throw err;
          got = err.errno; // a committed error outcome
        }
        this.connected = true;
        this.acknowledged(row, request, got);
        return;
      } catch (err) {
        const e = err instanceof MirrorError ? err : new MirrorError('MFS_INTERNAL', String(err));
        if (e.code === 'MFS_NO_HANDSHAKE') this.handshaken.clear();
        if (e.code === 'MFS_UNREACHABLE' || e.code === 'MFS_TIMEOUT') this.connected = false;
        const message = e.message; // starts with the code
        if (message !== this.lastError) this.log.warn({ to: this.next.url, seq: row.seq, op: request.op, err: message }, 'forwarding: next hop did not take the change; retrying');
        this.lastError = message;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(RETRY_MAX_MS, backoff * 2);
      }
    }
  }

  private acknowledged(row: QueuedRow, request: Mutation, got: string): void {
    const answered = outcomeKey(row.outcome);
    if (got !== answered) {
      this.diverged++;
      this.log.error(
        { to: this.next.url, mount: row.mount, seq: row.seq, op: request.op, path: 'path' in request ? request.path : request.from, answeredUpstream: answered, nextHop: got },
        'forwarding: the next hop answered differently from this relay; the copies differ (run mirrorfs verify --repair)',
      );
    }
    this.lastError = null;
    this.forwarded++;
    this.forwardedBytes += row.payload.length;
    this.dequeued.push(row.qid);
    if (!this.dequeueScheduled) {
      this.dequeueScheduled = true;
      setImmediate(() => this.flushDequeued());
    }
  }

  private flushDequeued(): void {
    this.dequeueScheduled = false;
    if (this.dequeued.length > 0) {
      const qids = this.dequeued;
      this.dequeued = [];
      this.state.dequeue(qids);
    }
    const progress = this.dequeueWaiters;
    this.dequeueWaiters = [];
    for (const w of progress) w();
    if (this.drainedWaiters.length > 0 && this.state.queueStats().depth === 0) {
      const waiters = this.drainedWaiters;
      this.drainedWaiters = [];
      for (const w of waiters) w();
    }
  }
}

function minOrNull(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

/** 'ok' or the errno of a recorded outcome ({ok, result} or {ok: false, error}). */
function outcomeKey(outcome: string): string {
  const o = JSON.parse(outcome) as { ok: boolean; error?: { errno?: string } };
  return o.ok ? 'ok' : (o.error?.errno ?? 'EIO');
}
