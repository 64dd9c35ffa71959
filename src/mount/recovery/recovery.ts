import { issuePullTicket } from '../../security/pull-ticket.js';
import type { Logger } from '../../log.js';
import { MirrorError, toMirrorError } from '../../protocol/errors.js';
import type { HistoryEntry, Mutation, MutationRequest, PeerStatus, ProgressResult, PullProgress, UncleanRestart } from '../../protocol/ops.js';
import { CatchUp, QUEUED_BY_RELAY, resendWithSeq } from './catch-up.js';
import { namesOf } from '../../ordering/claims.js';
import { diffManifests } from './consistency.js';
import { peerCopy } from '../peers/copies.js';
import type { Journal } from './journal.js';
import type { Member } from '../peers/member.js';
import type { ProgressReporter } from './progress.js';
import { makeEqual } from '../../store/copy-tree.js';
import { Refusal } from '../../refusal.js';

/**
 * Mount-time recovery (docs/ARCHITECTURE.md, "Recovery at mount"): before
 * the mount takes a change, bring every peer to one history.
 *
 * 1. Peers whose data was replaced (a new peer id where the journal knew
 *    another), that come back empty with no history of this mount, or that
 *    restarted after their machine went down (unclean: what they applied after
 *    their last flush may be lost or half there), and with --resync-from every
 *    peer but the named one, are rebuilt by a full resync. When every peer is
 *    unclean, the most advanced durable copy is the one kept, and the changes
 *    after its durable point that may be lost are named in the log.
 * 2. The others get what the journal says they lack, in seq order.
 * 3. Changes in doubt (the primary stopped mid-call, so some peers applied a
 *    seq and others did not) are rolled forward: operations without a payload
 *    are re-sent with their seq (taken from a peer's history); writes and
 *    xattr values are copied from a peer that has them, and the seq adopted.
 * 4. Full resyncs run, each verified by content hash afterwards.
 */

export interface RecoveryOptions {
  mountId: string;
  epoch: number;
  members: Member[];
  peerIds: string[];
  progress: ProgressResult[];
  /** Per member: set when that peer restarted after its machine went down (not exact until repaired). */
  unclean?: Array<UncleanRestart | null>;
  journal: Journal;
  log: Logger;
  /** Rebuild every other peer from this one. */
  resyncFrom?: string;
  /** Earlier owners not yet reconciled (a takeover, or one that failed half way): what they left on some peers only is copied to the others. */
  previousOwners?: Array<{ owner: string; epoch: number }>;
  /** Catch-ups and resyncs (the mount's metrics show them). */
  reporter: ProgressReporter;
  /** Comparisons (the check after a resync): said as they go, not shown as a resync. Default: `reporter`. */
  checkReporter?: ProgressReporter;
}

const PAYLOAD_OPS: ReadonlySet<string> = new Set(['write', 'setxattr']);
const HISTORY_PAGE = 10_000;

