import type { Logger } from '../../log.js';
import { AssertionFailure } from '../../assert.js';
import { MirrorError, isFenced, isRecordedOutcome, isTransportFailure, toMirrorError } from '../../protocol/errors.js';
import type { Mutation, ResendAnswer, UncleanRestart } from '../../protocol/ops.js';
import { peerCopy } from '../peers/copies.js';
import type { Journal, JournalEntry } from './journal.js';
import { FOLLOWING, type Member } from '../peers/member.js';
import type { CopyHandle } from '../../store/copy-tree.js';
import { makeEqual } from '../../store/copy-tree.js';
import { namesOf, resendClaims } from '../../ordering/claims.js';
import { Scheduler, type Claim } from '../../ordering/scheduler.js';
import { Limiter } from '../../ordering/limiter.js';

export interface CatchUpDeps {
  mountId: string;
  epoch: number;
  journal: Journal;
  log: Logger;
  /** Run fn holding the mount's ordering claims on these names (live changes to them wait). */
  withClaims: <T>(names: string[], fn: () => Promise<T>) => Promise<T>;
  /** A copy other than `exclude` that has every change, to copy names from for repairs, or null. */
  repairSource: (exclude: Member) => RepairSource | null;
  /** The asynchronous mode: peers never join; their loops keep bringing changes as they are journaled. */
  follow?: boolean;
  /**
   * The names a peer whose machine went down may hold wrongly (changed after its durable
   * point: activity-log.ts), or null when they are not all known (then only a remount's
   * full resync repairs it).
   */
  suspectNames?: (m: Member, durableThrough: number) => string[] | null;
  /** The last seq stamped so far (a repaired peer's history is settled through it when it joins). */
  lastSeq?: () => number;
  /** A journaled change reached the peer (or was repaired there). */
  onDelivered?: (m: Member, seq: number) => void;
  /** A peer said another mount owns it now. */
  onFenced: (member: Member, err: MirrorError) => void;
  /** The mount's admission gate (fanout/admission.ts), closed for the last step of joining. */
  admission: Admission;
  /** Bound on waiting for changes in flight to finish. */
  quietTimeoutMs: number;
}

/** What catch-up needs of the mount's admission gate (an interface: recovery/ does not import fanout/). */
export interface Admission {
  /** Stop new changes from starting until the returned function is called (once). */
  hold(): () => void;
  /** Changes admitted past the gate that have not finished (queued for their claims, or running). */
  readonly changesPastGate: number;
}

/** A copy that has every change: an in-sync peer, or the local copy (the asynchronous mode). */
export interface RepairSource {
  name: string;
  copy: () => CopyHandle;
}

export interface DrainProgress {
  ops: number;
  bytes: number;
}

/**
 * Changes go to the peer many to a call (`resend`): one frame, one answer and one round trip
 * for up to GROUP changes in a row from the journal, instead of one each. Bounded so the call
 * stays well inside a frame (header and payload) and the peer's bound on a call's time.
 */
const GROUP = 32;
const GROUP_BYTES = 1024 * 1024;
const GROUP_HEADER_BYTES = 32 * 1024;
/**
 * Calls sent at once. The peer applies a call's changes one after another; several calls at
 * once keep it busy (its creates run on the thread pool) and cover a long link's round trip.
 */
const SENDING = 16;
/**
 * Changes taken from the journal and not finished: sent, or waiting for an earlier
 * conflicting change (a write waits for its file's create) or for a sending slot. Bounded
 * in bytes too: payloads of up to 4 MiB wait here.
 */
const QUEUED = 512;
const QUEUED_BYTES = 64 * 1024 * 1024;
const BATCH = 256;
const MIN_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 1000;

/**
 * Catch-up (docs/ARCHITECTURE.md, "Catch-up and roll-forward"): for each peer
 * that is behind, a loop that waits for it to answer, then sends it every
 * journaled change it lacks in seq order (the same operation with the same
 * seq, so the peer applies each exactly once), while new changes keep being
 * journaled for it. When nothing is left and no change that skipped it is
 * still in flight, it is in sync again and receives changes directly.
 *
 * Order: a change is sent only after every earlier journaled change that
 * touches one of its names was committed by the peer (a Scheduler over the
 * same claims the mount uses), so the peer applies conflicting changes in the
 * order every other copy did; the others commute.
 */
