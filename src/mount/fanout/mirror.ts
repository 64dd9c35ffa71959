import type { Logger } from '../../log.js';
import { MirrorError, isDeterministic, isTransportFailure, toMirrorError } from '../../protocol/errors.js';
import { NAMESPACE_OPS, describePaths, logPathOf, type Mutation, type MutationRequest, type PeerStatus, type ReadRequest, type RelayStatus, type WireStat, type WireStatfs } from '../../protocol/ops.js';
import type { EntryType } from '../../store/reads.js';
import type { CommitTracker } from './commit-tracker.js';
import type { BodyHold, CallResult } from '../../client/peer-client.js';
import type { LocalCopy } from '../peers/local-copy.js';
import type { Member, MemberStatus } from '../peers/member.js';
import { AbsentXattrs } from '../cache/absent-xattrs.js';
import { CatchUp } from '../recovery/catch-up.js';
import type { Journal, LackKind } from '../recovery/journal.js';
import { keepReadPeer } from './read-choice.js';
import { ReadAhead } from '../cache/read-ahead.js';
import { ABSENT, NameCache, type ChangeToken } from '../cache/name-cache.js';
import { RESERVED_ROOT_NAMES } from '../../protocol/paths.js';
import { namesOf, orderingClaims } from '../../ordering/claims.js';
import { Scheduler, claimsFor } from '../../ordering/scheduler.js';

/** How many peers must commit a change before the call succeeds. */
export type AckPolicy = { kind: 'all' } | { kind: 'quorum' } | { kind: 'count'; n: number };

export function describeAckPolicy(p: AckPolicy): string {
  return p.kind === 'count' ? String(p.n) : p.kind;
}

/** Peers that must commit, out of `members`. */
export function requiredAcks(p: AckPolicy, members: number): number {
  if (p.kind === 'all') return members;
  if (p.kind === 'quorum') return Math.floor(members / 2) + 1;
  return Math.min(p.n, members);
}

export interface ControllerOptions {
  mountId: string;
  epoch: number;
  /** The last seq this mount used before (from the peers' progress and the journal); new operations continue after it. */
  lastSeq: number;
  members: Member[];
  local: LocalCopy | null;
  journal: Journal;
  ackPolicy: AckPolicy;
  /** The bound on each peer call (the straggler window never exceeds it). */
  peerTimeoutMs: number;
  /** A change that has not started (sent) within this long after it arrived fails with EIO instead. */
  startLimitMs: number;
  /** Ack mode end-to-end: tracks what the far mirrors have committed (null in first-hop mode). */
  commits?: CommitTracker | null;
  log: Logger;
}

export interface ControllerStatus {
  mountId: string;
  epoch: number;
  seq: number;
  ackPolicy: string;
  requiredAcks: number;
  inFlight: number;
  queued: number;
  fenced: string | null;
  localCopy: { dir: string; active: boolean; reason: string | null } | null;
  /** first-hop, or end-to-end with the changes still executing and those committed so far. */
  ackMode: 'first-hop' | 'end-to-end';
  endToEnd: { executing: number; committed: number; fsyncWaiting: number } | null;
  peers: MemberStatus[];
}

type Outcome = { ok: true; result: unknown } | { ok: false; error: MirrorError };

/** One hop of a route: a relay (with its queue for the next hop) or the mirror at the end. */
export interface RouteHop {
  name: string;
  relay: boolean;
  queueDepth: number;
  oldestAgeMs: number | null;
  connected: boolean | null;
  lastError: string | null;
  diverged: number;
}

const ROUTE_STATUS_TIMEOUT_MS = 3000;

/** The outcome key of a pure relay's acknowledgement: queued, the far mirror's answer still to come. */
const PROVISIONAL = '(queued)';

function isProvisional(o: Outcome): boolean {
  return o.ok && typeof o.result === 'object' && o.result !== null && (o.result as { provisional?: unknown }).provisional === true;
}

function hopsOf(status: PeerStatus): RouteHop[] {
  const hops: RouteHop[] = [];
  let s: PeerStatus | { error: string } | null = status;
  while (s && 'name' in s) {
    const r: RelayStatus | null = s.relay ?? null;
    hops.push({ name: s.name, relay: r !== null, queueDepth: r?.queue.depth ?? 0, oldestAgeMs: r?.queue.oldestAgeMs ?? null, connected: r?.connected ?? null, lastError: r?.lastError ?? null, diverged: r?.diverged ?? 0 });
    s = r?.next ?? null;
  }
  if (s && 'error' in s) hops.push({ name: '(unreachable)', relay: false, queueDepth: 0, oldestAgeMs: null, connected: false, lastError: s.error, diverged: 0 });
  return hops;
}

