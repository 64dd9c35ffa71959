import type { Http2Session } from 'node:http2';
import { MirrorError, toMirrorError } from '../protocol/errors.js';
import type { ControlRequest, ResendAnswer } from '../protocol/ops.js';
import type { PeerContext } from './context.js';
import { mutate } from './exactly-once.js';

type Resend = Extract<ControlRequest, { op: 'resend' }>;

/**
 * Journaled changes sent again in one call (protocol/ops.ts `resend`): each goes through
 * `mutate`, the path of a change sent alone (ownership, exactness, exactly once under its
 * seq, its outcome recorded), one after the other in the order given. Catch-up sends a peer
 * thousands of changes; one call for many saves each its own frame, answer and round trip.
 *
 * It stops after the first change whose outcome is not the one expected, or that is not an
 * outcome at all (a refusal or a transient error, which is not recorded): the changes after
 * it may touch names this copy now holds differently, and the sender defers those instead
 * of applying them (mount/recovery/catch-up.ts).
 */
export async function resend(peer: PeerContext, req: Resend, payload: Buffer, session: Http2Session | undefined): Promise<ResendAnswer> {
  // Checked whole before anything is applied: a malformed call changes nothing.
  let total = 0;
  for (const { change, bytes } of req.changes) {
    // The call is authorized for its own stamp (authorization.ts); each change must carry the same.
    if (change.mount !== req.mount || change.epoch !== req.epoch) {
      throw new MirrorError('MFS_MALFORMED', `resend of mount ${req.mount} epoch ${req.epoch} carries seq ${change.seq} of mount ${change.mount} epoch ${change.epoch}`);
    }
    total += bytes;
  }
  if (total !== payload.length) throw new MirrorError('MFS_MALFORMED', `resend payloads add up to ${total} bytes; the frame carries ${payload.length}`);
  const outcomes: ResendAnswer['outcomes'] = [];
  let at = 0;
  for (const { change, bytes, expect } of req.changes) {
    const own = payload.subarray(at, at + bytes);
    at += bytes;
    let answer: { ok: boolean; result?: unknown; error?: unknown };
    const started = performance.now();
    try {
      answer = (await mutate(peer, change, own, session, { stats: false })).result as typeof answer; // the answer leaves them out
    } catch (err) {
      const e = toMirrorError(err, { op: change.op });
      peer.metrics.observe(change.op, (performance.now() - started) / 1000, 0, e.errno);
      if (e.httpStatus !== 200) peer.metrics.refused(e.code, e.errno); // as for a change sent alone (calls.ts)
      return { outcomes, failure: e.toWire() };
    }
    // Each change counts in the metrics as one sent alone does.
    const errno = answer.ok ? null : (answer.error as { errno?: string } | undefined)?.errno ?? 'EIO';
    peer.metrics.observe(change.op, (performance.now() - started) / 1000, errno === null && change.op === 'write' ? own.length : 0, errno);
    if (answer.ok) {
      const provisional = (answer.result as { provisional?: unknown } | undefined)?.provisional === true;
      outcomes.push(provisional ? { ok: true, provisional: true } : { ok: true });
      // A pure relay only queued it: it agrees with any outcome (the far end's is checked by the relay).
      if (expect !== null && expect !== 'ok' && !provisional) break;
    } else {
      const error = answer.error as ResendAnswer['failure'] & object;
      outcomes.push({ ok: false, error });
      // Not an outcome the sender counts (it retries those later), or not the one expected.
      if (error.code !== 'MFS_ERRNO' || (expect !== null && error.errno !== expect)) break;
    }
  }
  return { outcomes };
}