export class CatchUp {
  private readonly loops = new Map<Member, Promise<void>>();
  private readonly wakers = new Map<Member, () => void>();
  /** Loops backing off after a failure: woken only by stop(), not by new changes. */
  private readonly backingOff = new Map<Member, () => void>();
  /** Per peer: names it holds differently, and the journaled changes deferred until they are copied. */
  private readonly deferred = new Map<Member, { names: NameSet; seqs: Set<number> }>();
  private stopped = false;
  /** Peers whose catch-up met a broken invariant (a bug): not retried, so the bug is not hidden. */
  private readonly halted = new Set<Member>();
  /** Peers only a remount can repair (data replaced, or unclean): not caught up, not asked again for each change. */
  private readonly parked = new Set<Member>();
  /** Unclean peers being repaired while the mount runs: `clean` once their suspect names are copied, as they join. */
  private readonly repairing = new Set<Member>();

  constructor(private readonly deps: CatchUpDeps) {}

  /** Make sure a loop is bringing this peer what it lacks. */
  ensure(member: Member): void {
    if (member.isLost) return; // it lacks something the journal does not hold
    if (this.halted.has(member)) return; // a broken invariant stopped its catch-up: until the mount restarts
    if (this.parked.has(member)) return; // only a remount repairs it (status says why)
    if (this.stopped || this.loops.has(member)) {
      this.wakers.get(member)?.();
      return;
    }
    const loop = this.loop(member).finally(() => this.loops.delete(member));
    this.loops.set(member, loop);
  }