/** A peer that was behind: the change went to the journal for it instead. */
const SKIPPED: Outcome = { ok: false, error: new MirrorError('MFS_OUT_OF_STEP', 'peer is behind: change journaled for catch-up') };

/** Resolves true when p settles before the deadline, false otherwise. */
function waitUntil(p: Promise<void>, deadline: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** A peer that had not answered when enough others had committed (ack quorum or N). */
const STRAGGLER: Outcome = { ok: false, error: new MirrorError('MFS_TIMEOUT', 'no answer within the straggler window after enough peers committed') };
const STRAGGLER_MIN_MS = 50;

/** The size of the largest group of peers that committed the same outcome. */
function mostAgreeing(results: Array<Outcome | undefined>): number {
  const counts = new Map<string, number>();
  for (const r of results) {
    if (!r) continue;
    const k = r.ok ? 'ok' : isCommittedError(r.error) ? r.error.errno : null;
    if (k !== null) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return Math.max(0, ...counts.values());
}

/** Errnos that say "the peer ran out of something": reported as they are rather than as EIO. */
const RESOURCE_ERRNOS = ['ENOSPC', 'EDQUOT', 'EROFS'];

/** What became of one change on one peer. */
interface Verdict {
  decided: Outcome;
  /** 'ok' or the errno the committing peers agreed on; null when no peer committed it. */
  authoritative: string | null;
  lacking: Array<{ member: Member; kind: LackKind; reason: string; errno: string | null }>;
}

/**
 * The mirror controller: the heart of the mount. A changing operation is
 * ordered (scheduler.ts), stamped with (mount, epoch, seq), sent to every
 * in-sync peer in parallel and applied to the local copy, and answered when
 * the ack policy is met (all by default; quorum or N). A peer that lacks a
 * change (did not answer in time, ran out of space, answered differently, or
 * was behind already) gets it through the journal and catch-up, and the
 * journal commit happens before the application is answered. An operation
 * that reached some peers but failed is rolled forward the same way: the
 * copies converge on one history.
 */
export class MirrorController {
  private readonly scheduler = new Scheduler();
  private readonly absentXattrs = new AbsentXattrs();
  /** The peer reads went to last (readOrder). */
  private readPeer: Member | null = null;
  private readonly names = new NameCache();
  private readonly readAhead = new ReadAhead(
    (path, offset, length, into) => this.readFromPeers({ op: 'read', path, offset, length }, into).then((r) => r.payload),
    (path) => {
      const known = this.names.lookup(path);
      return known && known !== ABSENT && known.type === 'file' ? known.size : undefined;
    },
  );
  private readonly log: Logger;
  private readonly catchUp: CatchUp;
  private readonly required: number;
  private readonly peerTimeoutMs: number;
  private seq: number;
  private inFlight = 0;
  private stoppingReason: string | null = null;
  private fencedReason: string | null = null;
  private gate: { promise: Promise<void>; open: () => void; holders: number } | null = null;
  private pastGate = 0;
  private readonly startLimitMs: number;

  constructor(private readonly opts: ControllerOptions) {
    this.log = opts.log;
    this.seq = opts.lastSeq;
    this.required = requiredAcks(opts.ackPolicy, opts.members.length);
    this.peerTimeoutMs = opts.peerTimeoutMs;
    this.startLimitMs = opts.startLimitMs;
    this.catchUp = new CatchUp({
      mountId: opts.mountId,
      epoch: opts.epoch,
      journal: opts.journal,
      log: opts.log,
      withClaims: (names, fn) => this.withClaims(names, fn),
      repairSource: (exclude) => this.fastestInSync(exclude),
      onFenced: (m, err) => this.fence(m, err),
      holdAdmission: () => this.holdAdmission(),
      changesPastGate: () => this.pastGate,
      quietTimeoutMs: 2 * opts.peerTimeoutMs,
    });
  }

  get members(): readonly Member[] {
    return this.opts.members;
  }

  get identity(): { mountId: string; epoch: number } {
    return { mountId: this.opts.mountId, epoch: this.opts.epoch };
  }

  get localCopy(): LocalCopy | null {
    return this.opts.local;
  }

  get operationsInFlight(): number {
    return this.inFlight;
  }

  /** Start catch-up for every peer that is behind (at mount: those recovery could not bring up to date). */
  startCatchUp(): void {
    for (const m of this.opts.members) if (!m.inStep) this.catchUp.ensure(m);
  }

  /** Run fn holding the ordering claims on these names: no change to them runs meanwhile. */
  withClaims<T>(names: string[], fn: () => Promise<T>): Promise<T> {
    return this.scheduler.run(claimsFor(...names), async () => {
      // A repair under these claims may change what peers hold there: nothing cached about it stays.
      let token: ChangeToken | null = null;
      try {
        token = this.names.begin(names, true, names);
        return await fn();
      } finally {
        if (token) this.names.end(token, { ok: false });
        else this.names.clear();
      }
    });
  }

  /**
   * Close the gate: changes not yet started wait (before taking any ordering
   * claim, so whoever holds the gate can still take claims) until every
   * holder has released it.
   */
  private holdAdmission(): () => void {
    if (!this.gate) {
      let open!: () => void;
      const promise = new Promise<void>((r) => (open = r));
      this.gate = { promise, open, holders: 0 };
    }
    const gate = this.gate;
    gate.holders++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--gate.holders === 0) {
        this.gate = null;
        gate.open();
      }
    };
  }

  /** `hold`: kept by every send of the payload until its stream closes (a payload in a reused buffer, see PooledBytes). */
  async mutate(req: MutationRequest, payload: Buffer = EMPTY, hold?: BodyHold): Promise<unknown> {
    // A change must start within this bound or not at all: the kernel's request
    // (fuse-native's timeout) must never be answered "failed" for a change that
    // is applied afterwards.
    const deadline = Date.now() + this.startLimitMs;
    this.inFlight++;
    try {
      while (this.gate) {
        if (!(await waitUntil(this.gate.promise, deadline))) throw this.tooLate(req, 'waited for a peer to join');
      }
      this.pastGate++;
      try {
        return await this.scheduler.run(orderingClaims(req), () => {
          if (Date.now() > deadline) throw this.tooLate(req, 'waited for an earlier change to the same names');
          return this.fanOut(req, payload, hold);
        });
      } finally {
        this.pastGate--;
        // A catch-up holding the gate waits for the last admitted change to finish.
        if (this.pastGate === 0 && this.gate) for (const m of this.opts.members) this.catchUp.nudge(m);
      }
    } finally {
      this.inFlight--;
    }
  }

  private tooLate(req: MutationRequest, why: string): MirrorError {
    // No peer was asked: the line names none (peer null), as the log's rule for error lines allows.
    this.log.error({ peer: null, op: req.op, path: logPathOf(req), errno: 'EIO', limitMs: this.startLimitMs }, `change refused before it started: it ${why} too long`);
    return new MirrorError('MFS_ERRNO', `${req.op} ${describePaths(req)}: not started within ${this.startLimitMs} ms (it ${why}); nothing was changed`, { errno: 'EIO' });
  }

  /** Changes that passed the admission gate and have not finished (queued for claims, or running). */
  get changesPastGate(): number {
    return this.pastGate;
  }

  private async fanOut(req: MutationRequest, payload: Buffer, hold?: BodyHold): Promise<unknown> {
    // Before sending and again after the outcome: a read that ran meanwhile may
    // have fetched the state before the change, and must not be kept.
    this.forgetCachedAnswers(req);
    let token: ChangeToken | null = null;
    let result: unknown;
    try {
      token = this.names.begin(namesOf(req), NAMESPACE_OPS.has(req.op), subtreesMovedOrRemoved(req));
      result = await this.sendEverywhere(req, payload, hold);
    } catch (err) {
      if (token) this.names.end(token, { ok: false });
      else this.names.clear(); // begin itself failed: nothing cached can be trusted
      throw err;
    } finally {
      this.forgetCachedAnswers(req);
    }
    const answer = result as { created?: boolean; stats?: Record<string, WireStat> } | undefined;
    if (req.op === 'rename' && req.from !== req.to && !answer?.stats) {
      // rename(2) onto another link of the same file does nothing: only the peer's
      // attributes tell whether `from` is still there. Without them, forget what it touched.
      this.names.end(token, { ok: false });
    } else {
      this.names.end(token, { ok: true, ...namesMadeAndRemoved(req, answer?.stats), stats: answer?.stats });
    }
    // A file the peers just made has no capabilities: the kernel's question before its first write needs no round trip.
    if (req.op === 'create' && answer?.created) this.absentXattrs.noteAbsent(req.path, 'security.capability', this.absentXattrs.generation);
    return result;
  }

  /**
   * Refuse a change before sending it anywhere when it cannot meet the ack
   * policy: the mount is unmounting, a newer epoch fenced it, or fewer peers
   * are in sync than must commit (with ack all: any peer behind). Nothing is
   * sent, so the application is never told "failed" about a change that lands.
   */
  private admit(req: MutationRequest): void {
    const context = { op: req.op, path: describePaths(req) };
    if (this.stoppingReason) throw new MirrorError('MFS_ERRNO', `${req.op} refused: ${this.stoppingReason}`, { errno: 'EROFS', context });
    if (this.fencedReason) throw new MirrorError('MFS_FENCED', `${req.op} refused: ${this.fencedReason}`, { context });
    const inSync = this.opts.members.filter((m) => m.inStep).length;
    if (inSync >= this.required) return;
    const behind = this.opts.members.filter((m) => !m.inStep);
    // A peer out of space makes the call fail as out of space, which is what the application can act on.
    const errno = behind.map((m) => m.behindErrno).find((e) => e !== null && RESOURCE_ERRNOS.includes(e)) ?? 'EIO';
    throw new MirrorError(
      'MFS_OUT_OF_STEP',
      `${req.op} refused: ${inSync} of ${this.opts.members.length} peers in sync, ack policy ${describeAckPolicy(this.opts.ackPolicy)} needs ${this.required} (${behind.map((m) => `${m.name}: ${m.behindReason}`).join('; ')}); catch-up runs in the background`,
      { errno, context },
    );
  }

  private async sendEverywhere(req: MutationRequest, payload: Buffer, hold?: BodyHold): Promise<unknown> {
    this.admit(req);
    if (req.op !== 'access') this.opts.commits?.admit(); // atime: nothing an fsync or the state xattr waits for
    const stamped = { ...req, mount: this.opts.mountId, epoch: this.opts.epoch, seq: ++this.seq } as Mutation;
    const local = this.opts.local?.active ? this.opts.local : null;
    const members = this.opts.members;
    const sent = members.map((m) => m.inStep);
    members.forEach((m, i) => {
      if (!sent[i]) m.skippedInFlight++;
    });
    try {
      const pending = members.map((m, i) => (sent[i] ? settle(m.mutate(stamped, payload, hold)) : Promise.resolve(SKIPPED)));
      const [peerOutcomes, localOutcome] = await Promise.all([
        this.required < members.length ? this.enoughOutcomes(pending) : Promise.all(pending),
        local ? settle(local.apply(stamped, payload)) : Promise.resolve(null),
      ]);
      const verdict = this.judge(stamped, peerOutcomes);
      if (verdict.lacking.length > 0) await this.journal(stamped, req, payload, verdict);
      if (this.opts.commits && verdict.authoritative !== null && req.op !== 'access') {
        const routes = members.filter((m, i) => sent[i] && !verdict.lacking.some((l) => l.member === m));
        this.opts.commits.noteAcked(stamped.seq, namesOf(req), routes);
      }
      if (local && localOutcome && !sameOutcome(localOutcome, verdict)) {
        local.disable(`${stamped.op} ${describePaths(stamped)} (seq ${stamped.seq}): local copy ${show(localOutcome)}, peers ${verdict.authoritative ?? 'none committed'}`);
      }
      if (!verdict.decided.ok) throw verdict.decided.error;
      return verdict.decided.result;
    } finally {
      members.forEach((m, i) => {
        if (sent[i]) return;
        m.skippedInFlight--;
        this.catchUp.nudge(m);
      });
    }
  }

  /**
   * With ack quorum or N: every outcome, or, once enough peers committed the
   * same outcome, those that arrive within a short straggler window. A peer
   * that has not answered by then counts as lacking the change (it is
   * journaled for it and it is caught up), so a stopped or slow peer costs the
   * application one short wait rather than the peer timeout on every call.
   */
  private enoughOutcomes(pending: Promise<Outcome>[]): Promise<Outcome[]> {
    return new Promise((resolve) => {
      const results: Array<Outcome | undefined> = pending.map(() => undefined);
      let timer: NodeJS.Timeout | null = null;
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        if (timer) clearTimeout(timer);
        resolve(results.map((r) => r ?? STRAGGLER));
      };
      pending.forEach((p, i) =>
        void p.then((o) => {
          results[i] = o;
          if (results.every((r) => r !== undefined)) return finish();
          if (!timer && !finished && mostAgreeing(results) >= this.required) timer = setTimeout(finish, this.stragglerWindowMs());
        }),
      );
    });
  }

  /** How long to wait for the remaining peers once enough committed: a few times the slowest peer's p99, bounded. */
  private stragglerWindowMs(): number {
    const p99s = this.opts.members.filter((m) => m.inStep).map((m) => m.latencyP99Ms);
    return Math.min(this.peerTimeoutMs, Math.max(STRAGGLER_MIN_MS, 3 * Math.max(0, ...p99s)));
  }

  /**
   * Compare the peers' outcomes. A peer committed a change when it answered
   * with a recorded outcome (success, or a deterministic errno such as ENOENT).
   * The change counts as done when enough peers committed the same outcome
   * and none committed another; every peer that did not commit it, or
   * committed something else, lacks it and gets it through the journal.
   */
  private judge(req: Mutation, outcomes: Outcome[]): Verdict {
    const members = this.opts.members;
    const key = (o: Outcome): string | null => (isProvisional(o) ? PROVISIONAL : o.ok ? 'ok' : isCommittedError(o.error) ? o.error.errno : null);
    const keys = outcomes.map(key);
    // A pure relay's "ok" only says it queued the change; the far mirror's answer comes later.
    // It votes for nothing: it agrees with whatever the peers that applied the change answered.
    const provisional = keys.filter((k) => k === PROVISIONAL).length;
    const committed = keys.filter((k): k is string => k !== null && k !== PROVISIONAL);
    // Success wins: a change applied somewhere is rolled forward everywhere.
    const authoritative = committed.includes('ok') ? 'ok' : (committed[0] ?? (provisional > 0 ? 'ok' : null));
    const inDoubt = outcomes.some((o, i) => !o.ok && keys[i] === null && o !== SKIPPED && isTransportFailure(o.error) && o.error.code !== 'MFS_OUT_OF_STEP');
    const lacking: Verdict['lacking'] = [];
    let fencedBy: MirrorError | null = null;
    outcomes.forEach((o, i) => {
      const m = members[i]!;
      if (o.ok || (keys[i] !== null && keys[i] === authoritative)) return;
      if (o.error.code === 'MFS_FENCED' || o.error.code === 'MFS_NOT_OWNER') {
        this.fence(m, o.error);
        fencedBy = o.error;
        return;
      }
      if (keys[i] !== null) lacking.push({ member: m, kind: 'repair', reason: `answered ${keys[i]} where others committed ${authoritative}`, errno: null });
      else lacking.push({ member: m, kind: 'resend', reason: o.error.message, errno: o.error.errno });
    });
    // Another mount owns the peers: this one acknowledges nothing more, whatever others said
    // (a relay's queued "ok" or a peer not yet taken over must not carry the call).
    if (fencedBy) {
      const e = fencedBy as MirrorError;
      return { decided: { ok: false, error: new MirrorError('MFS_FENCED', `${req.op} ${describePaths(req)}: ${e.message}`, { context: { op: req.op, path: describePaths(req) } }) }, authoritative, lacking };
    }
    // Nothing committed anywhere and nothing in doubt (every peer asked refused it
    // for want of space, say): nothing changed, so there is nothing to roll forward.
    if (authoritative === null && !inDoubt) return { decided: this.failure(req, outcomes, 'not applied anywhere'), authoritative, lacking: [] };
    const agreeing = committed.filter((k) => k === authoritative).length + provisional;
    const disagree = committed.some((k) => k !== authoritative);
    let decided: Outcome;
    if (!disagree && authoritative !== null && agreeing >= this.required) {
      const at = keys.indexOf(authoritative);
      decided = outcomes[at >= 0 ? at : keys.indexOf(PROVISIONAL)]!;
    } else {
      decided = this.failure(req, outcomes, disagree ? 'peers disagree on the outcome' : `${agreeing} of ${members.length} peers committed it, ${this.required} needed`);
    }
    return { decided, authoritative, lacking };
  }

  private failure(req: Mutation, outcomes: Outcome[], why: string): Outcome {
    const errnos = outcomes.map((o) => (o.ok ? null : o.error.errno));
    const detail = this.opts.members.map((m, i) => `${m.name}: ${show(outcomes[i]!)}`).join('; ');
    const errno = RESOURCE_ERRNOS.find((e) => errnos.includes(e)) ?? 'EIO';
    // The peers that did not commit it, by name: each error line names peer, path and errno.
    const peers = this.opts.members.filter((_, i) => !outcomes[i]!.ok).map((m) => m.name);
    this.log.error({ peer: peers.join(',') || null, op: req.op, path: logPathOf(req), seq: req.seq, errno, outcomes: detail }, `operation failed: ${why}`);
    return { ok: false, error: new MirrorError('MFS_ERRNO', `${req.op} ${describePaths(req)}: ${why} (${detail})`, { errno, context: { op: req.op, path: describePaths(req) } }) };
  }

  /**
   * Journal a change some peers lack, durably, before the application hears
   * about it; mark those peers behind and start catching them up. If the
   * journal cannot be written, nothing can promise the change reaches every
   * peer: the mount stops taking changes (loudly).
   */
  private async journal(stamped: Mutation, req: MutationRequest, payload: Buffer, verdict: Verdict): Promise<void> {
    for (const l of verdict.lacking) {
      l.member.markBehind(stamped.seq, l.reason, l.errno, logPathOf(stamped));
      l.member.unjournaled++;
    }
    let recorded = false;
    try {
      await this.opts.journal.record(stamped.seq, req, payload, verdict.authoritative, verdict.lacking.map((l) => ({ peer: l.member.name, kind: l.kind })));
      recorded = true;
    } catch (err) {
      this.fencedReason ??= `the journal could not be written (${(err as Error).message}); changes some peers lack could be lost, so no change is taken`;
      this.log.fatal({ err, seq: stamped.seq }, 'journal write failed: refusing every further change');
      verdict.decided = { ok: false, error: new MirrorError('MFS_ERRNO', `${stamped.op}: journal write failed: ${(err as Error).message}`, { errno: 'EIO' }) };
      // Nothing can bring those peers this change: they stay behind until a remount reconciles the copies.
      for (const l of verdict.lacking) l.member.markLost(stamped.seq, `journal write failed: ${(err as Error).message}`);
    } finally {
      for (const l of verdict.lacking) {
        l.member.unjournaled--;
        if (recorded) this.catchUp.ensure(l.member);
      }
    }
  }

  /** Another mount owns the peers (a lease renewal was refused as fenced). */
  fencedBy(m: Member, err: MirrorError): void {
    this.fence(m, err);
  }

  private fence(m: Member, err: MirrorError): void {
    if (this.fencedReason) return;
    this.fencedReason = `peer ${m.name}: ${err.message}`;
    this.log.error({ peer: m.name, errno: 'EROFS', err: err.message }, 'fenced: another mount owns the peers now; every further change fails with EROFS');
  }

  /** Stop admitting changes (unmount in progress); in-flight ones finish. */
  stopAdmitting(reason: string): void {
    this.stoppingReason ??= reason;
  }

  /** Drop cached answers that this change may make wrong. */
  private forgetCachedAnswers(req: MutationRequest): void {
    if (req.op === 'access') return; // atime only: the name cache takes the new attributes from the answer
    this.readAhead.invalidate();
    if (req.op === 'setxattr' || req.op === 'removexattr') this.absentXattrs.clear();
    else if (subtreesMovedOrRemoved(req).length > 0) for (const name of namesOf(req)) this.absentXattrs.forget(name);
    else if (NAMESPACE_OPS.has(req.op)) for (const name of namesOf(req)) this.absentXattrs.forgetName(name);
  }

  /** Whether getattr of this name is known to answer ENOENT without asking anyone (the name cache; not with a local copy, which answers itself). */
  nameKnownAbsent(path: string): boolean {
    if (this.opts.local?.active || RESERVED_ROOT_NAMES.has(path)) return false;
    return this.names.lookup(path) === ABSENT;
  }

  /** Whether getxattr of this name is known to answer ENODATA without asking anyone (AbsentXattrs). */
  xattrKnownAbsent(path: string, name: string): boolean {
    return this.absentXattrs.isAbsent(path, name);
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

  /**
   * A directory's entries and their types, for FUSE readdir (the kernel takes
   * only the type from each): from the local copy's own entries (d_type, no
   * lstat of each; `find` over 5,000 files spent most of its time there) when
   * there is one, else as any read (the name cache, or a peer's listing).
   */
  async listDir(path: string): Promise<EntryType[]> {
    const local = this.opts.local;
    if (local?.active) {
      try {
        return local.listTypes(path);
      } catch (err) {
        throw toMirrorError(err, { op: 'readdir', path });
      }
    }
    const { result } = await this.read<{ entries: Array<{ name: string; stat: WireStat | null }> }>({ op: 'readdir', path, withAttrs: true });
    // null: the entry vanished while the peer listed it.
    return result.entries.flatMap((e) => (e.stat ? [{ name: e.name, type: e.stat.type }] : []));
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
      const buf = Buffer.allocUnsafe(req.length);
      return { result: undefined as T, payload: buf.subarray(0, await this.readAhead.read(req.path, req.offset, req.length, buf)) };
    }
    // The reserved name is the peers' to refuse (EPERM), not the cache's to call absent.
    if (req.op === 'getattr' && !RESERVED_ROOT_NAMES.has(req.path)) {
      const known = this.names.lookup(req.path);
      if (known === ABSENT) throw new MirrorError('MFS_ERRNO', `getattr ${JSON.stringify(req.path)}: no such file or directory`, { errno: 'ENOENT' });
      if (known) return { result: known as T, payload: EMPTY };
    }
    if (req.op === 'readdir' && req.withAttrs) {
      const known = this.names.listed(req.path);
      if (known) return { result: { names: known.map((e) => e.name), entries: known } as T, payload: EMPTY };
      const generation = this.names.generation;
      const out = await this.readFromPeers<{ entries: Array<{ name: string; stat: WireStat | null }> }>(req, undefined, this.identityOrder());
      this.names.noteListing(req.path, out.result.entries, generation);
      return out as CallResult<T>;
    }
    return this.readFromPeers<T>(req, undefined, req.op === 'getattr' ? this.identityOrder() : undefined);
  }

  /**
   * Where attributes come from without a local copy: the first in-sync peer in
   * --peers order, then the others. Inode numbers differ between peers, and the
   * kernel (use_ino) shows the ones we give it: from one peer they are unique and
   * the names of a hard-linked file share one (rsync -H, tar and git rely on both);
   * mixed from two peers, two files could share a number and be taken for links.
   * The answers of changes, whose attributes the name cache keeps, are judged in
   * the same order (the first peer that committed the outcome speaks for it).
   */
  private identityOrder(): Member[] {
    return this.opts.members.filter((m) => m.inStep).sort((a, b) => Number(b.healthy) - Number(a.healthy));
  }

  /**
   * A file's bytes into `dest` (the kernel's buffer, for FUSE): from the local
   * copy when there is one, else through the read-ahead cache. A block cached
   * before this read was issued may be stale only if a change began since;
   * ReadAhead drops those (see read-ahead.ts).
   */
  async readInto(path: string, offset: number, length: number, dest: Buffer): Promise<number> {
    const local = this.opts.local;
    if (local?.active) {
      try {
        return local.readInto(path, offset, length, dest);
      } catch (err) {
        throw toMirrorError(err, { op: 'read', path });
      }
    }
    return this.readAhead.read(path, offset, length, dest);
  }

  /**
   * Read from the fastest healthy in-step peer, failing over to the others.
   * (Spreading the blocks of one sequential read over both peers was measured
   * slower here: every process shares the same two cores.)
   */
  private async readFromPeers<T>(req: ReadRequest, into?: Buffer, order = this.readOrder()): Promise<CallResult<T>> {
    // A peer that is behind may lack changes: never read from it.
    if (order.length === 0) throw new MirrorError('MFS_OUT_OF_STEP', 'no peer is in sync to read from');
    let lastError: unknown;
    for (const member of order) {
      try {
        return await member.call<T>(req, undefined, into && { into });
      } catch (err) {
        if (!isTransportFailure(err)) throw err;
        lastError = err;
      }
    }
    throw lastError ?? new MirrorError('MFS_UNREACHABLE', 'no peer to read from');
  }

  /** Where reads go, in order of preference (read-choice.ts); remembers the first. */
  private readOrder(): Member[] {
    const order = keepReadPeer(this.inSyncByPreference(), this.readPeer);
    this.readPeer = order[0] ?? null;
    return order;
  }

  private inSyncByPreference(exclude?: Member): Member[] {
    return this.opts.members.filter((m) => m.inStep && m !== exclude).sort((a, b) => Number(b.healthy) - Number(a.healthy) || a.latencyP50 - b.latencyP50);
  }

  fastestInSync(exclude?: Member): Member | null {
    return this.inSyncByPreference(exclude)[0] ?? null;
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
      ackPolicy: describeAckPolicy(this.opts.ackPolicy),
      requiredAcks: this.required,
      inFlight: this.inFlight,
      queued: this.scheduler.queued,
      fenced: this.fencedReason,
      localCopy: local ? { dir: local.dir, active: local.active, reason: local.reason } : null,
      ackMode: this.opts.commits ? 'end-to-end' : 'first-hop',
      endToEnd: this.opts.commits ? { executing: this.opts.commits.executingCount, committed: this.opts.commits.committedCount, fsyncWaiting: this.opts.commits.fsyncWaiting } : null,
      peers: this.opts.members.map((m) => m.status(m.inStep ? undefined : this.opts.journal.countFor(m.name))),
    };
  }

  /** Wait (bounded) until no changing operation is in flight. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.inFlight === 0;
  }

  /**
   * Whether every peer is in step and the mount takes changes (not fenced, not
   * unmounting): a reader's access stamps atime only then, so that reads during an
   * outage neither fail a change of their own nor fill the journal with atimes
   * for a peer that is out (access-times.ts).
   */
  get everyPeerInStep(): boolean {
    return this.fencedReason === null && this.stoppingReason === null && this.opts.members.every((m) => m.inStep);
  }

  /** True when every peer has every change (a clean unmount may then settle the peers' histories). */
  get allInSync(): boolean {
    return this.fencedReason === null && this.opts.members.every((m) => m.inStep) && this.opts.journal.peersLacking().length === 0;
  }

  /** The last seq handed out. */
  get lastSeq(): number {
    return this.seq;
  }

  /**
   * Each route's hops as its first hop reports them (a relay lists the hops
   * after it): queue depth and age of the oldest unacknowledged change per
   * relay. Bounded; a route that does not answer says why.
   */
  async routes(): Promise<Record<string, RouteHop[] | { error: string }>> {
    const out: Record<string, RouteHop[] | { error: string }> = {};
    await Promise.all(
      this.opts.members.map(async (m) => {
        try {
          out[m.name] = hopsOf(await m.client.status(ROUTE_STATUS_TIMEOUT_MS));
        } catch (err) {
          out[m.name] = { error: (err as Error).message };
        }
      }),
    );
    return out;
  }

  /** The end-to-end tracker (ack mode end-to-end), or null. */
  get commits(): CommitTracker | null {
    return this.opts.commits ?? null;
  }

  async close(): Promise<void> {
    await this.opts.commits?.stop();
    await this.catchUp.stop();
    await Promise.all(this.opts.members.map((m) => m.close()));
    this.opts.local?.close();
  }
}

