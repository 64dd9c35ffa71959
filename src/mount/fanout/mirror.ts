import type { Logger } from '../../log.js';
import { assert } from '../../assert.js';
import { MirrorError, isRecordedOutcome } from '../../protocol/errors.js';
import { NAMESPACE_OPS, describePaths, logPathOf, type MountDurability, type Mutation, type MutationRequest, type ReadRequest, type WireStat, type WireStatfs } from '../../protocol/ops.js';
import type { EntryType } from '../../store/reads.js';
import type { BodyHold, CallResult } from '../../client/peer-client.js';
import { namesOf, orderingClaims } from '../../ordering/claims.js';
import { Scheduler, claimsFor } from '../../ordering/scheduler.js';
import { AbsentXattrs } from '../cache/absent-xattrs.js';
import { forgetCachedAnswers, namesMadeAndRemoved, subtreesMovedOrRemoved } from '../cache/change-effects.js';
import { NameCache, type ChangeToken } from '../cache/name-cache.js';
import { ActivityLog } from '../recovery/activity-log.js';
import { CatchUp } from '../recovery/catch-up.js';
import type { Journal } from '../recovery/journal.js';
import type { LocalCopy } from '../peers/local-copy.js';
import type { Member, MemberStatus } from '../peers/member.js';
import { SKIPPED, describeAckPolicy, judge, requiredAcks, sameOutcome, settle, show, type AckPolicy, type FailureLine, type Verdict } from './ack-policy.js';
import { AdmissionGate, admissionRefusal } from './admission.js';
import type { CommitTracker } from './commit-tracker.js';
import { ReadPath } from './read-path.js';
import { routeStatus, type RouteHop } from './route-status.js';
import { Backlog, DEFAULT_MAX_LAG, type MaxLag, type PeerLag } from './lag.js';
import { localCopyHandle, peerCopy } from '../peers/copies.js';
import type { RepairSource } from '../recovery/catch-up.js';
import { enoughOutcomes, stragglerWindowMs } from './straggler.js';

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
  /**
   * The commit level: applied (default; a change returns once applied on the peers, durable on
   * a barrier), sync (`-o sync`: every change durable before it returns) or dirsync (`-o dirsync`:
   * changes to names durable before they return).
   */
  commitLevel?: CommitLevel;
  /** Ack policy none (`--ack 0`): how far the peers may lag before a change waits. */
  maxLag?: MaxLag;
  /** Bound on an fsync waiting for the peers to catch up in the asynchronous mode (then EIO). */
  barrierWaitMs?: number;
  log: Logger;
}

export type CommitLevel = 'applied' | 'sync' | 'dirsync';

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
  /** applied: a change returns once applied on the peers, durable on an fsync; sync: every change durable before it returns; dirsync: changes to names. */
  commitLevel: CommitLevel;
  /** Durability barriers (fsync, fdatasync, fsyncdir) sent to the peers, those that failed, and those waiting now. */
  barriers: { sent: number; failed: number; waiting: number };
  /** The asynchronous mode (`--ack 0`): per peer, the changes it lacks, their bytes and the oldest's age; and the limit. Null otherwise. */
  lag: { max: MaxLag; waiting: number; peers: Record<string, PeerLag> } | null;
  endToEnd: { executing: number; committed: number; fsyncWaiting: number } | null;
  peers: MemberStatus[];
}

/**
 * The mirror controller: the heart of the mount. A changing operation waits
 * at the admission gate (admission.ts), is ordered (scheduler.ts), stamped
 * with (mount, epoch, seq), sent to every in-sync peer in parallel and applied
 * to the local copy, and answered when the ack policy is met (all by default;
 * quorum or N; ack-policy.ts, straggler.ts). A peer that lacks a change (did
 * not answer in time, ran out of space, answered differently, or was behind
 * already) gets it through the journal and catch-up, and the journal commit
 * happens before the application is answered. An operation that reached some
 * peers but failed is rolled forward the same way: the copies converge on one
 * history. Reads go through read-path.ts.
 */