export async function recover(opts: RecoveryOptions): Promise<void> {
  const { members, journal, log } = opts;
  const previous = opts.previousOwners ?? [];
  // Another mount owned the peers since this one last did: what this mount's journal says
  // the peers lack, and its own changes in doubt, are history that the other owner already
  // reconciled (it copied from the peers' records) and may have changed since. Replaying
  // them would overwrite newer acknowledged data: they are dropped, loudly. This mount's
  // own earlier changes are reconciled like any earlier owner's, from the peers' records.
  const superseded = previous.some((p) => p.owner !== opts.mountId);
  if (superseded) {
    const lacking = journal.peersLacking();
    for (const name of lacking) journal.forgetPeer(name);
    if (lacking.length > 0) log.warn({ peers: lacking }, 'another mount owned the peers since this one did: this mount\'s journal is out of date and was dropped (the peers\' records are reconciled instead)');
  }
  const resync = await choosePeersToResync(opts);
  const healthy = members.filter((m) => !resync.includes(m));
  if (healthy.length === 0) throw new Refusal('RECOVERY_FAILED', 'no peer is left to resync from');
  // A copy kept as it is although it restarted uncleanly (every peer did, or --resync-from named it): trusted from here on.
  for (const m of healthy) {
    if (!uncleanOf(opts, m)) continue;
    await m.client.clean(opts.mountId, opts.epoch);
    m.repairedAt = performance.now();
  }

  // 2. What the journal holds for the healthy peers.
  const catchUp = new CatchUp({
    mountId: opts.mountId,
    epoch: opts.epoch,
    journal,
    log,
    withClaims: (_names, fn) => fn(), // nothing else runs before the mount is up
    repairSource: () => null, // repairs wait until every resend is delivered (below)
    onFenced: (m, err) => {
      throw new Refusal('PEERS_OWNED', `peer ${m.name} fenced this mount during recovery: ${err.message}`, { cause: err });
    },
    admission: { hold: () => () => undefined, changesPastGate: 0 }, // no change is admitted before the mount is up
    quietTimeoutMs: 0,
  });
  for (const m of healthy) {
    const { ops, bytes } = journal.countFor(m.name);
    if (ops === 0) continue;
    log.info({ peer: m.name, ops, bytes }, 'catching up from the journal');
    opts.reporter.start(`catch-up ${m.name}`, ops, 'changes');
    try {
      await catchUp.drain(m, (p) => opts.reporter.update(p.ops));
    } catch (err) {
      throw new Refusal('RECOVERY_FAILED', `catching up peer ${m.name} from the journal failed: ${toMirrorError(err).message}. Check the peer and mount again.`);
    } finally {
      opts.reporter.stop();
    }
  }
  // Names some peer holds differently: copied whole from a peer that now has everything.
  for (const m of healthy) {
    if (!catchUp.hasDeferred(m)) continue;
    const source = healthy.find((o) => o !== m && !catchUp.hasDeferred(o) && journal.countFor(o.name).ops === 0);
    if (!source) throw new Refusal('COPIES_DIFFER', `peer ${m.name} holds some names differently and no other peer has every change to copy them from; mount with --resync-from NAME to choose the copy to keep`);
    await catchUp.repairDeferred(m, { name: source.name, copy: () => peerCopy(source, opts.mountId, opts.epoch) }, false);
  }

  // 3. Changes in doubt among the healthy peers: earlier owners' (oldest first), then this mount's.
  for (const { owner } of previous) {
    const copied = await reconcilePreviousOwner(opts, healthy, owner);
    log.warn({ previousOwner: owner, changes: copied }, 'changes of an earlier owner that reached only some peers were copied to the others');
  }
  if (!superseded) {
    const fixed = await rollForwardInDoubt(opts, healthy);
    if (fixed > 0) log.warn({ changes: fixed }, 'rolled forward changes that reached only some peers');
  }

  // 4. Full resyncs.
  const source = pickSource(opts, healthy);
  for (const target of resync) await fullResync(opts, source, target);
  members.forEach((m, i) => journal.setPeerId(m.name, opts.peerIds[i]!));
}

async function choosePeersToResync(opts: RecoveryOptions): Promise<Member[]> {
  const { members, journal, log } = opts;
  for (const m of members) {
    const u = uncleanOf(opts, m);
    if (u) log.error({ peer: m.name, since: u.since, durableThrough: u.durableThrough[opts.mountId] ?? 0 }, 'peer restarted after its machine went down: changes applied after its durable point may be lost there; it is repaired before it serves');
  }
  if (opts.resyncFrom !== undefined) {
    if (!members.some((m) => m.name === opts.resyncFrom)) throw new Refusal('PEERS_INVALID', `--resync-from ${opts.resyncFrom}: no such peer among --peers`);
    return members.filter((m) => m.name !== opts.resyncFrom);
  }
  const out: Member[] = [];
  const anyHistory = opts.progress.some((p) => p.maxSeq > 0);
  for (const [i, m] of members.entries()) {
    const known = journal.peerId(m.name);
    if (known !== null && known !== opts.peerIds[i]) {
      log.warn({ peer: m.name, was: known, now: opts.peerIds[i] }, 'peer has a new identity (its data was replaced): full resync');
      out.push(m);
    } else if (uncleanOf(opts, m)) {
      out.push(m);
    } else if (anyHistory && opts.progress[i]!.maxSeq === 0 && (await isEmptyTree(m))) {
      log.warn({ peer: m.name }, 'peer is empty and has no history of this mount: full resync');
      out.push(m);
    }
  }
  if (out.length === members.length && out.every((m) => uncleanOf(opts, m))) {
    // Every copy may have lost its last changes: keep the one durable the furthest (then the one that applied the most).
    const durable = (m: Member) => uncleanOf(opts, m)!.durableThrough[opts.mountId] ?? 0;
    const idx = (m: Member) => members.indexOf(m);
    const keep = [...out].sort((a, b) => durable(b) - durable(a) || opts.progress[idx(b)]!.maxSeq - opts.progress[idx(a)]!.maxSeq)[0]!;
    const lastSeq = Math.max(0, ...opts.progress.map((p) => p.maxSeq), journal.maxSeq());
    log.error(
      // The last seq is known only as far as some record of it survived (the peers' or this journal's).
      { keep: keep.name, durableThrough: durable(keep), lastSeqKnown: lastSeq, mayBeLost: lastSeq > durable(keep) ? `seq ${durable(keep) + 1} to ${lastSeq} and any later` : `any change after seq ${durable(keep)}` },
      'every peer restarted after its machine went down: keeping the copy durable the furthest; the changes after its durable point that it lacks are lost (a change applied but not flushed anywhere). Every other copy is made equal to it',
    );
    return out.filter((m) => m !== keep);
  }
  if (out.length === members.length) throw new Refusal('RECOVERY_FAILED', 'every peer needs a full resync, so there is nothing to resync from; mount with --resync-from NAME to choose the copy to keep');
  return out;
}

