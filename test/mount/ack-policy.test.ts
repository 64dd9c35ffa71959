import { describe, expect, it } from 'vitest';
import { MirrorError } from '../../src/protocol/errors.js';
import type { Mutation } from '../../src/protocol/ops.js';
import { SKIPPED, STRAGGLER, judge, mostAgreeing, requiredAcks, sameOutcome, type Outcome } from '../../src/mount/fanout/ack-policy.js';
import { enoughOutcomes, stragglerWindowMs } from '../../src/mount/fanout/straggler.js';

/**
 * The ack policy and the judging of one change's outcomes across the peers
 * (fanout/ack-policy.ts, straggler.ts), without peers: what counts as
 * committed, which outcome the call answers, who lacks the change and how it
 * is to get it, and when the mount must fence itself.
 */

const req: Mutation = { op: 'create', path: 'd/f', mode: 0o644, exclusive: true, mount: 'm1', epoch: 3, seq: 41 };
const names = ['east', 'west', 'north'];

const ok = (result: unknown = { created: true }): Outcome => ({ ok: true, result });
const errno = (e: string): Outcome => ({ ok: false, error: new MirrorError('MFS_ERRNO', `create "d/f": ${e}`, { errno: e }) });
const code = (c: 'MFS_TIMEOUT' | 'MFS_UNREACHABLE' | 'MFS_FENCED' | 'MFS_NOT_OWNER', detail: string): Outcome => ({ ok: false, error: new MirrorError(c, detail) });
const queued = (): Outcome => ({ ok: true, result: { provisional: true } });
const messageOf = (o: Outcome): string => (o.ok ? '' : o.error.message);

describe('requiredAcks', () => {
  it('all: every peer; quorum: a strict majority; N: at most the peers there are', () => {
    expect(requiredAcks({ kind: 'all' }, 3)).toBe(3);
    expect([1, 2, 3, 4, 5].map((n) => requiredAcks({ kind: 'quorum' }, n))).toEqual([1, 2, 2, 3, 3]);
    expect(requiredAcks({ kind: 'count', n: 2 }, 3)).toBe(2);
    expect(requiredAcks({ kind: 'count', n: 5 }, 3)).toBe(3);
  });
});

describe('mostAgreeing', () => {
  it('counts the largest group of peers that committed one outcome, ignoring no answer and transient errnos', () => {
    expect(mostAgreeing([])).toBe(0);
    expect(mostAgreeing([undefined, undefined])).toBe(0);
    expect(mostAgreeing([ok(), undefined, ok()])).toBe(2);
    expect(mostAgreeing([errno('ENOENT'), ok(), errno('ENOENT')])).toBe(2);
    // ENOSPC is not recorded as the outcome (a retry may succeed), nor is a timeout an outcome.
    expect(mostAgreeing([errno('ENOSPC'), errno('ENOSPC'), code('MFS_TIMEOUT', 'slow'), ok()])).toBe(1);
    expect(mostAgreeing([STRAGGLER, SKIPPED])).toBe(0);
  });
});

