import { AssertionFailure, assert } from '../assert.js';
import type { Logger } from '../log.js';
import { resendClaims } from '../ordering/claims.js';
import { Scheduler } from '../ordering/scheduler.js';
import { MirrorError, isFenced, isNoAnswer, isRecordedOutcome } from '../protocol/errors.js';
import { pathOf, type ManifestEntry, type Mutation, type PeerStatus, type RelayStatus, type Request } from '../protocol/ops.js';
import type { CallResult, PeerClient } from '../client/peer-client.js';
import type { QueuedRow, RelayQueue } from './queue.js';

/**
 * A relay's downstream half (Fig. 6 of the patent): every change the relay
 * accepted sits in its durable queue (relay/queue.ts) until the next hop
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

/** Refusals that a re-send cannot change. */
const PERMANENT: ReadonlySet<string> = new Set(['MFS_FENCED', 'MFS_NOT_OWNER', 'MFS_SEQ_CONFLICT', 'MFS_SEQ_FORGOTTEN', 'MFS_MALFORMED']);
/** Bound on asking the next hop for its status (status pages must not hang on a dead link). */
export const NEXT_STATUS_TIMEOUT_MS = 1000;
/** Bound on passing a handshake down: well inside the mount's own bound on its handshake. */
export const HANDSHAKE_DOWN_TIMEOUT_MS = 1500;

/** Default bound on a relay's queue (payload bytes), and on its number of changes. */
export const DEFAULT_MAX_QUEUE_BYTES = 2 * 1024 ** 3;
const MAX_QUEUE_ROWS = 2_000_000;

/** Changes in flight to the next hop at once. */
const WINDOW = 64;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;
/** How long a queued change may wait before the loop looks again without being woken. */
const IDLE_POLL_MS = 1000;

export type ForwarderStatus = Omit<RelayStatus, 'next'>;