function uncleanOf(opts: RecoveryOptions, m: Member): UncleanRestart | null {
  return opts.unclean?.[opts.members.indexOf(m)] ?? null;
}

function pickSource(opts: RecoveryOptions, healthy: Member[]): Member {
  if (opts.resyncFrom) return healthy.find((m) => m.name === opts.resyncFrom)!;
  // The one that applied the most of this mount's history.
  const idx = (m: Member) => opts.members.indexOf(m);
  return [...healthy].sort((a, b) => opts.progress[idx(b)]!.maxSeq - opts.progress[idx(a)]!.maxSeq)[0]!;
}

/** No progress for this long ends a pull (the peer doing it, or its source, is stuck). */
const PULL_STALL_MS = 15 * 60_000;
/** The longest a full resync may take, whatever its progress. */
const PULL_LIMIT_MS = 24 * 3600_000;
const PULL_POLL_MS = 500;

/**
 * Ask the target to pull the source's tree (one copy of the data, peer to
 * peer), drawing its progress from the target's status; give up, loudly,
 * when it makes no progress for PULL_STALL_MS.
 */
async function pullWithProgress(opts: RecoveryOptions, source: Member, target: Member): Promise<PullProgress> {
  const { reporter } = opts;
  let barStarted = false;
  let lastProgress = Date.now();
  let lastDone = -1;
  let stalled: (err: Error) => void = () => undefined;
  const stall = new Promise<never>((_, reject) => (stalled = reject));
  const poll = setInterval(() => {
    void target.client.status().then(
      (st) => {
        const p = st.pull;
        if (!p) return;
        if (!barStarted && p.totalEntries > 0) {
          reporter.start(`resync ${source.name} -> ${target.name}`, p.totalBytes, 'bytes');
          barStarted = true;
        }
        if (barStarted) reporter.update(p.bytesCopied);
        const done = p.entries + p.bytesCopied + p.removed;
        if (done !== lastDone) {
          lastDone = done;
          lastProgress = Date.now();
        }
      },
      () => undefined,
    );
    if (Date.now() - lastProgress > PULL_STALL_MS) stalled(new Error(`full resync of ${target.name} made no progress for ${PULL_STALL_MS / 1000} s`));
  }, PULL_POLL_MS);
  try {
    const done = await Promise.race([target.client.pull(opts.mountId, opts.epoch, await pullSource(opts, source, target), PULL_LIMIT_MS), stall]);
    if (!barStarted) {
      // Finished before the first look at its progress: show where it ended.
      reporter.start(`resync ${source.name} -> ${target.name}`, done.totalBytes, 'bytes');
      barStarted = true;
    }
    reporter.update(done.bytesCopied);
    return done;
  } finally {
    clearInterval(poll);
    if (barStarted) reporter.stop();
  }
}

/**
 * Where a pull reads from, and with what: over TLS a ticket this mount signs
 * for the target's certificate, the source and this epoch, so the target never
 * holds the source's token (security/pull-ticket.ts); in cleartext the token.
 */
async function pullSource(opts: RecoveryOptions, source: Member, target: Member): Promise<{ url: string; token?: string; ticket?: string }> {
  const identity = target.client.identity;
  if (identity === null) return { url: source.spec.url, token: source.spec.token };
  // A pure relay passes the pull to its next hop, which reads: the ticket names the hop that holds the copy.
  let st: PeerStatus | { error: string } | null = await target.client.status();
  while (st !== null && !('error' in st) && st.dataDir === null) st = st.relay?.next ?? null;
  if (st === null || 'error' in st || st.certificate === null) throw new MirrorError('MFS_UNREACHABLE', `cannot tell which certificate reads for ${target.name} (its next hop does not answer): the pull cannot be ticketed`);
  const ticket = issuePullTicket({ source: opts.peerIds[opts.members.indexOf(source)]!, mount: opts.mountId, epoch: opts.epoch, target: st.certificate }, identity.key);
  return { url: source.spec.url, ticket };
}