describe('judge', () => {
  it('all agree on success: the call answers the first peer\'s result and nobody lacks the change', () => {
    const outcomes = [ok({ created: true, from: 'east' }), ok({ created: true, from: 'west' }), ok({ created: true, from: 'north' })];
    const j = judge(req, outcomes, 3, names);
    expect(j.verdict.authoritative).toBe('ok');
    expect(j.verdict.decided).toBe(outcomes[0]);
    expect(j.verdict.lacking).toEqual([]);
    expect(j.fencedAt).toEqual([]);
    expect(j.failure).toBeUndefined();
  });

  it('a deterministic errno agreed by all is the outcome: answered as it is, not a failure of the mirror', () => {
    const outcomes = [errno('EEXIST'), errno('EEXIST'), errno('EEXIST')];
    const j = judge(req, outcomes, 3, names);
    expect(j.verdict.authoritative).toBe('EEXIST');
    expect(j.verdict.decided).toBe(outcomes[0]);
    expect(j.verdict.lacking).toEqual([]);
    expect(j.failure).toBeUndefined();
  });

  it('peers disagreeing: success wins, the others get a repair, and the call fails with EIO naming each peer', () => {
    const outcomes = [errno('ENOENT'), ok(), ok()];
    const j = judge(req, outcomes, 2, names);
    expect(j.verdict.authoritative).toBe('ok');
    expect(j.verdict.lacking).toEqual([{ at: 0, kind: 'repair', reason: 'answered ENOENT where others committed ok', errno: null }]);
    expect(j.verdict.decided.ok).toBe(false);
    const error = (j.verdict.decided as { error: MirrorError }).error;
    expect(error.code).toBe('MFS_ERRNO');
    expect(error.errno).toBe('EIO');
    expect(error.message).toContain('create "d/f": peers disagree on the outcome (east: ENOENT (');
    expect(error.context).toEqual({ op: 'create', path: '"d/f"' });
    expect(j.failure).toEqual({ peer: 'east', errno: 'EIO', why: 'peers disagree on the outcome', outcomes: expect.stringMatching(/^east: ENOENT \(.*\); west: ok; north: ok$/) });
  });

  it('two errnos and no success: the first committed one is authoritative, the other peer gets a repair', () => {
    const j = judge(req, [errno('ENOTDIR'), errno('ENOENT'), errno('ENOTDIR')], 3, names);
    expect(j.verdict.authoritative).toBe('ENOTDIR');
    expect(j.verdict.lacking.map((l) => [l.at, l.kind])).toEqual([[1, 'repair']]);
    expect(j.failure?.why).toBe('peers disagree on the outcome');
  });

  it('a fenced answer fences the mount: nothing is acknowledged, whatever the others said, and nothing is logged as a failure', () => {
    const outcomes = [ok(), code('MFS_FENCED', 'owned by mount m2 since epoch 4'), queued()];
    const j = judge(req, outcomes, 1, names);
    expect(j.fencedAt.map((f) => f.at)).toEqual([1]);
    expect(j.fencedAt[0]!.error).toBe((outcomes[1] as { error: MirrorError }).error);
    expect(j.failure).toBeUndefined();
    // The fenced peer does not lack the change: it belongs to another mount now.
    expect(j.verdict.lacking).toEqual([]);
    const error = (j.verdict.decided as { ok: false; error: MirrorError }).error;
    expect(error.code).toBe('MFS_FENCED');
    expect(error.errno).toBe('EROFS');
    expect(error.message).toBe('MFS_FENCED: create "d/f": MFS_FENCED: owned by mount m2 since epoch 4');
  });

  it('every fenced answer is reported in peer order (not-owner counts as fenced); the message is the last one\'s', () => {
    const j = judge(req, [code('MFS_NOT_OWNER', 'owned by m2'), ok(), code('MFS_FENCED', 'epoch 5 owns it')], 1, names);
    expect(j.fencedAt.map((f) => [f.at, f.error.code])).toEqual([[0, 'MFS_NOT_OWNER'], [2, 'MFS_FENCED']]);
    expect((j.verdict.decided as { error: MirrorError }).error.message).toContain('epoch 5 owns it');
  });

  it('not enough answers: with ack all a timed-out peer fails the call, and the change is still rolled forward to it', () => {
    const timeout = code('MFS_TIMEOUT', 'peer north did not answer in 5000 ms');
    const j = judge(req, [ok(), ok(), timeout], 3, names);
    expect(j.verdict.authoritative).toBe('ok');
    expect(j.verdict.lacking).toEqual([{ at: 2, kind: 'resend', reason: 'MFS_TIMEOUT: peer north did not answer in 5000 ms', errno: 'EIO' }]);
    expect(j.verdict.decided.ok).toBe(false);
    expect(j.failure).toMatchObject({ peer: 'north', errno: 'EIO', why: '2 of 3 peers committed it, 3 needed' });
    // With a quorum the same answers are a success; north still lacks the change.
    const q = judge(req, [ok(), ok(), timeout], 2, names);
    expect(q.verdict.decided.ok).toBe(true);
    expect(q.verdict.lacking.map((l) => l.at)).toEqual([2]);
    expect(q.failure).toBeUndefined();
  });

  it('nothing committed and nothing in doubt: not applied anywhere, out of space reported as such, nothing to roll forward', () => {
    const j = judge(req, [errno('ENOSPC'), errno('ENOSPC'), SKIPPED], 2, names);
    expect(j.verdict.authoritative).toBeNull();
    expect(j.verdict.lacking).toEqual([]);
    expect((j.verdict.decided as { error: MirrorError }).error.errno).toBe('ENOSPC');
    expect(j.failure).toMatchObject({ peer: 'east,west,north', errno: 'ENOSPC', why: 'not applied anywhere' });
  });

  it('nothing committed but a peer may have applied it (no answer): every peer asked lacks it, the call fails with EIO', () => {
    const j = judge(req, [code('MFS_UNREACHABLE', 'connection refused'), errno('ENOSPC'), SKIPPED], 1, names);
    expect(j.verdict.authoritative).toBeNull();
    expect(j.verdict.lacking.map((l) => [l.at, l.kind, l.errno])).toEqual([[0, 'resend', 'EIO'], [1, 'resend', 'ENOSPC'], [2, 'resend', 'EIO']]);
    expect(j.failure).toMatchObject({ errno: 'ENOSPC', why: '0 of 3 peers committed it, 1 needed' });
  });

  it('a peer that was behind (skipped) or a straggler lacks the change; with enough others it still succeeds', () => {
    const j = judge(req, [ok(), STRAGGLER, SKIPPED], 1, names);
    expect(j.verdict.decided.ok).toBe(true);
    expect(j.verdict.lacking.map((l) => [l.at, l.kind, l.reason])).toEqual([
      [1, 'resend', messageOf(STRAGGLER)],
      [2, 'resend', messageOf(SKIPPED)],
    ]);
  });

  it('a relay\'s queued "ok" agrees with whatever the peers that applied the change answered', () => {
    // Alone, queued carries the call as ok.
    const alone = [queued(), queued(), STRAGGLER];
    const a = judge(req, alone, 2, names);
    expect(a.verdict.authoritative).toBe('ok');
    expect(a.verdict.decided).toBe(alone[0]);
    // Beside an applied errno, queued counts for it: no disagreement, and the call answers that errno.
    const withErrno = [queued(), errno('EEXIST'), errno('EEXIST')];
    const b = judge(req, withErrno, 3, names);
    expect(b.verdict.authoritative).toBe('EEXIST');
    expect(b.verdict.decided).toBe(withErrno[1]);
    expect(b.verdict.lacking).toEqual([]);
  });
});