export class MirrorController {
  private readonly scheduler = new Scheduler();
  private readonly admission = new AdmissionGate();
  private readonly absentXattrs = new AbsentXattrs();
  private readonly names = new NameCache();
  private readonly reads: ReadPath;
  private readonly log: Logger;
  private readonly catchUp: CatchUp;
  private readonly required: number;
  private seq: number;
  private inFlight = 0;
  private stoppingReason: string | null = null;
  private fencedReason: string | null = null;
  private readonly barriers = { sent: 0, failed: 0, waiting: 0 };
  /** The asynchronous mode's backlog (lag.ts); null unless the ack policy is none. */
  private readonly backlog: Backlog | null;
  /** Changes waiting for the peers to come back under --max-lag. */
  private lagWaiting = 0;
  /** The names changed since the peers' durable points, to repair a peer whose machine went down (null in the asynchronous mode). */
  private readonly activity: ActivityLog | null;

  constructor(private readonly opts: ControllerOptions) {
    this.log = opts.log;
    this.seq = opts.lastSeq;
    this.required = requiredAcks(opts.ackPolicy, opts.members.length);
    this.backlog = opts.ackPolicy.kind === 'none' ? new Backlog(opts.members.map((m) => m.name), opts.maxLag ?? DEFAULT_MAX_LAG) : null;
    assert(this.backlog === null || opts.local !== null, 'the asynchronous mode has a local copy to decide outcomes');
    this.activity = this.backlog ? null : new ActivityLog(opts.lastSeq, () => opts.members);
    this.reads = new ReadPath({ members: opts.members, local: opts.local, names: this.names, absentXattrs: this.absentXattrs });
    this.catchUp = new CatchUp({
      mountId: opts.mountId,
      epoch: opts.epoch,
      journal: opts.journal,
      log: opts.log,
      withClaims: (names, fn) => this.withClaims(names, fn),
      repairSource: (exclude) => this.repairSource(exclude),
      follow: this.backlog !== null,
      suspectNames: (m, durableThrough) => this.activity?.suspectNames(m.name, durableThrough) ?? null,
      lastSeq: () => this.seq,
      onDelivered: (m, seq) => this.backlog?.delivered(m.name, seq),
      onFenced: (m, err) => this.fence(m, err),
      admission: this.admission,
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

  /**
   * A peer's lease answer says it restarted after its machine went down: it is no longer
   * in step (it refuses every change anyway), and catch-up repairs it without waiting for
   * the next change to find out.
   */
  peerUnclean(m: Member): void {
    if (!m.inStep || this.backlog) return;
    m.markBehind(this.seq, 'it restarted after its machine went down (unclean): it may have lost changes after its durable point', 'EIO');
    this.catchUp.ensure(m);
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
        for (const name of names) this.absentXattrs.forget(name); // a repair may have set or removed xattrs there
      }
    });
  }

  /** `hold`: kept by every send of the payload until its stream closes (a payload in a reused buffer, see PooledBytes). */
  async mutate(req: MutationRequest, payload: Buffer = EMPTY, hold?: BodyHold): Promise<unknown> {
    // A change must start within this bound or not at all: the kernel's request
    // (fuse-native's timeout) must never be answered "failed" for a change that
    // is applied afterwards.
    const deadline = Date.now() + this.opts.startLimitMs;
    this.inFlight++;
    try {
      // Checked before any await: a change that finds the gate open passes it at once.
      while (this.admission.isClosed) {
        if (!(await this.admission.opened(deadline))) throw this.tooLate(req, 'waited for a peer to join');
      }
      // The asynchronous mode: the peers may lag only so far (--max-lag) before changes wait for them.
      if (this.backlog && req.op !== 'access') await this.waitUnderLag(req, deadline);
      this.admission.pass();
      try {
        return await this.scheduler.run(orderingClaims(req), () => {
          if (Date.now() > deadline) throw this.tooLate(req, 'waited for an earlier change to the same names');
          return this.fanOut(req, payload, hold);
        });
      } finally {
        // A catch-up holding the gate waits for the last admitted change to finish.
        if (this.admission.leave()) for (const m of this.opts.members) this.catchUp.nudge(m);
      }
    } finally {
      this.inFlight--;
    }
  }