/** Whether a peer's tree holds nothing (the first entry of its manifest answers it). */
async function isEmptyTree(m: Member): Promise<boolean> {
  for await (const _entry of m.client.manifestStream({ content: false })) return false;
  return true;
}

async function fullResync(opts: RecoveryOptions, source: Member, target: Member): Promise<void> {
  const { log } = opts;
  const started = Date.now();
  log.warn({ from: source.name, to: target.name }, 'full resync: the peer copies the other peer\'s tree directly');
  // Marked unclean first (durably, on the peer): a resync cut short (this mount stopped, the
  // machine down) is taken up again by the next mount, which finds it unclean, instead of
  // looking like a copy that merely differs. An unclean target refuses every other session
  // until it is clean; the verification below reads it.
  await target.client.repairing(opts.mountId, opts.epoch, { resync: true });
  const result = await pullWithProgress(opts, source, target);
  const copySeconds = (Date.now() - started) / 1000;
  // Verified: the target's content hashes must now equal the source's.
  const check = opts.checkReporter ?? opts.reporter;
  check.start(`verifying ${target.name} against ${source.name} by content`, 0, 'entries');
  let diffs: string[];
  try {
    diffs = await diffManifests(source.client.manifestStream({ content: true }), target.client.manifestStream({ content: true }), [source.name, target.name], 10, (n) => check.update(n));
  } finally {
    check.stop();
  }
  if (diffs.length > 0) throw new Refusal('RECOVERY_FAILED', `full resync of ${target.name} from ${source.name} did not verify:\n  ${diffs.join('\n  ')}`);
  opts.journal.forgetPeer(target.name);
  // Exact again: it may serve and count from now on.
  await target.client.clean(opts.mountId, opts.epoch);
  if (uncleanOf(opts, target)) target.repairedAt = performance.now();
  const seconds = (Date.now() - started) / 1000;
  log.warn(
    {
      from: source.name, to: target.name, files: result.filesCopied, bytes: result.bytesCopied, removed: result.removed, seconds, copySeconds, verifySeconds: round(seconds - copySeconds),
      mbPerS: round(result.bytesCopied / 1e6 / seconds), filesPerS: round(result.filesCopied / seconds),
    },
    'full resync finished and verified by content hash',
  );
}

/**
 * Roll forward seqs that some healthy peers applied (or began: an intent) and
 * others did not. Such seqs were in flight together when the primary stopped,
 * so they touch different names and can be completed in any order.
 */
async function rollForwardInDoubt(opts: RecoveryOptions, healthy: Member[]): Promise<number> {
  const doubt = await historiesInDoubt(healthy, opts.mountId);
  if (!doubt) return 0;
  const { seqs, histories } = doubt;
  let fixed = 0;
  for (const seq of seqs) {
    const entries = histories.map((h) => h.get(seq));
    const done = healthy.filter((_, i) => entries[i]?.state === 'done');
    const behind = healthy.filter((_, i) => entries[i]?.state !== 'done');
    if (behind.length === 0) continue;
    // The reference record: a finished one if any peer finished it, else an intent.
    const ref = entries.find((e) => e?.state === 'done') ?? entries.find((e) => e !== undefined);
    if (!ref) continue;
    const subject = JSON.parse(ref.subject) as MutationRequest;
    for (const target of behind) {
      await completeOn(opts, target, seq, subject, ref, done[0] ?? null);
      fixed++;
    }
  }
  return fixed;
}

/**
 * A takeover: the previous owner (a lost primary) may have left changes on
 * some peers and not others (calls in flight when it died; with ack quorum/N,
 * changes it journaled for a peer that was behind). Every one that some peer
 * finished is brought to the others by copying the names it touched from a
 * peer that has it, in the previous owner's seq order: nothing it acknowledged
 * is lost. (Its stamps cannot be re-sent: the peers now refuse its epoch.)
 * Changes only begun (an intent) everywhere were never acknowledged; the
 * content comparison after recovery reports any copy they left different.
 */
