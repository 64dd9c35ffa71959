import type { Logger } from '../log.js';
import { MirrorError, isTransportFailure, toMirrorError } from '../protocol/errors.js';
import type { Mutation, ReadRequest, WireStatfs } from '../protocol/ops.js';
import type { CallResult } from '../protocol/peer-client.js';
import type { LocalCopy } from './local-copy.js';
import type { Member, MemberStatus } from './member.js';
import { AbsentXattrs } from './absent-xattrs.js';
import { ReadAhead } from './read-ahead.js';
import { Scheduler, claimsFor } from './scheduler.js';

type Unstamped<T> = T extends unknown ? Omit<T, 'mount' | 'epoch' | 'seq'> : never;
export type MutationRequest = Unstamped<Mutation>;

export interface ControllerOptions {
  mountId: string;
  epoch: number;
  /** The last seq this mount used before (from the peers' progress); new operations continue after it. */
  lastSeq: number;
  members: Member[];
  local: LocalCopy | null;
  log: Logger;
}

export interface ControllerStatus {
  mountId: string;
  epoch: number;
  seq: number;
  ackPolicy: 'all';
  inFlight: number;
  queued: number;
  localCopy: { dir: string; active: boolean; reason: string | null } | null;
  peers: MemberStatus[];
}

type Outcome = { ok: true; result: unknown } | { ok: false; error: MirrorError };

/** Errnos that say "the peer ran out of something": reported as they are rather than as EIO. */
const RESOURCE_ERRNOS = ['ENOSPC', 'EDQUOT', 'EROFS'];

/**
 * The mirror controller: the heart of the mount. A changing operation is
 * ordered (scheduler.ts), stamped with (mount, epoch, seq), sent to every peer
 * in parallel and applied to the local copy, and answered only when every
 * peer has committed it (ack policy "all"). Outcomes are compared: peers that
 * agree on an error give that errno; peers that disagree, or a peer that did
 * not answer in time, give EIO and a log line naming each peer's outcome.
 */
export class MirrorController {
  private readonly scheduler = new Scheduler();
  private readonly absentXattrs = new AbsentXattrs();
  private readonly readAhead = new ReadAhead((path, offset, length) => this.readFromPeers({ op: 'read', path, offset, length }).then((r) => r.payload));
  private readonly log: Logger;
  private seq: number;
  private inFlight = 0;
  private stoppingReason: string | null = null;
  private fencedReason: string | null = null;

  constructor(private readonly opts: ControllerOptions) {
    this.log = opts.log;
    this.seq = opts.lastSeq;
  }

  get members(): readonly Member[] {
    return this.opts.members;
  }

  get operationsInFlight(): number {
    return this.inFlight;
  }

  async mutate(req: MutationRequest, payload: Buffer = EMPTY): Promise<unknown> {
    this.inFlight++;
    try {
      return await this.scheduler.run(claimsFor(...namesOf(req)), () => this.fanOut(req, payload));
    } finally {
      this.inFlight--;
    }
  }

  private async fanOut(req: MutationRequest, payload: Buffer): Promise<unknown> {
    // Before sending and again after the outcome: a read that ran meanwhile may
    // have fetched the state before the change, and must not be kept.
    this.forgetCachedAnswers(req);
    try {
      return await this.sendEverywhere(req, payload);
    } finally {
      this.forgetCachedAnswers(req);
    }
  }

  /**
   * Refuse a change before sending it anywhere when it could not be committed
   * everywhere: the mount is unmounting, a newer epoch fenced it, or a peer is
   * out of step (ack policy all: committing on the others would leave a change
   * the application was told failed).
   */
  private admit(req: MutationRequest): void {
    const context = { op: req.op, path: describe(req) };
    if (this.stoppingReason) throw new MirrorError('MFS_ERRNO', `${req.op} refused: ${this.stoppingReason}`, { errno: 'EROFS', context });
    if (this.fencedReason) throw new MirrorError('MFS_FENCED', `${req.op} refused: ${this.fencedReason}`, { context });
    const behind = this.opts.members.find((m) => !m.inStep);
    if (behind) throw new MirrorError('MFS_OUT_OF_STEP', `${req.op} refused: peer ${behind.name} is out of step; no change is sent anywhere until it is caught up (remount)`, { context });
  }

