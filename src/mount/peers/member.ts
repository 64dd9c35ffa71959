import type { Logger } from '../../log.js';
import { MirrorError, isTransportFailure } from '../../protocol/errors.js';
import type { BodyHold, CallIo, CallResult } from '../../client/peer-client.js';
import { PeerClient } from '../../client/peer-client.js';
import type { MountDurability, Mutation, RequestInput, ResendAnswer } from '../../protocol/ops.js';
import type { PeerSpec } from './config.js';
import { LatencySeries, LatencyWindow } from './latency.js';

/**
 * in-sync: receives every change as it happens. catching-up: lacks changes,
 * answers, and is being brought them. down: lacks changes and does not answer
 * (or cannot take them: out of space), so catch-up waits and retries.
 */
export type SyncState = 'in-sync' | 'catching-up' | 'down';

/** Why a peer is not in step in the asynchronous mode. */
export const FOLLOWING = 'asynchronous mode (--ack 0): it receives every change from the journal, in order';

export interface MemberStatus {
  name: string;
  url: string;
  /** The route in use (one of url's, when it lists several). */
  route: string;
  connected: boolean;
  state: SyncState;
  /** While not in sync: since when (ISO time), why, and how much it lacks. */
  behind: {
    since: string;
    reason: string;
    ops: number;
    bytes: number;
    /** Catch-up rate over the last few seconds, and the time left at that rate (null when unknown). */
    opsPerS: number | null;
    bytesPerS: number | null;
    etaS: number | null;
  } | null;
  lastError: string | null;
  /**
   * Where the copy stands for this mount, as its last answer said (a lease renewal every second,
   * an fsync): every change through appliedThrough applied, through durableThrough on stable
   * storage, and how old the oldest change not yet durable is. Null before the first answer.
   */
  durability: (MountDurability & { reportedAgeMs: number }) | null;
  /** The peer restarted after its machine went down (or a flush failed) and is not exact until it is repaired. */
  unclean: boolean;
  latencyUsP50: number | null;
  latencyUsP99: number | null;
  operations: number;
  bytes: number;
  inFlight: number;
  failures: number;
}

/**
 * One peer as the mount sees it: its client plus what `mirrorfs status` shows
 * (connected, latency percentiles, operations and bytes mirrored, in flight).
 */
export class Member {
  readonly client: PeerClient;
  private readonly latency = new LatencyWindow();
  /** Per-second latency of changes, for the status page's chart. */
  readonly changeLatency = new LatencySeries();
  /** Told of every call that got an answer or failed (metrics). */
  observer: ((peer: string, op: string, seconds: number, bytes: number, errno: string | null) => void) | null = null;
  private operations = 0;
  private bytes = 0;
  private inFlight = 0;
  private failures = 0;
  private connected = false;
  private lastError: string | null = null;
  private lag: { since: number; reason: string; errno: string | null; catchingUp: boolean } | null = null;
  private readonly caughtUp: Array<{ at: number; slot: number; ops: number; bytes: number }> = [];
  private lost = false;
  /** Changes in flight that were not sent here because the peer is behind (they will be journaled for it). */
  skippedInFlight = 0;
  /** Changes this peer lacks that are not yet committed to the journal. */
  unjournaled = 0;
  private durability: { report: MountDurability; at: number } | null = null;
  private unclean = false;
  /** When (performance.now()) a repair after an unclean restart last made this copy exact; -1: never. */
  repairedAt = -1;

  /** `timeoutMs`: the bound on each call to this peer (--peer-timeout), unless a call names its own. */
  constructor(readonly spec: PeerSpec, readonly timeoutMs: number, private readonly log: Logger) {
    this.client = new PeerClient(spec.url, {
      name: spec.name,
      token: spec.token,
      transport: spec.transport,
      timeoutMs,
      onFailover: (from, to, reason) => log.warn({ peer: spec.name, from, to, reason }, 'route failed; using the next route to this peer'),
    });
  }

  get name(): string {
    return this.spec.name;
  }

  /** Median latency in µs, for choosing where reads go; unmeasured peers sort last. */
  get latencyP50Us(): number {
    return this.latency.percentile(50) ?? Number.MAX_SAFE_INTEGER;
  }

