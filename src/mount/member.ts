import type { Logger } from '../log.js';
import { MirrorError, isTransportFailure } from '../protocol/errors.js';
import type { CallResult } from '../protocol/peer-client.js';
import { PeerClient } from '../protocol/peer-client.js';
import type { RequestInput } from '../protocol/ops.js';
import type { PeerSpec } from './config.js';
import { LatencyWindow } from './latency.js';

export interface MemberStatus {
  name: string;
  url: string;
  connected: boolean;
  /** Null while the peer has every change; else why it stopped receiving changes. */
  outOfStep: string | null;
  lastError: string | null;
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
  private operations = 0;
  private bytes = 0;
  private inFlight = 0;
  private failures = 0;
  private connected = false;
  private lastError: string | null = null;
  private outOfStepReason: string | null = null;

  constructor(readonly spec: PeerSpec, timeoutMs: number, private readonly log: Logger) {
    this.client = new PeerClient(spec.url, { name: spec.name, token: spec.token, timeoutMs });
  }

  get name(): string {
    return this.spec.name;
  }

  /** Median latency, for choosing where reads go; unmeasured peers sort last. */
  get latencyP50(): number {
    return this.latency.percentile(50) ?? Number.MAX_SAFE_INTEGER;
  }

  get healthy(): boolean {
    return this.connected && this.outOfStepReason === null;
  }

  get inStep(): boolean {
    return this.outOfStepReason === null;
  }

  /**
   * The peer did not answer a change (timeout, lost connection): it may still
   * apply it later, after changes sent since. So no further change goes to it,
   * which would break the per-name order every peer must share, until it has
   * been caught up (today: a remount; automatic catch-up is a later feature).
   */
  markOutOfStep(seq: number, reason: string): void {
    if (this.outOfStepReason) return;
    this.outOfStepReason = `since seq ${seq}: ${reason}; no change goes anywhere until it is caught up (remount)`;
    this.log.error({ peer: this.name, seq, reason }, 'peer is out of step: it missed a change; no further changes go to it');
  }

  /** The peer answered outside call() (the handshake at mount time). */
  markConnected(): void {
    this.connected = true;
    this.lastError = null;
  }

  /** Send a change, unless the peer is out of step (then fail at once, as a transport failure). */
  mutate(req: RequestInput, payload: Buffer): Promise<unknown> {
    if (this.outOfStepReason) {
      return Promise.reject(new MirrorError('MFS_OUT_OF_STEP', `peer ${this.name} ${this.outOfStepReason}`, { context: { peer: this.name, op: req.op } }));
    }
    return this.call(req, payload).then((r) => r.result);
  }

  async call<T = unknown>(req: RequestInput, payload?: Buffer): Promise<CallResult<T>> {
    const started = performance.now();
    this.inFlight++;
    try {
      const result = await this.client.call<T>(req, payload);
      this.succeeded(started, payload);
      return result;
    } catch (err) {
      const e = err as MirrorError;
      if (!isTransportFailure(e)) {
        this.succeeded(started, undefined); // the peer answered; the operation failed on its merits
      } else {
        this.failures++;
        this.connected = false;
        this.lastError = e.message;
        this.log.warn({ peer: this.name, op: req.op, code: e.code, errno: e.errno, err: e.message }, 'peer call failed');
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

  status(): MemberStatus {
    return {
      name: this.name,
      url: this.spec.url,
      connected: this.connected,
      outOfStep: this.outOfStepReason,
      lastError: this.lastError,
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