  private async sendEverywhere(req: MutationRequest, payload: Buffer): Promise<unknown> {
    this.admit(req);
    const stamped = { ...req, mount: this.opts.mountId, epoch: this.opts.epoch, seq: ++this.seq } as Mutation;
    const local = this.opts.local?.active ? this.opts.local : null;
    const [peerOutcomes, localOutcome] = await Promise.all([
      Promise.all(this.opts.members.map((m) => settle(m.mutate(stamped, payload)))),
      local ? settle(local.apply(stamped, payload)) : Promise.resolve(null),
    ]);
    this.noteDivergence(stamped, peerOutcomes);
    const decided = this.decide(stamped, peerOutcomes);
    if (local && localOutcome && !sameOutcome(localOutcome, decided)) {
      local.disable(`${stamped.op} ${describe(stamped)} (seq ${stamped.seq}): local copy ${show(localOutcome)}, peers ${show(decided)}`);
    }
    if (!decided.ok) throw decided.error;
    return decided.result;
  }

  /**
   * After a change: a peer that did not answer may still apply it later, and a
   * peer that refused what another committed now holds a different tree. Either
   * is out of step from here on. A fenced answer fences the whole mount.
   */
  private noteDivergence(req: Mutation, outcomes: Outcome[]): void {
    const anyCommitted = outcomes.some((o) => o.ok);
    this.opts.members.forEach((m, i) => {
      const o = outcomes[i]!;
      if (o.ok) return;
      if (o.error.code === 'MFS_FENCED' || o.error.code === 'MFS_NOT_OWNER') {
        this.fencedReason ??= `peer ${m.name}: ${o.error.message}`;
        this.log.error({ peer: m.name, seq: req.seq, err: o.error.message }, 'fenced: another mount owns the peers now; every further change fails with EROFS');
      } else if (isTransportFailure(o.error)) {
        if (o.error.code !== 'MFS_OUT_OF_STEP') m.markOutOfStep(req.seq, o.error.message);
      } else if (anyCommitted) {
        m.markOutOfStep(req.seq, `refused with ${o.error.errno} a change other peers committed`);
      }
    });
  }

  /** Stop admitting changes (unmount in progress); in-flight ones finish. */
  stopAdmitting(reason: string): void {
    this.stoppingReason ??= reason;
  }

  /** Ack policy "all": success only when every peer committed; otherwise the errno a user would expect. */
  private decide(req: Mutation, outcomes: Outcome[]): Outcome {
    const first = outcomes[0]!;
    if (outcomes.every((o) => o.ok)) return first;
    const errnos = outcomes.map((o) => (o.ok ? null : o.error.errno));
    const consistent = outcomes.every((o) => !o.ok && !isTransportFailure(o.error) && o.error.errno === errnos[0]);
    if (consistent) return first; // every peer refused it the same way (ENOENT, EEXIST ...): nothing diverged
    const detail = this.opts.members.map((m, i) => `${m.name}: ${show(outcomes[i]!)}`).join('; ');
    const resource = RESOURCE_ERRNOS.find((e) => errnos.includes(e));
    const errno = resource ?? 'EIO';
    const anyTransport = outcomes.some((o) => !o.ok && isTransportFailure(o.error));
    this.log.error(
      { op: req.op, path: describe(req), seq: req.seq, errno, outcomes: detail },
      anyTransport ? 'operation failed: not every peer committed it' : 'operation failed: peers disagree on the outcome',
    );
    return { ok: false, error: new MirrorError('MFS_ERRNO', `${req.op} ${describe(req)}: ${detail}`, { errno, context: { op: req.op, path: describe(req) } }) };
  }

  /** Drop cached answers that this change may make wrong. */
  private forgetCachedAnswers(req: MutationRequest): void {
    this.readAhead.invalidate();
    if (req.op === 'setxattr' || req.op === 'removexattr') this.absentXattrs.clear();
    else if (NAME_CHANGING_OPS.has(req.op)) for (const name of namesOf(req)) this.absentXattrs.forget(name);
  }

  /** A read: from the local copy when there is one, else from the healthiest, fastest peer. */
  async read<T = unknown>(req: ReadRequest): Promise<CallResult<T>> {
    if (req.op === 'getxattr' && this.absentXattrs.isAbsent(req.path, req.name)) {
      throw new MirrorError('MFS_ERRNO', `getxattr ${req.name}: no such attribute`, { errno: 'ENODATA' });
    }
    const generation = this.absentXattrs.generation;
    try {
      return await this.readThrough<T>(req);
    } catch (err) {
      if (req.op === 'getxattr' && err instanceof MirrorError && err.errno === 'ENODATA') this.absentXattrs.noteAbsent(req.path, req.name, generation);
      throw err;
    }
  }

