import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { Member } from '../../src/mount/peers/member.js';
import { CatchUp } from '../../src/mount/recovery/catch-up.js';
import { Journal } from '../../src/mount/recovery/journal.js';
import type { Mutation, ResendAnswer } from '../../src/protocol/ops.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/**
 * Catch-up's drain against a real journal (SQLite) and a stand-in peer that answers `resend`
 * calls as a peer does (resend.ts: in order, stopping after an outcome that differs), after a
 * short delay: what it sends in one call, how many calls at once, in what order, and what it
 * defers. The end-to-end catch-up (real peers, real mounts) is covered in faults, lifecycle
 * and commit-levels; the peer's side of `resend` in test/peer/resend.test.ts.
 */

type Change = { change: Mutation; bytes: number; expect: string | null };

/** A journal holding, for west, a create and a write for each of `files` files (seqs 2i+1, 2i+2). */
async function journalOfFiles(files: number): Promise<Journal> {
  const journal = new Journal(tmpDir('mirrorfs-catchup-'));
  const recorded: Array<Promise<void>> = [];
  for (let i = 0; i < files; i++) {
    recorded.push(journal.record(2 * i + 1, { op: 'create', path: `f${i}`, mode: 0o644, exclusive: true }, Buffer.alloc(0), 'ok', [{ peer: 'west', kind: 'resend' }]));
    recorded.push(journal.record(2 * i + 2, { op: 'write', path: `f${i}`, offset: 0 }, Buffer.from(`data ${i}`), 'ok', [{ peer: 'west', kind: 'resend' }]));
  }
  await Promise.all(recorded);
  return journal;
}

/** A peer that applies each resent change by `answer` (an outcome, or 'fail' for a transient failure), one call at a time taking `delayMs`. */
function standInPeer(answer: (c: Mutation) => string) {
  const seen = { calls: 0, inFlight: 0, maxInFlight: 0, largestCall: 0, applied: [] as number[], payloads: new Map<number, string>() };
  const west = {
    name: 'west',
    noteCaughtUp: () => {},
    async resend(_mount: string, _epoch: number, changes: Change[], payload: Buffer): Promise<ResendAnswer> {
      seen.calls++;
      seen.inFlight++;
      seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
      seen.largestCall = Math.max(seen.largestCall, changes.length);
      await new Promise((r) => setTimeout(r, 2)); // the round trip
      seen.inFlight--;
      const outcomes: ResendAnswer['outcomes'] = [];
      let at = 0;
      for (const { change, bytes, expect } of changes) {
        const got = answer(change);
        if (got === 'fail') return { outcomes, failure: { errno: 'EIO', code: 'MFS_UNREACHABLE', message: 'stand-in transient failure' } };
        seen.applied.push(change.seq);
        seen.payloads.set(change.seq, payload.subarray(at, at + bytes).toString());
        at += bytes;
        outcomes.push(got === 'ok' ? { ok: true } : { ok: false, error: { errno: got, code: 'MFS_ERRNO', message: got } });
        if (expect !== null && got !== expect) break;
      }
      return { outcomes };
    },
  } as unknown as Member;
  return { west, seen };
}

function catchUpOver(journal: Journal): CatchUp {
  return new CatchUp({
    mountId: 'm', epoch: 1, journal, log: silentLogger(), withClaims: (_n, fn) => fn(), repairSource: () => null,
    onFenced: () => {}, admission: { hold: () => () => {}, changesPastGate: 0 }, quietTimeoutMs: 1000,
  });
}

describe('catch-up drain', () => {
  afterEach(() => cleanupTmp());

  it('sends many changes to a call and several calls at once, each change once, with its own payload, a write after its create', async () => {
    const files = 300;
    const journal = await journalOfFiles(files);
    try {
      const { west, seen } = standInPeer(() => 'ok');
      const done = await catchUpOver(journal).drain(west);
      expect(done.ops).toBe(2 * files);
      expect([...seen.applied].sort((a, b) => a - b)).toEqual(Array.from({ length: 2 * files }, (_, i) => i + 1)); // each once
      for (let i = 0; i < files; i++) {
        expect(seen.applied.indexOf(2 * i + 2)).toBeGreaterThan(seen.applied.indexOf(2 * i + 1));
        expect(seen.payloads.get(2 * i + 2)).toBe(`data ${i}`);
      }
      expect(seen.largestCall).toBeGreaterThan(1);
      expect(seen.calls).toBeLessThan(2 * files / 8);
      expect(seen.maxInFlight).toBeGreaterThan(1);
      expect(journal.countFor('west').ops).toBe(0);
    } finally {
      journal.close();
    }
  });

  it('a change answered differently stops its call there: it and every later change to its names are deferred, the others delivered', async () => {
    const journal = await journalOfFiles(100);
    try {
      // f7 exists on west already: its create answers EEXIST where the others recorded ok.
      const { west, seen } = standInPeer((c) => (c.op === 'create' && c.path === 'f7' ? 'EEXIST' : 'ok'));
      const catchUp = catchUpOver(journal);
      const done = await catchUp.drain(west);
      expect(seen.applied).toContain(15); // the create, answered EEXIST
      expect(seen.applied).not.toContain(16); // its write: deferred, not applied onto a file west holds differently
      expect(done.ops).toBe(198);
      expect(catchUp.hasDeferred(west)).toBe(true);
      // Both stay in the journal, as repairs (copied whole at the join), and nothing else.
      expect(journal.lackingFor('west').map((e) => [e.seq, e.kind])).toEqual([[15, 'repair'], [16, 'repair']]);
    } finally {
      journal.close();
    }
  });

  it('a transient failure in the middle of a call: what was answered before it is delivered, the rest stays in the journal, and the drain fails', async () => {
    const journal = await journalOfFiles(100);
    try {
      const { west, seen } = standInPeer((c) => (c.seq === 41 ? 'fail' : 'ok'));
      await expect(catchUpOver(journal).drain(west)).rejects.toMatchObject({ code: 'MFS_UNREACHABLE' });
      const lacking = journal.lackingFor('west', 0, 1000).map((e) => e.seq);
      expect(lacking).toContain(41);
      expect(lacking).toContain(42);
      for (const seq of seen.applied) expect(lacking).not.toContain(seq); // applied and answered: delivered
      expect(seen.applied).toContain(40);
    } finally {
      journal.close();
    }
  });
});