async function reconcilePreviousOwner(opts: RecoveryOptions, healthy: Member[], previous: string): Promise<number> {
  const doubt = await historiesInDoubt(healthy, previous);
  if (!doubt) return 0;
  const { seqs, histories } = doubt;
  let copied = 0;
  for (const seq of seqs) {
    const entries = histories.map((h) => h.get(seq));
    const source = healthy.find((_, i) => entries[i]?.state === 'done');
    const behind = healthy.filter((_, i) => entries[i]?.state !== 'done');
    if (!source || behind.length === 0) continue;
    const subject = JSON.parse(entries[healthy.indexOf(source)]!.subject) as MutationRequest;
    if (subject.op === 'access') continue; // atime only: nothing to copy (a copy of '' would compare the whole tree)
    for (const target of behind) {
      for (const name of namesOf(subject)) await makeEqual(peerCopy(source, opts.mountId, opts.epoch), peerCopy(target, opts.mountId, opts.epoch), name);
      opts.log.info({ previousOwner: previous, seq, op: subject.op, from: source.name, to: target.name }, 'takeover: copied a change of the previous owner');
      copied++;
    }
  }
  return copied;
}

async function completeOn(opts: RecoveryOptions, target: Member, seq: number, subject: MutationRequest, ref: HistoryEntry, source: Member | null): Promise<void> {
  const { log } = opts;
  const expected = ref.state === 'done' && ref.result ? outcomeKey(ref.result) : null;
  if (!PAYLOAD_OPS.has(subject.op)) {
    // The whole operation is in the history: send it again with its seq.
    const stamped = { ...subject, mount: opts.mountId, epoch: opts.epoch, seq } as Mutation;
    const got = await resendWithSeq(target, stamped, Buffer.alloc(0)).catch((err: Error) => {
      throw new Refusal('RECOVERY_FAILED', `peer ${target.name} failed re-applying seq ${seq}: ${err.message}`, { cause: err });
    });
    log.info({ peer: target.name, seq, op: subject.op, outcome: got }, 'rolled forward a change in doubt');
    if (expected === null || got === expected || got === QUEUED_BY_RELAY || !source) return;
    log.warn({ peer: target.name, seq, got, expected }, 'change in doubt answered differently: repairing from a peer that has it');
  } else if (!source) {
    throw new Refusal('COPIES_DIFFER', `seq ${seq} (${subject.op} ${JSON.stringify((subject as { path: string }).path)}) was begun on some peers and finished on none, and its data is not in any history; mount with --resync-from NAME to choose the copy to keep`);
  }
  for (const name of namesOf(subject)) await makeEqual(peerCopy(source!, opts.mountId, opts.epoch), peerCopy(target, opts.mountId, opts.epoch), name);
  await target.client.adopt(opts.mountId, opts.epoch, seq, ref.subject, ref.result ?? JSON.stringify({ ok: true }));
  log.info({ peer: target.name, seq, op: subject.op, from: source!.name }, 'rolled forward a change in doubt by copying it');
}

function outcomeKey(result: string): string {
  const o = JSON.parse(result) as { ok: boolean; error?: { errno?: string } };
  return o.ok ? 'ok' : (o.error?.errno ?? 'EIO');
}

/**
 * A mount's records on each peer from the first seq where the peers may
 * differ, and every seq any of them recorded there, in order; null when every
 * peer holds the same contiguous history (nothing in doubt).
 */
async function historiesInDoubt(healthy: Member[], mountId: string): Promise<{ seqs: number[]; histories: Array<Map<number, HistoryEntry>> } | null> {
  const progress = await Promise.all(healthy.map((m) => m.client.progress(mountId)));
  if (progress.every((p) => p.contiguousSeq === p.maxSeq && p.maxSeq === progress[0]!.maxSeq)) return null;
  const from = Math.min(...progress.map((p) => p.contiguousSeq));
  const histories = await Promise.all(healthy.map((m) => fetchHistory(m, mountId, from)));
  const seqs = [...new Set(histories.flatMap((h) => [...h.keys()]))].sort((a, b) => a - b);
  return { seqs, histories };
}

async function fetchHistory(m: Member, mountId: string, after: number): Promise<Map<number, HistoryEntry>> {
  const out = new Map<number, HistoryEntry>();
  let from = after;
  for (;;) {
    const page = await m.client.history(mountId, from);
    for (const e of page) out.set(e.seq, e);
    if (page.length < HISTORY_PAGE) return out;
    from = page[page.length - 1]!.seq;
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