const EMPTY = Buffer.alloc(0);

function settle(p: Promise<unknown>): Promise<Outcome> {
  return p.then(
    (result) => ({ ok: true as const, result }),
    (err: unknown) => ({ ok: false as const, error: toMirrorError(err) }),
  );
}

/** Names whose descendants a change moves or removes: whatever is cached under them goes. */
function subtreesMovedOrRemoved(req: MutationRequest): string[] {
  if (req.op === 'rename') return [req.from, req.to];
  if (req.op === 'rmdir') return [req.path];
  return [];
}

/** The names a successful change made and removed (for the listings the mount keeps). */
function namesMadeAndRemoved(req: MutationRequest, stats?: Record<string, WireStat>): { created: string[]; madeEmpty?: string[]; removed: string[] } {
  switch (req.op) {
    case 'mkdir':
      return { created: [req.path], madeEmpty: [req.path], removed: [] };
    case 'create':
    case 'symlink':
    case 'link':
    case 'mknod':
      return { created: [req.path], removed: [] };
    case 'unlink':
    case 'rmdir':
      return { created: [], removed: [req.path] };
    case 'rename':
      if (req.exchange) return { created: [], removed: [] }; // both names stay, each naming the other's file
      // `from` still there afterwards: it and `to` were links to one file, and rename(2) did nothing.
      return { created: [req.to], removed: req.from === req.to || (stats && req.from in stats) ? [] : [req.from] };
    default:
      return { created: [], removed: [] };
  }
}

/** Does the local copy's outcome match what the peers committed? */
function sameOutcome(local: Outcome, verdict: Verdict): boolean {
  if (verdict.authoritative === null) {
    // In doubt everywhere and journaled: it will be rolled forward, as the local copy already has it.
    if (verdict.lacking.length > 0) return local.ok;
    return !local.ok && !verdict.decided.ok && local.error.errno === verdict.decided.error.errno;
  }
  return (local.ok ? 'ok' : local.error.errno) === verdict.authoritative;
}

/** An error answer the peer recorded as the operation's outcome (it will answer a re-send the same way). */
function isCommittedError(e: MirrorError): boolean {
  return e.code === 'MFS_ERRNO' && isDeterministic(e.errno);
}

function show(o: Outcome): string {
  return o.ok ? 'ok' : `${o.error.errno} (${o.error.message})`;
}