/** What a relay passes on with a handshake: the owner's certificate (DER) and its signature on the handshake. */
export interface PassOn {
  origin: Buffer;
  proof: string | null;
}

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
  private dequeueWaiters: Array<() => void> = [];
  /** Changes the next hop refused for good (fenced, another owner, a seq conflict): they stay queued; status counts them. */
  private refused = new Set<number>();
  private connected = false;
  private forwarded = 0;
  private forwardedBytes = 0;
  private diverged = 0;
  private lastError: string | null = null;

  /** What the queue holds, kept in memory (the admission check runs on every change). */
  private queuedRows: number;
  private queuedBytes: number;

  constructor(
    private readonly queue: RelayQueue,
    private readonly next: PeerClient,
    private readonly log: Logger,
    private readonly maxQueueBytes = DEFAULT_MAX_QUEUE_BYTES,
    /** The next hop refused a mount's epoch for good (it was taken over): the relay stops accepting that epoch. */
    private readonly onFenced: (mount: string, epoch: number) => void = () => undefined,
    /** The certificate (DER) that took a mount's epoch here and its signed handshake: passed on to the next hop. */
    private readonly ownerCert: (epoch: number) => PassOn | null = () => null,
  ) {
    const q = queue.stats();
    this.queuedRows = q.depth;
    this.queuedBytes = q.bytes;
  }

  /**
   * Refuse a change before it is accepted when the queue is full (the next hop
   * has been away long): ENOSPC, which the mount passes on, rather than a
   * relay disk that fills up.
   */
  checkRoom(payloadBytes: number): void {
    if (this.queuedRows >= MAX_QUEUE_ROWS || this.queuedBytes + payloadBytes > this.maxQueueBytes) {
      throw new MirrorError('MFS_ERRNO', `relay queue for ${this.next.url} is full (${this.queuedRows} changes, ${this.queuedBytes} bytes; limits ${MAX_QUEUE_ROWS} changes, ${this.maxQueueBytes} bytes): the next hop has not taken changes for a while (${this.lastError ?? 'slow'})`, { errno: 'ENOSPC' });
    }
  }

  /** A change was queued (committed with its outcome). */
  noteQueued(payloadBytes: number): void {
    this.queuedRows++;
    this.queuedBytes += payloadBytes;
    this.kick();
  }

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
    await this.next.close();
  }

  /**
   * Resolves once every change queued before now has been acknowledged by the
   * next hop (changes arriving meanwhile are not waited for: a read then sees
   * everything acknowledged before it), or rejects after timeoutMs.
   */
  async waitQueuedBeforeNow(timeoutMs: number): Promise<void> {
    const through = this.queue.bounds().max;
    if (through === null) return;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const oldest = this.queue.bounds().min;
      if (oldest === null || oldest > through) return;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new MirrorError('MFS_TIMEOUT', `relay: changes queued before this request have not reached ${this.next.url} after ${timeoutMs} ms (${this.lastError ?? 'next hop slow'})`);
      }
      await this.nextDequeue(remaining);
    }
  }

  /** Wait for the next batch of acknowledgements from the next hop, at most ms. */
  private nextDequeue(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.dequeueWaiters = this.dequeueWaiters.filter((w) => w !== wake);
        resolve();
      }, ms);
      this.dequeueWaiters.push(wake);
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
      const own = this.queue.minSeq(mount);
      const remaining = deadline - Date.now();
      if (own !== null && own <= known && own <= seq) {
        if (remaining <= 0) return own;
        await this.nextDequeue(remaining);
        continue;
      }
      // The lowest queued here is read before asking down the chain as well as after: a change
      // acknowledged by the next hop meanwhile has left this queue and is covered by its answer.
      const next = await this.next.committed(mount, seq, known, Math.max(0, Math.min(10_000, remaining)));
      return minOrNull(minOrNull(own, this.queue.minSeq(mount)), next.holdsFrom);
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
  async handshakeWhenOlderDrained(mount: string, epoch: number, timeoutMs: number, passOn: PassOn | null = null): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.queuedBefore(epoch) > 0) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return false;
      await this.nextDequeue(remaining);
    }
    await this.handshake(mount, epoch, HANDSHAKE_DOWN_TIMEOUT_MS, passOn);
    return true;
  }

  /** Pass a handshake on, for the certificate that took the epoch here (`passOn`, else the one recorded for it). */
  async handshake(mount: string, epoch: number, timeoutMs?: number, passOn: PassOn | null = null): Promise<void> {
    await this.next.handshake(mount, epoch, timeoutMs, passOn ?? this.ownerCert(epoch));
    this.handshaken.add(`${mount}@${epoch}`);
    this.connected = true;
  }

  /**
   * A request for the next hop itself (a pure relay's reads and repairs), for the certificate that
   * asked here (`origin`). An owner's request the next hop does not take from this relay yet (it
   * restarted since, or never had the handshake) is sent again after the owner's handshake.
   */
  async call(req: Request, payload?: Buffer, timeoutMs?: number, origin: Buffer | null = null): Promise<CallResult> {
    try {
      return await this.next.call(req, payload, timeoutMs, 0, { origin });
    } catch (err) {
      if (!(err instanceof MirrorError && err.code === 'MFS_NO_HANDSHAKE' && 'mount' in req && 'epoch' in req && typeof req.epoch === 'number')) throw err;
      await this.handshake(req.mount, req.epoch, timeoutMs);
      return this.next.call(req, payload, timeoutMs, 0, { origin });
    }
  }

  /** The next hop's manifest, read as it comes (a relay passes it on without holding it). */
  manifestStream(opts: { content?: boolean; path?: string; origin?: Buffer | null; after?: string }): AsyncGenerator<ManifestEntry> {
    return this.next.manifestStream(opts);
  }

  /** The next hop's own status (and so on down the chain), bounded: an unreachable hop is reported, not waited for. */
  nextStatus(): Promise<PeerStatus> {
    return this.next.status(NEXT_STATUS_TIMEOUT_MS);
  }

  status(): ForwarderStatus {
    // From the counters kept for admission: status is polled, and a full count would scan the queue.
    const oldestAt = this.queue.oldestAtMs();
    return {
      to: this.next.url,
      connected: this.connected,
      queue: { depth: this.queuedRows, bytes: this.queuedBytes, oldestAgeMs: oldestAt === null ? null : Date.now() - oldestAt },
      refused: this.refused.size,
      forwarded: this.forwarded,
      forwardedBytes: this.forwardedBytes,
      diverged: this.diverged,
      lastError: this.lastError,
    };
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.step();
      } catch (err) {
        if (err instanceof AssertionFailure) throw err; // a bug here, not a queue to read again: the forwarder stops (logged by start)
        // The queue is in SQLite: nothing is lost; try again shortly, loudly.
        this.log.error({ err: (err as Error).message }, 'forwarding: could not read the queue; retrying');
        await new Promise((r) => setTimeout(r, RETRY_MAX_MS));
      }
    }
  }

  /** Load what fits in the window and start sending it (or wait for work). */
  private async step(): Promise<void> {
    if (this.running.size >= WINDOW) {
      await Promise.race(this.running);
      return;
    }
    const rows = this.queue.queued(this.loadedThrough, WINDOW - this.running.size);
    if (rows.length === 0) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, IDLE_POLL_MS).unref();
      });
      this.wake = null;
      return;
    }
    for (const row of rows) {
      // Each change is loaded once, in acceptance order (what keeps the mount's order per name).
      assert(row.qid > this.loadedThrough, 'a relay loads its queue in qid order, each change once');
      // Epochs only grow in the queue (a relay refuses an older epoch once it took a newer
      // one). The next hop is told the newer epoch before its first change, which fences
      // the older one there: so every change of the older epoch goes first.
      assert(row.epoch >= this.runningEpoch, 'epochs only grow along a relay\'s queue');
      if (row.epoch > this.runningEpoch && this.running.size > 0) await Promise.all(this.running);
      if (this.stopped) return;
      this.runningEpoch = row.epoch;
      this.loadedThrough = row.qid;
      let request: Mutation;
      try {
        request = JSON.parse(row.request) as Mutation;
      } catch (err) {
        this.refused.add(row.qid);
        this.log.error({ qid: row.qid, seq: row.seq, err: (err as Error).message }, 'forwarding: a queued change cannot be read (damaged state); it stays queued');
        continue;
      }
      const p: Promise<void> = this.order
        .run(resendClaims(request, row.payload.length), () => this.deliver(row, request))
        .catch((err: unknown) => {
          if (err instanceof AssertionFailure) {
            // A bug: sending later changes past this one would break their order. Stop forwarding (the queue keeps everything).
            this.stopped = true;
            this.kick();
            this.log.error({ err, seq: row.seq }, 'forwarder stopped: an invariant of mirrorfs is broken (a bug; the queue is kept; restart the relay)');
            return;
          }
          this.log.error({ err, seq: row.seq }, 'forwarding failed unexpectedly');
        })
        .finally(() => this.running.delete(p));
      this.running.add(p);
    }
  }

  /** Send one change until the next hop commits an outcome for it (or the relay stops). */
  private async deliver(row: QueuedRow, request: Mutation): Promise<void> {
    let backoffMs = RETRY_MIN_MS;
    while (!this.stopped) {
      try {
        const key = `${request.mount}@${request.epoch}`;
        if (!this.handshaken.has(key)) await this.handshake(request.mount, request.epoch);
        let got = 'ok';
        try {
          // Durable at the next hop before this relay forgets it (the queue is all that holds it here):
          // a far mirror that loses power then loses nothing a relay acknowledged.
          await this.next.call({ ...request, durable: true }, row.payload);
        } catch (err) {
          if (!isRecordedOutcome(err)) throw err;
          got = err.errno; // a committed error outcome
        }
        this.connected = true;
        this.refused.delete(row.qid);
        this.acknowledged(row, request, got);
        return;
      } catch (err) {
        if (err instanceof AssertionFailure) throw err; // a bug, not a refusal to retry (logged as 'forwarding failed unexpectedly')
        const e = err instanceof MirrorError ? err : new MirrorError('MFS_INTERNAL', String(err));
        if (e.code === 'MFS_NO_HANDSHAKE') this.handshaken.clear();
        if (isFenced(e) && !this.refused.has(row.qid)) this.onFenced(row.mount, row.epoch);
        if (PERMANENT.has(e.code) && !this.refused.has(row.qid)) {
          // It stays queued (dropping it would lose an acknowledged change) and holds back what follows it.
          this.refused.add(row.qid);
          this.log.error({ to: this.next.url, mount: row.mount, seq: row.seq, epoch: row.epoch, op: request.op, err: e.message }, 'forwarding: the next hop refuses this change for good; it stays queued and blocks the changes after it (the next hop was taken over or fenced apart from this relay)');
        }
        if (isNoAnswer(e)) this.connected = false;
        const message = e.message; // starts with the code
        if (message !== this.lastError) this.log.warn({ to: this.next.url, seq: row.seq, op: request.op, err: message }, 'forwarding: next hop did not take the change; retrying');
        this.lastError = message;
        await new Promise((r) => setTimeout(r, backoffMs));
        backoffMs = Math.min(RETRY_MAX_MS, backoffMs * 2);
      }
    }
  }

  private acknowledged(row: QueuedRow, request: Mutation, got: string): void {
    const answered = outcomeKey(row.outcome);
    if (isProvisional(row.outcome)) {
      // A pure relay answered "queued", not an outcome: the far mirror's answer is the outcome.
      if (got !== 'ok') this.log.warn({ to: this.next.url, mount: row.mount, seq: row.seq, op: request.op, path: pathOf(request), nextHop: got }, 'forwarding: the next hop refused a change this relay had queued');
    } else if (got !== answered) {
      this.diverged++;
      this.log.error(
        { to: this.next.url, mount: row.mount, seq: row.seq, op: request.op, path: pathOf(request), answeredUpstream: answered, nextHop: got },
        'forwarding: the next hop answered differently from this relay; the copies differ (run mirrorfs verify --repair)',
      );
    }
    this.lastError = null;
    this.forwarded++;
    this.forwardedBytes += row.payload.length;
    this.queuedRows--;
    this.queuedBytes -= row.payload.length;
    // Every row delivered was counted when queued (at start, or by noteQueued) and is acknowledged once.
    assert(this.queuedRows >= 0 && this.queuedBytes >= 0, 'a relay\'s queue counts never go negative');
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
      try {
        this.queue.dequeue(qids);
      } catch (err) {
        // Not fatal: a change left in the queue is only sent again (the next hop answers from its record).
        this.dequeued.push(...qids);
        this.log.error({ err: (err as Error).message }, 'forwarding: could not record acknowledgements; retrying');
        if (!this.dequeueScheduled) {
          this.dequeueScheduled = true;
          setTimeout(() => this.flushDequeued(), RETRY_MAX_MS).unref();
        }
        return;
      }
    }
    const progress = this.dequeueWaiters;
    this.dequeueWaiters = [];
    for (const w of progress) w();
  }
}

function isProvisional(outcome: string): boolean {
  const o = JSON.parse(outcome) as { result?: { provisional?: unknown } };
  return o.result?.provisional === true;
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