  /** Something changed for this peer (a new journal entry, a change in flight finished). */
  nudge(member: Member): void {
    this.wakers.get(member)?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of [...this.wakers.values(), ...this.backingOff.values()]) wake();
    await Promise.all(this.loops.values());
  }

  private async loop(m: Member): Promise<void> {
    let backoffMs = MIN_BACKOFF_MS;
    let probed = false;
    while (!this.stopped && !m.inStep) {
      try {
        if (!probed) {
          const hello = await m.client.handshake(this.deps.mountId, this.deps.epoch);
          m.markConnected();
          const known = this.deps.journal.peerId(m.name);
          if (known !== null && hello.peer.id !== known) {
            // Its data was replaced: journaled changes would land on a tree that lacks
            // everything before them. Only a full resync (at the next mount) rebuilds it.
            m.noteCatchingUp(false, `its data was replaced (peer id ${hello.peer.id}, was ${known}); unmount and mount again to rebuild it with a full resync`);
            this.deps.log.error({ peer: m.name, was: known, now: hello.peer.id }, 'peer came back with a new identity (data replaced): not catching it up; remount to resync it');
            this.parked.add(m);
            return;
          }
          if (hello.unclean && !(await this.beginRepair(m, hello.unclean))) return;
          probed = true;
        }
        m.noteCatchingUp(true);
        await this.drain(m);
        backoffMs = MIN_BACKOFF_MS;
        if (this.deps.follow) {
          // Following: names it holds differently are copied from the local copy (which decides
          // every outcome), then the loop waits for the next change.
          if (this.hasDeferred(m)) {
            const source = this.deps.repairSource(m);
            if (!source) throw new MirrorError('MFS_UNREACHABLE', `no copy to repair ${m.name} from`, { context: { peer: m.name } });
            await this.repairDeferred(m, source, true);
          }
          m.noteCatchingUp(true, FOLLOWING);
          if (this.deps.journal.countFor(m.name).ops === 0) await this.pause(m, 1000);
          continue;
        }
        if (this.complete(m) && !this.repairing.has(m)) {
          // Synchronously after the check: the next change admitted goes to the peer directly.
          m.markInSync();
          return;
        }
        // Joining: under a steady stream of changes there is always one in flight that
        // skipped the peer. So new changes wait at the gate (briefly: only those already
        // in flight finish), the last ones are journaled and sent, names the peer holds
        // differently are copied whole from an in-sync peer (whose state is final while
        // the gate is closed), and the peer joins.
        const release = this.deps.admission.hold();
        try {
          // Every change admitted before the gate closed must have finished (and been
          // journaled for the peer if it skipped it); otherwise try again later.
          if (!(await this.waitQuiet(m))) continue;
          await this.drain(m);
          if (this.hasDeferred(m)) {
            const source = this.deps.repairSource(m);
            if (!source) throw new MirrorError('MFS_UNREACHABLE', `no in-sync peer to repair ${m.name} from`, { context: { peer: m.name } });
            await this.repairDeferred(m, source, true);
          }
          if (this.complete(m)) {
            await this.finishRepair(m);
            m.markInSync();
            return;
          }
        } finally {
          release();
        }
      } catch (err) {
        if (err instanceof AssertionFailure) {
          // A bug, not a peer's trouble: retrying would hide it. The peer stays behind (status says why) until the mount restarts.
          this.halted.add(m);
          m.noteCatchingUp(false, `catch-up stopped: ${err.message}`);
          this.deps.log.error({ peer: m.name, err: err.message, stack: err.stack }, 'catch-up stopped: an invariant of mirrorfs is broken (a bug; please report it with this log)');
          return;
        }
        const e = toMirrorError(err);
        if (isFenced(e)) {
          this.deps.onFenced(m, e);
          return;
        }
        probed = probed && !isTransportFailure(e);
        m.noteCatchingUp(false, `catch-up waits: ${e.message}`, isTransportFailure(e) ? null : e.errno);
        this.deps.log.debug({ peer: m.name, err: e.message, retryInMs: backoffMs }, 'catch-up paused');
        // Not cut short by new changes: while a peer is down every change would
        // otherwise start another connection attempt (measured: most of the
        // mount's CPU during an outage went into TLS handshakes to the dead peer).
        await this.pause(m, backoffMs, false);
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
      }
    }
  }

  /** Nothing left for the peer: journal empty, no change that skipped it still in flight, no name to copy. */
  private complete(m: Member): boolean {
    return this.deps.journal.countFor(m.name).ops === 0 && m.skippedInFlight === 0 && m.unjournaled === 0 && !this.hasDeferred(m);
  }

  /**
   * A peer whose machine went down (or whose flush failed): what it applied after its
   * durable point may be lost or half there, and nothing else. When the mount knows every
   * name changed since (activity-log.ts), those names are copied whole from a peer that
   * has every change as it joins (deferred, like names it answered differently), the
   * journal brings it the rest, and it is told `clean` then. Its own session alone may
   * read and change it meanwhile (`repairing`). Otherwise it is parked until a remount
   * repairs it with a verified full resync. False when parked.
   */
  private async beginRepair(m: Member, unclean: UncleanRestart): Promise<boolean> {
    const durableThrough = unclean.durableThrough[this.deps.mountId] ?? 0;
    const why = `${unclean.reason ?? 'its machine went down while it ran'} (durable through seq ${durableThrough})`;
    m.noteDurability(null, true);
    const suspect = this.deps.follow ? null : (this.deps.suspectNames?.(m, durableThrough) ?? null);
    if (suspect === null) {
      m.noteCatchingUp(false, `not exact since ${unclean.since}: ${why}; the names changed since are not all known to this mount, so unmount and mount again to repair it with a verified resync`);
      this.deps.log.error({ peer: m.name, since: unclean.since, reason: unclean.reason ?? null, durableThrough }, 'peer is not exact (unclean: its machine went down, or a flush failed) and this mount does not know every name changed since its durable point: not catching it up; remount to repair it');
      this.parked.add(m);
      return false;
    }
    if (!(await m.client.repairing(this.deps.mountId, this.deps.epoch))) {
      m.noteDurability(null, false); // exact again meanwhile (another repair finished)
      return true;
    }
    const d = this.deferredOf(m);
    for (const name of suspect) d.names.add(name);
    this.repairing.add(m);
    m.noteCatchingUp(true, `repairing after an unclean restart: ${why}; ${suspect.length} names changed since are copied from a peer that has every change`);
    this.deps.log.warn({ peer: m.name, since: unclean.since, reason: unclean.reason ?? null, durableThrough, names: suspect.length }, 'peer is not exact (unclean: its machine went down, or a flush failed): repairing the names changed since its durable point, then it joins');
    return true;
  }

  /** Under the closed gate, with nothing left for it: an unclean peer just repaired is settled and told it is exact. */
  private async finishRepair(m: Member): Promise<void> {
    if (!this.repairing.has(m)) return;
    // Its records after the durable point may be lost or half there: its history is settled
    // through the last change (it has them all now), so no later recovery replays them.
    const through = this.deps.lastSeq?.() ?? 0;
    if (through > 0) await m.client.settle(this.deps.mountId, this.deps.epoch, through);
    await m.client.clean(this.deps.mountId, this.deps.epoch);
    m.repairedAt = performance.now();
    this.repairing.delete(m);
    m.noteDurability(null, false);
    this.deps.log.warn({ peer: m.name, settledThrough: through }, 'peer repaired after its unclean restart: exact again, it serves and counts');
  }

  /** Wait (bounded) until no admitted change is unfinished; true when so. */
  private async waitQuiet(m: Member): Promise<boolean> {
    const deadline = Date.now() + this.deps.quietTimeoutMs;
    const busy = () => this.deps.admission.changesPastGate > 0 || m.skippedInFlight > 0 || m.unjournaled > 0;
    while (busy() && Date.now() < deadline && !this.stopped) await this.pause(m, 20);
    return !busy();
  }

  /** Wait up to ms, or until stopped, or (when nudgeable) nudged. */
  private pause(m: Member, ms: number, nudgeable = true): Promise<void> {
    const wakers = nudgeable ? this.wakers : this.backingOff;
    if (this.stopped) return Promise.resolve(); // stop() came while a handshake ran: nothing would wake this
    return new Promise((resolve) => {
      const timer = setTimeout(wake, ms);
      function wake() {
        clearTimeout(timer);
        wakers.delete(m);
        resolve();
      }
      wakers.set(m, wake);
    });
  }

  /**
   * Send a peer every journaled change it lacks, in seq order: consecutive
   * changes many to a call, several calls at once, calls whose changes
   * conflict in order. Throws on the first failure; what was delivered stays
   * delivered. Used by the loop and at mount time.
   *
   * A change the peer answered differently from the peers that committed it
   * (or journaled as a repair) means the peer holds those names differently.
   * Replaying later changes onto them would build on the wrong state, and
   * copying them now would copy a state that already includes later changes,
   * which would then be replayed again. So such names, and every later change
   * that touches them (or a name above or below them), are deferred: not
   * sent, kept in the journal as repairs, and the names copied whole once, at
   * the end (repairDeferred), from a peer that has everything.
   */
  async drain(m: Member, onProgress?: (p: DrainProgress) => void): Promise<DrainProgress> {
    const order = new Scheduler();
    const sending = new Limiter(SENDING);
    const running = new Set<Promise<void>>();
    let queued = 0;
    let queuedBytes = 0;
    const done: DrainProgress = { ops: 0, bytes: 0 };
    let failure: unknown = null;
    const failed = () => failure !== null || this.stopped;
    let after = 0;
    while (!failed()) {
      const batch = this.deps.journal.lackingFor(m.name, after, BATCH);
      if (batch.length === 0) break;
      after = batch[batch.length - 1]!.seq;
      for (const group of groupsOf(batch)) {
        const bytes = group.reduce((n, e) => n + e.payload.length, 0);
        while (running.size > 0 && (queued + group.length > QUEUED || queuedBytes + bytes > QUEUED_BYTES)) await Promise.race(running);
        if (failed()) break;
        queued += group.length;
        queuedBytes += bytes;
        // The group's changes are consecutive and the peer applies them in order: ordered against
        // other groups by the claims of all of them (a write to a file after its create, say).
        const p: Promise<void> = order
          .run(groupClaims(group), () => this.sendGroup(m, group, sending, failed, (entry) => {
            done.ops++;
            done.bytes += entry.payload.length;
            onProgress?.(done);
          }))
          .catch((err: unknown) => {
            failure ??= err;
          })
          .finally(() => {
            running.delete(p);
            queued -= group.length;
            queuedBytes -= bytes;
          });
        running.add(p);
      }
    }
    await Promise.all(running);
    if (failure !== null) throw failure;
    return done;
  }

  /**
   * Send one group's changes in a `resend` call, deferring those that touch names the peer
   * holds differently. The peer stops after a change it answered differently (its names are
   * deferred now); the rest of the group is judged again and sent in another call.
   */
  private async sendGroup(m: Member, group: JournalEntry[], sending: Limiter, failed: () => boolean, onDelivered: (entry: JournalEntry) => void): Promise<void> {
    const dirty = this.deferredOf(m);
    let pending = group;
    while (pending.length > 0 && !failed()) {
      const toSend: JournalEntry[] = [];
      for (const entry of pending) {
        if (dirty.seqs.has(entry.seq)) continue; // deferred already
        if (entry.kind === 'repair' || namesOf(entry.request).some((n) => dirty.names.related(n))) this.defer(m, entry);
        else toSend.push(entry);
      }
      if (toSend.length === 0) return;
      const changes = toSend.map((entry) => ({
        change: { ...entry.request, mount: this.deps.mountId, epoch: this.deps.epoch, seq: entry.seq } as Mutation,
        bytes: entry.payload.length,
        expect: entry.outcome,
      }));
      const payload = toSend.length === 1 ? toSend[0]!.payload : Buffer.concat(toSend.map((e) => e.payload));
      // A failure while it waited for a slot: not sent (the next drain starts from the journal again).
      const answer = await sending.run(async () => (failed() ? null : m.resend(this.deps.mountId, this.deps.epoch, changes, payload)));
      if (answer === null) return;
      if (answer.outcomes.length > toSend.length || (answer.outcomes.length === 0 && answer.failure === undefined)) {
        throw new MirrorError('MFS_BAD_RESPONSE', `peer ${m.name} answered ${answer.outcomes.length} of ${toSend.length} resent changes, without a failure`, { context: { peer: m.name, op: 'resend' } });
      }
      for (const [i, answered] of answer.outcomes.entries()) {
        const entry = toSend[i]!;
        const outcome = outcomeOf(answered, m.name, entry);
        if (entry.outcome !== null && outcome !== entry.outcome && outcome !== QUEUED_BY_RELAY) {
          // The peer stops after such a change: one that went on applied changes onto names it holds differently.
          if (i < answer.outcomes.length - 1) {
            throw new MirrorError('MFS_BAD_RESPONSE', `peer ${m.name} went on after seq ${entry.seq}, whose outcome differed`, { context: { peer: m.name, op: 'resend' } });
          }
          this.deps.log.warn({ peer: m.name, seq: entry.seq, op: entry.request.op, got: outcome, expected: entry.outcome }, 'catch-up: peer answered differently; its names will be copied from an in-sync peer');
          this.defer(m, entry);
          continue;
        }
        this.delivered(m, entry.seq);
        m.noteCaughtUp(1, entry.payload.length);
        onDelivered(entry);
      }
      if (answer.failure !== undefined) throw MirrorError.fromWire(answer.failure, { peer: m.name, op: toSend[answer.outcomes.length]?.request.op });
      pending = toSend.slice(answer.outcomes.length);
    }
  }

  private deferredOf(m: Member): { names: NameSet; seqs: Set<number> } {
    let d = this.deferred.get(m);
    if (!d) {
      d = { names: new NameSet(), seqs: new Set() };
      this.deferred.set(m, d);
    }
    return d;
  }

  private defer(m: Member, entry: JournalEntry): void {
    const d = this.deferredOf(m);
    for (const name of namesOf(entry.request)) d.names.add(name);
    d.seqs.add(entry.seq);
    if (entry.kind !== 'repair') this.deps.journal.markRepair(m.name, entry.seq); // survives a crash of the mount
  }

  /** Names waiting to be copied whole to this peer. */
  hasDeferred(m: Member): boolean {
    const d = this.deferred.get(m);
    return d !== undefined && (d.seqs.size > 0 || d.names.size > 0);
  }

  /**
   * Copy the deferred names whole from `source` (which must hold every change),
   * then count the deferred changes as delivered. Callers make sure no change
   * runs meanwhile (the gate, or before the mount is up); `withClaims` also
   * holds the names' claims.
   */
  async repairDeferred(m: Member, source: RepairSource, underClaims: boolean): Promise<void> {
    const d = this.deferred.get(m);
    if (!d || (d.seqs.size === 0 && d.names.size === 0)) return;
    let names = d.names.topmost();
    // A file with several names is copied as one file only when all its names are copied in one
    // pass (makeEqual links the later names to the first); its other names may be anywhere in
    // the tree, so a name among them widens the copy to the whole tree (compared by content).
    for (const name of names.length === 1 && names[0] === '' ? [] : names) {
      if (!(await holdsLinkedFile(source.copy(), name))) continue;
      this.deps.log.warn({ peer: m.name, name }, 'catch-up: a name to copy is a file with several names: comparing the whole tree instead');
      names = [''];
      break;
    }
    this.deps.log.warn({ peer: m.name, from: source.name, names: names.slice(0, 20), count: names.length, changes: d.seqs.size }, 'catch-up: copying names the peer holds differently');
    const copy = async () => {
      for (const name of names) await makeEqual(source.copy(), peerCopy(m, this.deps.mountId, this.deps.epoch), name);
    };
    await (underClaims ? this.deps.withClaims(names, copy) : copy());
    for (const seq of d.seqs) this.delivered(m, seq);
    this.deferred.delete(m);
  }

  private delivered(m: Member, seq: number): void {
    this.deps.journal.delivered(m.name, seq);
    this.deps.onDelivered?.(m, seq);
  }
}

