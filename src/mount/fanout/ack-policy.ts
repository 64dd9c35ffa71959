import { MirrorError, isFenced, isRecordedOutcome, isTransportFailure, toMirrorError } from '../../protocol/errors.js';
import { describePaths, type Mutation } from '../../protocol/ops.js';
import type { LackKind } from '../recovery/journal.js';

/**
 * The ack policy and the judging of the peers' outcomes of one change (what
 * counts as committed, which outcome wins, who lacks the change). Pure: the
 * caller (mirror.ts) fences, logs and journals from what judge returns, so
 * the rules can be tested without peers.
 */

/**
 * How many peers must commit a change before the call succeeds. `none` is the
 * asynchronous mode (`--ack 0`, patent para. 47): the call returns once the
 * primary's journal holds the change; the peers follow (fanout/lag.ts).
 */
export type AckPolicy = { kind: 'all' } | { kind: 'quorum' } | { kind: 'count'; n: number } | { kind: 'none' };

export function describeAckPolicy(p: AckPolicy): string {
  return p.kind === 'count' ? String(p.n) : p.kind === 'none' ? '0' : p.kind;
}

/** Peers that must commit, out of `members`. */
export function requiredAcks(p: AckPolicy, members: number): number {
  if (p.kind === 'all') return members;
  if (p.kind === 'quorum') return Math.floor(members / 2) + 1;
  if (p.kind === 'none') return 0;
  return Math.min(p.n, members);
}

/** What became of one change on one peer (or on the local copy). */
export type Outcome = { ok: true; result: unknown } | { ok: false; error: MirrorError };

/** The outcome of a call, never a rejection. */
export function settle(p: Promise<unknown>): Promise<Outcome> {
  return p.then(
    (result) => ({ ok: true as const, result }),
    (err: unknown) => ({ ok: false as const, error: toMirrorError(err) }),
  );
}

/** The outcome key of a pure relay's acknowledgement: queued, the far mirror's answer still to come. */
export const PROVISIONAL = '(queued)';

function isProvisional(o: Outcome): boolean {
  return o.ok && typeof o.result === 'object' && o.result !== null && (o.result as { provisional?: unknown }).provisional === true;
}

/** A peer that was behind: the change went to the journal for it instead. */
export const SKIPPED: Outcome = { ok: false, error: new MirrorError('MFS_OUT_OF_STEP', 'peer is behind: change journaled for catch-up') };

/** A peer that had not answered when enough others had committed (ack quorum or N). */
export const STRAGGLER: Outcome = { ok: false, error: new MirrorError('MFS_TIMEOUT', 'no answer within the straggler window after enough peers committed') };

/** Errnos that say "the peer ran out of something": reported as they are rather than as EIO. */
export const RESOURCE_ERRNOS: readonly string[] = ['ENOSPC', 'EDQUOT', 'EROFS'];