  private async readThrough<T>(req: ReadRequest): Promise<CallResult<T>> {
    const local = this.opts.local;
    if (local?.active) {
      try {
        const out = local.read(req);
        return { result: out.result as T, payload: out.payload ?? EMPTY };
      } catch (err) {
        throw toMirrorError(err, { op: req.op, path: 'path' in req ? req.path : undefined });
      }
    }
    if (req.op === 'read') {
      // A block cached before this read was issued may be stale only if a
      // change began since; ReadAhead drops those (see read-ahead.ts).
      return { result: undefined as T, payload: await this.readAhead.read(req.path, req.offset, req.length) };
    }
    return this.readFromPeers<T>(req);
  }

  /**
   * Read from the fastest healthy in-step peer, failing over to the others.
   * (Spreading the blocks of one sequential read over both peers was measured
   * slower here: every process shares the same two cores.)
   */
  private async readFromPeers<T>(req: ReadRequest): Promise<CallResult<T>> {
    // A peer out of step may lack changes: never read from it.
    const order = this.opts.members.filter((m) => m.inStep).sort((a, b) => Number(b.healthy) - Number(a.healthy) || a.latencyP50 - b.latencyP50);
    if (order.length === 0) throw new MirrorError('MFS_OUT_OF_STEP', 'no peer is in step to read from');
    let lastError: unknown;
    for (const member of order) {
      try {
        return await member.call<T>(req);
      } catch (err) {
        if (!isTransportFailure(err)) throw err;
        lastError = err;
      }
    }
    throw lastError ?? new MirrorError('MFS_UNREACHABLE', 'no peer to read from');
  }

  /** Space as the peers see it (where ENOSPC is decided): the tightest in-step peer's figures. */
  async statfs(): Promise<WireStatfs> {
    const inStep = this.opts.members.filter((m) => m.inStep);
    const answers = await Promise.allSettled(inStep.map((m) => m.call<WireStatfs>({ op: 'statfs' })));
    const figures = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value.result] : []));
    if (figures.length === 0) throw new MirrorError('MFS_UNREACHABLE', 'no peer answered statfs');
    return figures.reduce((min, f) => (f.bavail * f.bsize < min.bavail * min.bsize ? f : min));
  }

  status(): ControllerStatus {
    const local = this.opts.local;
    return {
      mountId: this.opts.mountId,
      epoch: this.opts.epoch,
      seq: this.seq,
      ackPolicy: 'all',
      inFlight: this.inFlight,
      queued: this.scheduler.queued,
      localCopy: local ? { dir: local.dir, active: local.active, reason: local.reason } : null,
      peers: this.opts.members.map((m) => m.status()),
    };
  }

  /** Wait (bounded) until no changing operation is in flight. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.inFlight === 0;
  }

  async close(): Promise<void> {
    await Promise.all(this.opts.members.map((m) => m.close()));
    this.opts.local?.close();
  }
}

const EMPTY = Buffer.alloc(0);

/** Operations that change what a name refers to. */
const NAME_CHANGING_OPS: ReadonlySet<MutationRequest['op']> = new Set(['create', 'unlink', 'rename', 'rmdir', 'mkdir', 'symlink', 'link']);

function settle(p: Promise<unknown>): Promise<Outcome> {
  return p.then(
    (result) => ({ ok: true as const, result }),
    (err: unknown) => ({ ok: false as const, error: toMirrorError(err) }),
  );
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  if (a.ok || b.ok) return a.ok === b.ok;
  return a.error.errno === b.error.errno;
}

function show(o: Outcome): string {
  return o.ok ? 'ok' : `${o.error.errno} (${o.error.message})`;
}

/** The names an operation touches, for ordering. */
function namesOf(req: MutationRequest): string[] {
  if (req.op === 'rename') return [req.from, req.to];
  if (req.op === 'link') return [req.from, req.path];
  return [req.path];
}

function describe(req: MutationRequest): string {
  if (req.op === 'rename' || req.op === 'link') return `${JSON.stringify(req.from)} -> ${JSON.stringify(req.op === 'rename' ? req.to : req.path)}`;
  return JSON.stringify(req.path);
}