/** Consecutive journal entries in groups of at most GROUP changes, GROUP_BYTES of payload and about GROUP_HEADER_BYTES of header. */
function* groupsOf(entries: JournalEntry[]): Generator<JournalEntry[]> {
  let group: JournalEntry[] = [];
  let bytes = 0;
  let header = 0;
  for (const entry of entries) {
    // In bytes, as the frame's limit counts them (a name of CJK characters takes 3 a character).
    const entryHeader = entry.requestBytes + 160; // the stamp, `bytes` and `expect` besides
    if (group.length > 0 && (group.length >= GROUP || bytes + entry.payload.length > GROUP_BYTES || header + entryHeader > GROUP_HEADER_BYTES)) {
      yield group;
      group = [];
      bytes = 0;
      header = 0;
    }
    group.push(entry);
    bytes += entry.payload.length;
    header += entryHeader;
  }
  if (group.length > 0) yield group;
}

/** The claims of all a group's changes: a name any of them holds exclusively is held exclusively. */
function groupClaims(group: JournalEntry[]): Claim[] {
  const exclusive = new Map<string, boolean>();
  for (const entry of group) {
    for (const c of resendClaims(entry.request, entry.payload.length)) exclusive.set(c.path, (exclusive.get(c.path) ?? false) || c.exclusive);
  }
  return [...exclusive].map(([path, excl]) => ({ path, exclusive: excl }));
}