/** The size of the largest group of peers that committed the same outcome (undefined: no answer yet). */
export function mostAgreeing(results: ReadonlyArray<Outcome | undefined>): number {
  const counts = new Map<string, number>();
  for (const r of results) {
    if (!r) continue;
    const k = r.ok ? 'ok' : isRecordedOutcome(r.error) ? r.error.errno : null;
    if (k !== null) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return Math.max(0, ...counts.values());
}

/** A peer that lacks the change, by its index in the outcomes, and how it is to get it. */
export interface Lack {
  at: number;
  kind: LackKind;
  reason: string;
  errno: string | null;
}

/** What became of one change across the peers. */
export interface Verdict {
  /** The call's answer (mirror.ts replaces it with EIO when the journal cannot be written). */
  decided: Outcome;
  /** 'ok' or the errno the committing peers agreed on; null when no peer committed it. */
  authoritative: string | null;
  lacking: Lack[];
}

/** The fields of the "operation failed" error line, for the caller to log (beside op, path and seq). */
export interface FailureLine {
  /** The peers that did not commit it, by name (null when every peer did). */
  peer: string | null;
  errno: string;
  /** Each peer's outcome, as `name: outcome; ...`. */
  outcomes: string;
  why: string;
}

export interface Judgement {
  verdict: Verdict;
  /** Peers that answered "fenced" (another mount owns them), in peer order: the caller fences the mount for each. */
  fencedAt: Array<{ at: number; error: MirrorError }>;
  /** Present when the change failed on judging (not when fenced): the caller logs it. */
  failure?: FailureLine;
}

/**
 * Compare the peers' outcomes. A peer committed a change when it answered
 * with a recorded outcome (success, or a deterministic errno such as ENOENT).
 * The change counts as done when enough peers (`required`) committed the same
 * outcome and none committed another; every peer that did not commit it, or
 * committed something else, lacks it and gets it through the journal.
 * `names`: the peers' names, in the order of `outcomes`.
 */
export function judge(req: Mutation, outcomes: readonly Outcome[], required: number, names: readonly string[]): Judgement {
  const key = (o: Outcome): string | null => (isProvisional(o) ? PROVISIONAL : o.ok ? 'ok' : isRecordedOutcome(o.error) ? o.error.errno : null);
  const keys = outcomes.map(key);
  // A pure relay's "ok" only says it queued the change; the far mirror's answer comes later.
  // It votes for nothing: it agrees with whatever the peers that applied the change answered.
  const provisional = keys.filter((k) => k === PROVISIONAL).length;
  const committed = keys.filter((k): k is string => k !== null && k !== PROVISIONAL);
  // Success wins: a change applied somewhere is rolled forward everywhere.
  const authoritative = committed.includes('ok') ? 'ok' : (committed[0] ?? (provisional > 0 ? 'ok' : null));
  // In doubt: a peer was asked and gave no answer about the change, so it may have applied it.
  // A peer that was behind (SKIPPED, out of step) was not asked.
  const inDoubt = outcomes.some((o, i) => !o.ok && keys[i] === null && o !== SKIPPED && isTransportFailure(o.error) && o.error.code !== 'MFS_OUT_OF_STEP');
  const lacking: Lack[] = [];
  const fencedAt: Judgement['fencedAt'] = [];
  outcomes.forEach((o, i) => {
    if (o.ok || (keys[i] !== null && keys[i] === authoritative)) return;
    if (isFenced(o.error)) {
      fencedAt.push({ at: i, error: o.error });
      return;
    }
    if (keys[i] !== null) lacking.push({ at: i, kind: 'repair', reason: `answered ${keys[i]} where others committed ${authoritative}`, errno: null });
    else lacking.push({ at: i, kind: 'resend', reason: o.error.message, errno: o.error.errno });
  });
  // Another mount owns the peers: this one acknowledges nothing more, whatever others said
  // (a relay's queued "ok" or a peer not yet taken over must not carry the call).
  const fencedBy = fencedAt[fencedAt.length - 1]?.error;
  if (fencedBy) {
    const error = new MirrorError('MFS_FENCED', `${req.op} ${describePaths(req)}: ${fencedBy.message}`, { context: { op: req.op, path: describePaths(req) } });
    return { verdict: { decided: { ok: false, error }, authoritative, lacking }, fencedAt };
  }
  // Nothing committed anywhere and nothing in doubt (every peer asked refused it
  // for want of space, say): nothing changed, so there is nothing to roll forward.
  if (authoritative === null && !inDoubt) {
    const { decided, failure } = failed(req, outcomes, names, 'not applied anywhere');
    return { verdict: { decided, authoritative, lacking: [] }, fencedAt, failure };
  }
  const agreeing = committed.filter((k) => k === authoritative).length + provisional;
  const disagree = committed.some((k) => k !== authoritative);
  if (!disagree && authoritative !== null && agreeing >= required) {
    const at = keys.indexOf(authoritative);
    return { verdict: { decided: outcomes[at >= 0 ? at : keys.indexOf(PROVISIONAL)]!, authoritative, lacking }, fencedAt };
  }
  const { decided, failure } = failed(req, outcomes, names, disagree ? 'peers disagree on the outcome' : `${agreeing} of ${names.length} peers committed it, ${required} needed`);
  return { verdict: { decided, authoritative, lacking }, fencedAt, failure };
}

/** The call's failure (out of space when a peer was, else EIO), naming each peer's outcome. */
function failed(req: Mutation, outcomes: readonly Outcome[], names: readonly string[], why: string): { decided: Outcome; failure: FailureLine } {
  const errnos = outcomes.map((o) => (o.ok ? null : o.error.errno));
  const detail = names.map((name, i) => `${name}: ${show(outcomes[i]!)}`).join('; ');
  const errno = RESOURCE_ERRNOS.find((e) => errnos.includes(e)) ?? 'EIO';
  // The peers that did not commit it, by name: each error line names peer, path and errno.
  const peers = names.filter((_, i) => !outcomes[i]!.ok);
  const error = new MirrorError('MFS_ERRNO', `${req.op} ${describePaths(req)}: ${why} (${detail})`, { errno, context: { op: req.op, path: describePaths(req) } });
  return { decided: { ok: false, error }, failure: { peer: peers.join(',') || null, errno, outcomes: detail, why } };
}

/** Does the local copy's outcome match what the peers committed? */
export function sameOutcome(local: Outcome, verdict: Verdict): boolean {
  if (verdict.authoritative === null) {
    // In doubt everywhere and journaled: it will be rolled forward, as the local copy already has it.
    if (verdict.lacking.length > 0) return local.ok;
    return !local.ok && !verdict.decided.ok && local.error.errno === verdict.decided.error.errno;
  }
  return (local.ok ? 'ok' : local.error.errno) === verdict.authoritative;
}

/** An outcome as messages show it: ok, or the errno and the error's message. */
export function show(o: Outcome): string {
  return o.ok ? 'ok' : `${o.error.errno} (${o.error.message})`;
}