  private tooLate(req: MutationRequest, why: string): MirrorError {
    const limitMs = this.opts.startLimitMs;
    // No peer was asked: the line names none (peer null), as the log's rule for error lines allows.
    this.log.error({ peer: null, op: req.op, path: logPathOf(req), errno: 'EIO', limitMs }, `change refused before it started: it ${why} too long`);
    return new MirrorError('MFS_ERRNO', `${req.op} ${describePaths(req)}: not started within ${limitMs} ms (it ${why}); nothing was changed`, { errno: 'EIO' });
  }

  /** Changes that passed the admission gate and have not finished (queued for claims, or running). */
  get changesPastGate(): number {
    return this.admission.changesPastGate;
  }

  private async fanOut(req: MutationRequest, payload: Buffer, hold?: BodyHold): Promise<unknown> {
    const caches = { readAhead: this.reads.readAhead, absentXattrs: this.absentXattrs };
    // Before sending and again after the outcome: a read that ran meanwhile may
    // have fetched the state before the change, and must not be kept.
    forgetCachedAnswers(req, caches);
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
      forgetCachedAnswers(req, caches);
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

  private async sendEverywhere(req: MutationRequest, payload: Buffer, hold?: BodyHold): Promise<unknown> {
    const { members, ackPolicy } = this.opts;
    const refusal = admissionRefusal(req, { stoppingReason: this.stoppingReason, fencedReason: this.fencedReason, members, ackPolicy, required: this.required });
    if (refusal) throw refusal;
    if (req.op !== 'access') this.opts.commits?.admit(); // atime: nothing an fsync or the state xattr waits for
    // The commit level (ops.ts commitLevel): a `-o sync` mount makes every change durable (an atime update need not be).
    const level = this.opts.commitLevel ?? 'applied';
    const durable = req.durable === true || (level === 'sync' && req.op !== 'access') || (level === 'dirsync' && NAMESPACE_OPS.has(req.op));
    const stamped = { ...req, durable: durable || undefined, mount: this.opts.mountId, epoch: this.opts.epoch, seq: this.nextSeq() } as Mutation;
    if (this.backlog) return this.sendAsync(stamped, req, payload, this.backlog);
    if (req.op !== 'access') this.activity?.note(stamped.seq, namesOf(req)); // an atime alone is not repaired
    const local = this.opts.local?.active ? this.opts.local : null;
    const sent = members.map((m) => m.inStep);
    members.forEach((m, i) => {
      if (!sent[i]) m.skippedInFlight++;
    });
    try {
      const pending = members.map((m, i) => (sent[i] ? settle(m.mutate(stamped, payload, hold)) : Promise.resolve(SKIPPED)));
      const windowMs = () => stragglerWindowMs(members, this.opts.peerTimeoutMs);
      const [peerOutcomes, localOutcome] = await Promise.all([
        this.required < members.length ? enoughOutcomes(pending, this.required, windowMs) : Promise.all(pending),
        local ? settle(local.apply(stamped, payload)) : Promise.resolve(null),
      ]);
      const { verdict, fencedAt, failure } = judge(stamped, peerOutcomes, this.required, members.map((m) => m.name));
      for (const f of fencedAt) this.fence(members[f.at]!, f.error);
      if (failure) this.logFailure(stamped, failure);
      // The commit level goes with it: a peer brought the change later applies it as durably.
      if (verdict.lacking.length > 0) await this.journal(stamped, durable ? { ...req, durable: true } : req, payload, verdict);
      if (this.opts.commits && verdict.authoritative !== null && req.op !== 'access') {
        const routes = members.filter((_, i) => sent[i] && !verdict.lacking.some((l) => l.at === i));
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
   * fsync, fdatasync or fsyncdir through the mount: the entry at `path` is on
   * stable storage on the peers the ack policy requires when it resolves, as a
   * local file system would have it (each peer in step flushes that file or
   * directory; one that lost it since flushes everything). With path null
   * (`mirrorfs sync`) every change so far is. A peer behind does
   * not count (it gets every change it lacks from the journal, and flushes it
   * like any other). Fails with EIO, naming the peers, when too few flushed.
   */
  async barrier(path: string | null, datasync = false): Promise<void> {
    const { members, mountId } = this.opts;
    // On a `-o sync` mount every change was durable on the peers before it returned: nothing to flush.
    if (this.opts.commitLevel === 'sync' && !this.backlog) return;
    this.barriers.sent++;
    if (this.backlog) await this.waitCaughtUp(path, this.seq);
    // The asynchronous mode: every peer, once it has everything up to now. Otherwise those in step.
    const inStep = this.backlog ? [...members] : members.filter((m) => m.inStep);
    const required = this.backlog ? members.length : this.required;
    // No path (mirrorfs sync): each peer flushes everything it applied.
    const request = path === null ? { op: 'fsync' as const, mount: mountId } : { op: 'fsync' as const, mount: mountId, path, datasync };
    // Bounded by the fsync timeout, not the peer timeout: a flush may take long under much dirty data, and a spurious EIO from fsync is fatal to a database.
    const bound = this.opts.barrierWaitMs ?? 30_000;
    const outcomes = await Promise.all(inStep.map((m) => settle(m.call<MountDurability>(request, undefined, undefined, bound).then((r) => m.noteDurability(r.result)))));
    const flushed = outcomes.filter((o) => o.ok).length;
    const failures = outcomes.flatMap((o, i) => (o.ok ? [] : [`${inStep[i]!.name}: ${o.error.message}`]));
    if (flushed >= required) {
      if (failures.length > 0) this.log.warn({ path, failures }, 'fsync: a peer did not flush; enough others did for the ack policy');
      return;
    }
    this.barriers.failed++;
    const behind = this.backlog ? [] : members.filter((m) => !m.inStep).map((m) => `${m.name}: behind (${m.behindReason})`);
    const why = [...failures, ...behind].join('; ');
    this.log.error({ peer: null, op: 'fsync', path, errno: 'EIO', flushed, required, why }, 'fsync failed: too few peers made the changes durable');
    throw new MirrorError('MFS_ERRNO', `fsync ${JSON.stringify(path)}: ${flushed} of ${members.length} peers flushed, ack policy ${describeAckPolicy(this.opts.ackPolicy)} needs ${required} (${why})`, { errno: 'EIO' });
  }

  /** The asynchronous mode's fsync: wait (bounded) until every peer has every change up to seq. */
  private async waitCaughtUp(path: string | null, seq: number): Promise<void> {
    const backlog = this.backlog!;
    const limitMs = this.opts.barrierWaitMs ?? 30_000;
    const deadline = Date.now() + limitMs;
    this.barriers.waiting++;
    try {
      while (!backlog.settledThrough(seq)) {
        if (Date.now() > deadline) {
          this.barriers.failed++;
          const lags = this.opts.members.map((m) => `${m.name}: ${backlog.lagOf(m.name).ops} changes behind`).join('; ');
          this.log.error({ peer: null, op: 'fsync', path, errno: 'EIO', seq, limitMs, lags }, 'fsync failed: the peers did not catch up in time');
          throw new MirrorError('MFS_ERRNO', `fsync ${JSON.stringify(path)}: the peers did not receive every change up to seq ${seq} within ${limitMs} ms (${lags})`, { errno: 'EIO' });
        }
        await backlog.changed(Math.min(200, Math.max(1, deadline - Date.now())));
      }
    } finally {
      this.barriers.waiting--;
    }
  }

  /**
   * The asynchronous mode (`--ack 0`, patent para. 47): the local copy applies
   * the change and its outcome is the answer; the change is journaled durably
   * for every peer before the call returns, and catch-up brings it to them in
   * order, as fast as they take it (catch-up.ts, follow mode).
   */
  private async sendAsync(stamped: Mutation, req: MutationRequest, payload: Buffer, backlog: Backlog): Promise<unknown> {
    const local = this.opts.local!;
    if (!local.active) {
      throw new MirrorError('MFS_ERRNO', `${req.op} ${describePaths(req)}: the asynchronous mode decides each change on the local copy, which is disabled (${local.reason ?? 'unknown'}); unmount and mount again`, { errno: 'EIO' });
    }
    // Counted before anything is awaited, so the backlog holds seqs in order (fsync's barrier relies on it).
    backlog.add(stamped.seq, payload.length);
    const outcome = await settle(local.apply(stamped, payload));
    const authoritative = outcome.ok ? 'ok' : isRecordedOutcome(outcome.error) ? outcome.error.errno : null;
    if (authoritative === null) {
      // The local copy failed for a passing reason (out of space, I/O): nothing was applied, nothing is sent.
      for (const m of this.opts.members) backlog.delivered(m.name, stamped.seq);
      throw outcome.ok ? new MirrorError('MFS_INTERNAL') : outcome.error;
    }
    const verdict: Verdict = {
      decided: outcome,
      authoritative,
      lacking: this.opts.members.map((m, at) => ({ at, kind: 'resend' as const, reason: 'asynchronous mode', errno: null })),
    };
    const recorded = await this.journal(stamped, stamped.durable ? { ...req, durable: true } : req, payload, verdict, true);
    // Not journaled (the journal failed; the mount takes no more changes): nothing will bring it, so nothing waits for it.
    if (!recorded) for (const m of this.opts.members) backlog.delivered(m.name, stamped.seq);
    if (!verdict.decided.ok) throw verdict.decided.error;
    return verdict.decided.result;
  }

  /** Wait (bounded by the change's start limit) until every peer is back under --max-lag. */
  private async waitUnderLag(req: MutationRequest, deadline: number): Promise<void> {
    const backlog = this.backlog!;
    let why = backlog.overLimit();
    if (why === null) return;
    this.lagWaiting++;
    try {
      while (why !== null) {
        if (Date.now() > deadline) throw this.tooLate(req, `waited for the peers to catch up: ${why}`);
        await backlog.changed(Math.min(200, Math.max(1, deadline - Date.now())));
        why = backlog.overLimit();
      }
    } finally {
      this.lagWaiting--;
    }
  }

  /** A copy to repair a peer's names from: an in-sync peer, else (or in the asynchronous mode, first) the local copy, which has every change while it is active. */
  private repairSource(exclude: Member): RepairSource | null {
    const local = this.opts.local?.active ? { name: 'local copy', copy: () => localCopyHandle(this.opts.local!) } : null;
    if (this.backlog && local) return local;
    const m = this.fastestInSync(exclude);
    // No peer in step (every one restarted uncleanly, say): the local copy has every change too.
    return m ? { name: m.name, copy: () => peerCopy(m, this.opts.mountId, this.opts.epoch) } : local;
  }

  /** The seq of the change being stamped: one past the last, so seqs only grow (peers apply each (mount, seq) once). */
  private nextSeq(): number {
    const next = this.seq + 1;
    assert(Number.isSafeInteger(next) && next > this.seq, "the mount's seq only grows when assigned");
    this.seq = next;
    return next;
  }

  private logFailure(req: Mutation, f: FailureLine): void {
    this.log.error({ peer: f.peer, op: req.op, path: logPathOf(req), seq: req.seq, errno: f.errno, outcomes: f.outcomes }, `operation failed: ${f.why}`);
  }

  /**
   * Journal a change some peers lack, durably, before the application hears
   * about it; mark those peers behind and start catching them up. If the
   * journal cannot be written, nothing can promise the change reaches every
   * peer: the mount stops taking changes (loudly).
   */
  private async journal(stamped: Mutation, req: MutationRequest, payload: Buffer, verdict: Verdict, following = false): Promise<boolean> {
    const lacking = verdict.lacking.map((l) => ({ ...l, member: this.opts.members[l.at]! }));
    for (const l of lacking) {
      // The asynchronous mode: every peer follows from the journal; that is not a fault to log.
      if (following) l.member.follow();
      else l.member.markBehind(stamped.seq, l.reason, l.errno, logPathOf(stamped));
      l.member.unjournaled++;
    }
    let recorded = false;
    try {
      await this.opts.journal.record(stamped.seq, req, payload, verdict.authoritative, lacking.map((l) => ({ peer: l.member.name, kind: l.kind })));
      recorded = true;
    } catch (err) {
      this.fencedReason ??= `the journal could not be written (${(err as Error).message}); changes some peers lack could be lost, so no change is taken`;
      this.log.fatal({ err, seq: stamped.seq }, 'journal write failed: refusing every further change');
      verdict.decided = { ok: false, error: new MirrorError('MFS_ERRNO', `${stamped.op}: journal write failed: ${(err as Error).message}`, { errno: 'EIO' }) };
      // Nothing can bring those peers this change: they stay behind until a remount reconciles the copies.
      for (const l of lacking) l.member.markLost(stamped.seq, `journal write failed: ${(err as Error).message}`);
    } finally {
      for (const l of lacking) {
        l.member.unjournaled--;
        if (recorded) this.catchUp.ensure(l.member);
      }
    }
    return recorded;
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

  /** Whether getattr of this name is known to answer ENOENT without asking anyone (read-path.ts). */
  nameKnownAbsent(path: string): boolean {
    return this.reads.nameKnownAbsent(path);
  }

  /** Whether getxattr of this name is known to answer ENODATA without asking anyone (read-path.ts). */
  xattrKnownAbsent(path: string, name: string): boolean {
    return this.reads.xattrKnownAbsent(path, name);
  }

  /** A read: from the local copy when there is one, else from the healthiest, fastest peer (read-path.ts). */
  read<T = unknown>(req: ReadRequest): Promise<CallResult<T>> {
    return this.reads.read<T>(req);
  }

  /** A directory's entries and their types, for FUSE readdir (read-path.ts). */
  listDir(path: string): Promise<EntryType[]> {
    return this.reads.listDir(path);
  }

  /** A file's bytes into `dest` (the kernel's buffer, for FUSE; read-path.ts). */
  readInto(path: string, offset: number, length: number, dest: Buffer): Promise<number> {
    return this.reads.readInto(path, offset, length, dest);
  }

  fastestInSync(exclude?: Member): Member | null {
    return this.reads.fastestInSync(exclude);
  }

  /** Space as the peers see it (where ENOSPC is decided): the tightest in-step peer's figures. */
  statfs(): Promise<WireStatfs> {
    return this.reads.statfs();
  }

  status(): ControllerStatus {
    const { local, commits } = this.opts;
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
      ackMode: commits ? 'end-to-end' : 'first-hop',
      commitLevel: this.opts.commitLevel ?? 'applied',
      barriers: { ...this.barriers },
      lag: this.backlog ? { max: this.backlog.max, waiting: this.lagWaiting, peers: Object.fromEntries(this.opts.members.map((m) => [m.name, this.backlog!.lagOf(m.name)])) } : null,
      endToEnd: commits ? { executing: commits.executingCount, committed: commits.committedCount, fsyncWaiting: commits.fsyncWaiting } : null,
      peers: this.opts.members.map((m) => m.status(m.inStep ? undefined : this.opts.journal.countFor(m.name))),
    };
  }

  /** Wait (bounded) until no changing operation is in flight. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    // The asynchronous mode: give the peers the time left to take what they lack (the journal keeps the rest).
    while (this.backlog && !this.backlog.empty && Date.now() < deadline) await this.backlog.changed(100);
    return this.inFlight === 0 && (this.backlog?.empty ?? true);
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
    if (this.backlog) return this.fencedReason === null && this.backlog.empty && this.opts.journal.peersLacking().length === 0;
    return this.fencedReason === null && this.opts.members.every((m) => m.inStep) && this.opts.journal.peersLacking().length === 0;
  }

  /** The last seq handed out. */
  get lastSeq(): number {
    return this.seq;
  }

  /** Each route's hops as its first hop reports them (route-status.ts). */
  routes(): Promise<Record<string, RouteHop[] | { error: string }>> {
    return routeStatus(this.opts.members);
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