/** 'ok', the errno the peer recorded, or QUEUED_BY_RELAY; anything else (a refusal, a transient error) is thrown: try later. */
function outcomeOf(answered: ResendAnswer['outcomes'][number], peer: string, entry: JournalEntry): string {
  if (answered.ok) return answered.provisional === true ? QUEUED_BY_RELAY : 'ok';
  const e = MirrorError.fromWire(answered.error, { peer, op: entry.request.op });
  if (!isRecordedOutcome(e)) throw e;
  return e.errno;
}

/** Is a file with several names at or below `name`? Read as it comes, up to the first one: the subtree may be the whole tree. */
async function holdsLinkedFile(copy: CopyHandle, name: string): Promise<boolean> {
  for await (const e of copy.entries(name, false)) if (e.inode !== undefined) return true;
  return false;
}

/**
 * Send a change again with its seq: 'ok', or the errno the peer recorded as
 * its outcome. A transport failure or a transient errno is thrown (try later).
 */
export async function resendWithSeq(m: Member, stamped: Mutation, payload: Buffer): Promise<string> {
  try {
    const result = await m.mutate(stamped, payload);
    // A pure relay only queued it: the far mirror's answer is checked by the relay, not here.
    if (typeof result === 'object' && result !== null && (result as { provisional?: unknown }).provisional === true) return QUEUED_BY_RELAY;
    return 'ok';
  } catch (err) {
    const e = toMirrorError(err);
    if (!isRecordedOutcome(e)) throw e;
    return e.errno;
  }
}

