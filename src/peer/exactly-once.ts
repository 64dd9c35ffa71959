import type { Http2Session } from 'node:http2';
import { MirrorError, isRecordable, toMirrorError, type WireError } from '../protocol/errors.js';
import { NAMESPACE_OPS, pathOf, type Mutation } from '../protocol/ops.js';
import { applyMutation, witnessOf, type MutationResult } from '../store/apply.js';
import { checkExact, type PeerContext } from './context.js';
import { checkOwnership } from './ownership.js';

/**
 * Exactly once: a change is applied once and its outcome recorded under the
 * mount's (mount, seq) before it is answered, so a re-send (a retry, catch-up,
 * a relay's queue after a restart) gets the first outcome back instead of a
 * second application. A re-send that arrives while the first is still running
 * joins it.
 */

/**
 * What an operation is recorded under: its arguments without the stamp (the
 * payload is not included). A re-send must match it, or the seq was re-used by
 * a different operation, which is a bug in the sender.
 */
export function subjectOf(req: Mutation): string {
  const { mount: _m, epoch: _e, seq: _s, durable: _d, ...args } = req;
  return JSON.stringify(args);
}

export function seqConflict(req: Mutation, was: string, now: string): MirrorError {
  return new MirrorError('MFS_SEQ_CONFLICT', `seq ${req.seq} of mount ${req.mount} was ${was}, now ${now}`);
}

/**
 * Operations recorded durably as intents before they are applied, so that a
 * crash mid-way is recognised on re-send: those whose second application would
 * answer differently (EEXIST, ENOENT, ENODATA). A non-exclusive create is
 * idempotent (it opens what is there), so it needs none.
 */
const INTENT_OPS: ReadonlySet<Mutation['op']> = new Set([...NAMESPACE_OPS, 'setxattr', 'removexattr']);

export function needsIntent(req: Mutation): boolean {
  if (req.op === 'create') return req.exclusive;
  return INTENT_OPS.has(req.op);
}

/**
 * Operations that take the namespace lock exclusively: everything that can
 * remove a name or make a name a symlink (rename, rmdir, unlink, symlink,
 * link), so no other operation sits between its confinement check and its
 * syscall while a name changes under it; and the xattr changes, whose library
 * calls follow a final symlink. Repair actions follow the same rule (repair.ts).
 */
export const EXCLUSIVE_OPS: ReadonlySet<Mutation['op']> = new Set(['rename', 'rmdir', 'unlink', 'symlink', 'link', 'setxattr', 'removexattr']);

/**
 * Apply one changing operation exactly once; answers a re-send with the first outcome.
 * `stats: false`: the answer need not carry the touched names' attributes (resend.ts).
 */
export function mutate(peer: PeerContext, req: Mutation, payload: Buffer, session?: Http2Session, opts: { stats?: boolean } = {}): Promise<{ result: unknown }> {
  checkOwnership(peer, req);
  checkExact(peer, session); // not even a re-send's recorded outcome: the record may be older than the tree
  const key = `${req.mount}\0${req.seq}`;
  const subject = subjectOf(req);
  const joined = peer.running.get(key);
  if (joined) {
    if (joined.subject !== subject) throw seqConflict(req, joined.subject, subject);
    return joined.work;
  }
  const prior = peer.state.lookup(req.mount, req.seq);
  if (prior && prior.subject !== subject) throw seqConflict(req, prior.subject, subject);
  if (prior?.state === 'done') return Promise.resolve({ result: JSON.parse(prior.result!) });
  if (!prior && req.seq < peer.state.forgottenBelow(req.mount)) {
    throw new MirrorError('MFS_SEQ_FORGOTTEN', `seq ${req.seq} of mount ${req.mount} is older than the retained history`);
  }
  const inDoubt = prior?.state === 'intent' ? { witness: prior.result } : null;
  const work = applyOnce(peer, req, payload, subject, inDoubt, opts.stats !== false).finally(() => peer.running.delete(key));
  peer.running.set(key, { subject, work });
  return work;
}