  /** p99 latency in ms (0 when unmeasured). */
  get latencyP99Ms(): number {
    return (this.latency.percentile(99) ?? 0) / 1000;
  }

  get healthy(): boolean {
    return this.connected && this.lag === null;
  }

  /** True while the peer has every change and receives new ones directly. */
  get inStep(): boolean {
    return this.lag === null;
  }

  /** Why the peer is behind (null when in sync), and the errno behind it when it is a resource (ENOSPC). */
  get behindReason(): string | null {
    return this.lag?.reason ?? null;
  }

  get behindErrno(): string | null {
    return this.lag?.errno ?? null;
  }

  /**
   * The peer lacks a change (it did not answer, or could not apply it). From
   * now on changes go to the journal for it instead of to it, so that it
   * receives them in order when catch-up brings them (catch-up.ts).
   */
  markBehind(seq: number, reason: string, errno: string | null = null, path: string | null = null): void {
    if (this.lag) {
      if (errno) this.lag.errno = errno;
      return;
    }
    this.lag = { since: Date.now(), reason: `since seq ${seq}: ${reason}`, errno, catchingUp: false };
    this.caughtUp.length = 0;
    this.log.error({ peer: this.name, seq, path, errno: errno ?? 'EIO', reason }, 'peer is behind: it lacks a change; changes are journaled for it and caught up when it answers');
  }

  /**
   * The asynchronous mode (`--ack 0`): the peer receives every change from the
   * journal, in order, as catch-up brings them; it is never sent one directly.
   */
  follow(): void {
    this.lag ??= { since: Date.now(), reason: FOLLOWING, errno: null, catchingUp: true };
  }

  /**
   * The peer lacks a change that could not be journaled (the journal write
   * failed): nothing can bring it, so it stays behind until a remount
   * compares the copies.
   */
  markLost(seq: number, reason: string): void {
    this.markBehind(seq, reason);
    this.lost = true;
    if (this.lag) this.lag.reason = `since seq ${seq}: ${reason}; it lacks a change that is not in the journal: unmount and mount again to reconcile`;
  }

  get isLost(): boolean {
    return this.lost;
  }

  /** Catch-up is bringing changes (true) or waiting for the peer (false). */
  noteCatchingUp(active: boolean, reason?: string, errno?: string | null): void {
    if (!this.lag) return;
    this.lag.catchingUp = active;
    if (reason) this.lag.reason = reason;
    if (errno !== undefined) this.lag.errno = errno;
  }

  noteCaughtUp(ops: number, bytes: number): void {
    const now = Date.now();
    // Changes delivered in the same 100 ms share an entry: catch-up delivers thousands a second,
    // and a window of one entry each made every delivery shift thousands (2.5% of the mount's CPU).
    const slot = Math.floor(now / 100);
    const last = this.caughtUp[this.caughtUp.length - 1];
    if (last !== undefined && this.caughtUp.length > 1 && last.slot === slot) {
      last.at = now; // the span the rate is taken over ends at the latest delivery
      last.ops += ops;
      last.bytes += bytes;
    } else {
      this.caughtUp.push({ at: now, slot, ops, bytes });
    }
    while (this.caughtUp.length > 0 && this.caughtUp[0]!.at < now - 5000) this.caughtUp.shift();
  }

  /** The peer has everything again; changes go to it directly from now on. */
  markInSync(): void {
    if (!this.lag) return;
    this.log.info({ peer: this.name, behindForMs: Date.now() - this.lag.since }, 'peer is in sync again');
    this.lag = null;
  }

  /** Every change through this seq is on the copy's stable storage, as its last report said (null before the first). */
  get durableThrough(): number | null {
    return this.durability?.report.durableThrough ?? null;
  }

  /** The copy said where it stands (a lease renewal, an fsync); `unclean`: it restarted after a crash of its machine. */
  noteDurability(report: MountDurability | null, unclean = false): void {
    if (report) this.durability = { report, at: Date.now() };
    this.unclean = unclean;
  }

  /** The peer answered outside call() (the handshake at mount time). */
  markConnected(): void {
    this.connected = true;
    this.lastError = null;
  }