describe('sameOutcome (the local copy against the peers)', () => {
  it('matches on ok or the errno the peers committed; in doubt and journaled means it will be rolled forward', () => {
    expect(sameOutcome(ok(), { decided: ok(), authoritative: 'ok', lacking: [] })).toBe(true);
    expect(sameOutcome(errno('ENOENT'), { decided: ok(), authoritative: 'ok', lacking: [] })).toBe(false);
    expect(sameOutcome(errno('ENOENT'), { decided: errno('ENOENT'), authoritative: 'ENOENT', lacking: [] })).toBe(true);
    const inDoubt = { decided: errno('EIO'), authoritative: null, lacking: [{ at: 0, kind: 'resend' as const, reason: 'timeout', errno: 'EIO' }] };
    expect(sameOutcome(ok(), inDoubt)).toBe(true);
    expect(sameOutcome(errno('ENOSPC'), inDoubt)).toBe(false);
    const nowhere = { decided: errno('ENOSPC'), authoritative: null, lacking: [] };
    expect(sameOutcome(errno('ENOSPC'), nowhere)).toBe(true);
    expect(sameOutcome(ok(), nowhere)).toBe(false);
  });
});

describe('stragglers (ack quorum or N)', () => {
  const never = new Promise<Outcome>(() => undefined);

  it('once enough peers committed one outcome, a peer that has not answered within the window is a straggler', async () => {
    let asked = 0;
    const started = Date.now();
    const out = await enoughOutcomes([Promise.resolve(ok()), never, Promise.resolve(ok())], 2, () => {
      asked++;
      return 30;
    });
    expect(out[0]!.ok && out[2]!.ok).toBe(true);
    expect(out[1]).toBe(STRAGGLER);
    expect(asked).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('answers as soon as every peer answered, without waiting for the window', async () => {
    const started = Date.now();
    const out = await enoughOutcomes([Promise.resolve(ok()), Promise.resolve(errno('ENOENT'))], 1, () => 10_000);
    expect(out.map((o) => o.ok)).toEqual([true, false]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('peers that disagree are not "enough": no window starts, it waits for the rest', async () => {
    let late!: (o: Outcome) => void;
    const third = new Promise<Outcome>((r) => (late = r));
    let windowAsked = false;
    const result = enoughOutcomes([Promise.resolve(ok()), Promise.resolve(errno('ENOENT')), third], 2, () => {
      windowAsked = true;
      return 1;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(windowAsked).toBe(false);
    late(ok());
    const out = await result;
    expect(out.every((o) => o !== STRAGGLER)).toBe(true);
  });

  it('the window: three times the slowest in-step peer\'s p99, at least 50 ms, at most the peer timeout', () => {
    expect(stragglerWindowMs([], 5000)).toBe(50);
    expect(stragglerWindowMs([{ inStep: true, latencyP99Ms: 4 }, { inStep: true, latencyP99Ms: 40 }], 5000)).toBe(120);
    // A peer that is behind does not count.
    expect(stragglerWindowMs([{ inStep: true, latencyP99Ms: 4 }, { inStep: false, latencyP99Ms: 900 }], 5000)).toBe(50);
    expect(stragglerWindowMs([{ inStep: true, latencyP99Ms: 900 }], 1000)).toBe(1000);
  });
});