/** `inDoubt`: an intent for this change was found without an outcome (a crash), with its witness. */
async function applyOnce(peer: PeerContext, req: Mutation, payload: Buffer, subject: string, inDoubt: { witness: string | null } | null, stats: boolean): Promise<{ result: unknown }> {
  const path = pathOf(req);
  return peer.lock.run(EXCLUSIVE_OPS.has(req.op), async () => {
    checkOwnership(peer, req); // again: a takeover may have completed while this waited for the lock
    const durable = req.durable === true;
    const copy = durable ? peer.durableCopy : peer.copy;
    const ctx = copy && !stats ? { ...copy, stats: false } : copy;
    // Queued for the next hop in the same commit as its outcome: both or neither survive a crash.
    const forward = peer.forwarder ? { request: JSON.stringify(req), payload } : undefined;
    peer.forwarder?.checkRoom(payload.length); // before anything is applied
    if (!ctx) {
      // A pure relay: accepted means durably queued; the far end's answer is checked when it comes (Forwarder).
      // `provisional` tells the mount that this "ok" does not outvote a peer that applied the change.
      const outcome = { ok: true, result: req.op === 'write' ? { written: payload.length, provisional: true } : { provisional: true } };
      await peer.state.recordDone(req.mount, req.seq, req.epoch, req.op, subject, JSON.stringify(outcome), forward);
      peer.applied++;
      peer.flusher.noteApplied(req.mount, req.seq);
      peer.forwarder!.noteQueued(payload.length);
      return { result: outcome };
    }
    // Before it touches the tree: a crash from here may take it back. An atime alone is not: a
    // local file system does not keep it durably either, and a repair never copies one.
    const undurable = !durable && req.op !== 'access';
    if (undurable) peer.state.noteUndurable();
    try {
      return await applyRecorded(peer, req, payload, subject, inDoubt, ctx, durable, forward);
    } finally {
      if (undurable) peer.state.undurableDone();
    }
  });
}

/** Apply a change to this copy and record its outcome (applyOnce, under the namespace lock). */
async function applyRecorded(
  peer: PeerContext, req: Mutation, payload: Buffer, subject: string, inDoubt: { witness: string | null } | null,
  ctx: NonNullable<PeerContext['copy']>, durable: boolean, forward: { request: string; payload: Buffer } | undefined,
): Promise<{ result: unknown }> {
  const path = pathOf(req);
  const withIntent = needsIntent(req);
  if (withIntent && !inDoubt) peer.state.recordIntent(req.mount, req.seq, req.epoch, req.op, subject, witnessOf(ctx, req), durable);
  let outcome: { ok: true; result?: unknown } | { ok: false; error: WireError };
  let stats: NonNullable<MutationResult>['stats'];
  try {
    const applied = await applyMutation(ctx, req, payload, inDoubt !== null, inDoubt?.witness ?? null);
    // The attributes after the change go to the caller, not into the record (see MutationResult).
    const { stats: touched, ...result } = applied ?? {};
    stats = touched;
    outcome = Object.keys(result).length === 0 ? { ok: true } : { ok: true, result };
    peer.applied++;
    if (req.op === 'write') peer.appliedBytes += payload.length;
  } catch (err) {
    const e = toMirrorError(err, { op: req.op, path });
    if (!isRecordable(e)) {
      // Transient: not applied (or undone), so not remembered; a retry may succeed.
      peer.log.warn({ op: req.op, path, errno: e.errno, err: e.message }, 'operation failed (transient, not recorded)');
      // An intent recorded now is dropped; one found after a crash stays (the change may be there).
      if (withIntent && !inDoubt) peer.state.forget(req.mount, req.seq);
      throw e;
    }
    outcome = { ok: false, error: e.toWire() };
  }
  await peer.state.recordDone(req.mount, req.seq, req.epoch, req.op, subject, JSON.stringify(outcome), forward, durable);
  peer.flusher.noteApplied(req.mount, req.seq);
  peer.forwarder?.noteQueued(payload.length);
  if (outcome.ok && stats) return { result: { ok: true, result: { ...(outcome.result as object | undefined), stats } } };
  return { result: outcome };
}