  /** Send a change. */
  mutate(req: RequestInput, payload: Buffer, hold?: BodyHold): Promise<unknown> {
    const started = performance.now();
    return this.call(req, payload, hold && { hold }).then((r) => {
      this.changeLatency.add((performance.now() - started) * 1000);
      return r.result;
    });
  }

  /** Send journaled changes again, many in one call (catch-up; protocol/ops.ts `resend`): what the peer answered for each it applied. */
  async resend(mount: string, epoch: number, changes: Array<{ change: Mutation; bytes: number; expect: string | null }>, payload: Buffer): Promise<ResendAnswer> {
    // The peer applies them one after another: a bound for the call that grows with them, or a
    // slow peer (or a -o sync mount, a flush each) would time out call after call.
    const timeoutMs = Math.round(this.timeoutMs * (1 + changes.length / 8));
    return (await this.call<ResendAnswer>({ op: 'resend', mount, epoch, changes }, payload, undefined, timeoutMs)).result;
  }

  /** `io`: where a read's bytes go, a hold on a write's payload (PeerClient's CallIo). */
  /** `timeoutMs`: a bound of its own (an fsync, which may wait for a flush of much applied data), else the peer timeout. */
  async call<T = unknown>(req: RequestInput, payload?: Buffer, io?: CallIo, timeoutMs?: number): Promise<CallResult<T>> {
    const started = performance.now();
    this.inFlight++;
    try {
      const result = await this.client.call<T>(req, payload, timeoutMs, 0, io);
      this.succeeded(started, payload);
      this.observer?.(this.name, req.op, (performance.now() - started) / 1000, payload?.length ?? 0, null);
      return result;
    } catch (err) {
      const e = err as MirrorError;
      this.observer?.(this.name, req.op, (performance.now() - started) / 1000, 0, e.errno ?? 'EIO');
      if (!isTransportFailure(e)) {
        this.succeeded(started, undefined); // the peer answered; the operation failed on its merits
      } else {
        this.failures++;
        this.connected = false;
        this.lastError = e.message;
        this.log.warn({ peer: this.name, op: req.op, path: 'path' in req ? req.path : null, code: e.code, errno: e.errno, err: e.message }, 'peer call failed');
      }
      throw err;
    } finally {
      this.inFlight--;
    }
  }

  private succeeded(started: number, payload: Buffer | undefined): void {
    this.latency.add((performance.now() - started) * 1000);
    this.operations++;
    if (payload) this.bytes += payload.length;
    if (!this.connected) {
      this.connected = true;
      this.lastError = null;
    }
  }

  /** Status; `lacking` is what the journal holds for this peer. */
  status(lacking: { ops: number; bytes: number } = { ops: 0, bytes: 0 }): MemberStatus {
    let behind: MemberStatus['behind'] = null;
    if (this.lag) {
      const window = this.caughtUp;
      const spanS = window.length > 1 ? (window[window.length - 1]!.at - window[0]!.at) / 1000 : 0;
      const ops = window.slice(1).reduce((n, w) => n + w.ops, 0);
      const bytes = window.slice(1).reduce((n, w) => n + w.bytes, 0);
      const opsPerS = spanS > 0 ? Math.round(ops / spanS) : null;
      const bytesPerS = spanS > 0 ? Math.round(bytes / spanS) : null;
      const etaS = opsPerS ? Math.ceil(lacking.ops / opsPerS) : null;
      behind = { since: new Date(this.lag.since).toISOString(), reason: this.lag.reason, ...lacking, opsPerS, bytesPerS, etaS };
    }
    return {
      name: this.name,
      url: this.spec.url,
      route: this.client.currentRoute,
      connected: this.connected,
      state: this.lag === null ? 'in-sync' : this.lag.catchingUp ? 'catching-up' : 'down',
      behind,
      lastError: this.lastError,
      durability: this.durability && { ...this.durability.report, reportedAgeMs: Date.now() - this.durability.at },
      unclean: this.unclean,
      latencyUsP50: round(this.latency.percentile(50)),
      latencyUsP99: round(this.latency.percentile(99)),
      operations: this.operations,
      bytes: this.bytes,
      inFlight: this.inFlight,
      failures: this.failures,
    };
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

function round(v: number | null): number | null {
  return v === null ? null : Math.round(v);
}