/** resendWithSeq's answer when a pure relay queued the change (it agrees with any outcome). */
export const QUEUED_BY_RELAY = '(queued by a relay)';

/**
 * Names a peer holds differently, kept so that "is this name, or one above or
 * below it, among them" is a few set lookups (a repair after an unclean
 * restart may defer many thousands; a pairwise scan per journaled change
 * would stall the event loop).
 */
export class NameSet {
  private readonly names = new Set<string>();
  /** Every proper ancestor of a name held ('' is the root). */
  private readonly ancestors = new Set<string>();

  get size(): number {
    return this.names.size;
  }

  add(name: string): void {
    if (this.names.has(name)) return;
    this.names.add(name);
    for (const a of ancestorsOf(name)) this.ancestors.add(a);
  }

  /** Is `name` held, or a name above or below it? */
  related(name: string): boolean {
    if (this.names.size === 0) return false;
    if (this.names.has(name) || this.ancestors.has(name)) return true; // held, or above one held
    for (const a of ancestorsOf(name)) if (this.names.has(a)) return true; // below one held
    return false;
  }

  /** The names not below another held name (copying a directory copies what is below it). */
  topmost(): string[] {
    return [...this.names].filter((n) => !ancestorsOf(n).some((a) => this.names.has(a))).sort();
  }
}

/** The proper ancestors of a name, nearest first, ending with the root ''; none for the root itself. */
function ancestorsOf(name: string): string[] {
  if (name === '') return [];
  const out: string[] = [];
  for (let i = name.lastIndexOf('/'); i > 0; i = name.lastIndexOf('/', i - 1)) out.push(name.slice(0, i));
  out.push('');
  return out;
}
