import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { Member } from '../../src/mount/peers/member.js';
import { CatchUp } from '../../src/mount/recovery/catch-up.js';
import { Journal } from '../../src/mount/recovery/journal.js';
import { encodeFrameParts } from '../../src/protocol/codec.js';
import { isFenced } from '../../src/protocol/errors.js';
import type { Mutation, MutationRequest, ResendAnswer } from '../../src/protocol/ops.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/**
 * Catch-up's drain against a real journal (SQLite) and a stand-in peer that answers `resend`
 * calls as a peer does (resend.ts: in order, stopping after an outcome that differs), after a
 * short delay: what it sends in one call, how many calls at once, in what order, and what it
 * defers. The end-to-end catch-up (real peers, real mounts) is covered in faults, lifecycle
 * and commit-levels; the peer's side of `resend` in test/peer/resend.test.ts.
 */

type Change = { change: Mutation; bytes: number; expect: string | null };

/** A journal holding, for west, these changes as seqs 1, 2, 3 ..., each recorded ok by the copies that have it. */
async function journalOf(changes: Array<{ request: MutationRequest; payload?: string }>): Promise<Journal> {
  const journal = new Journal(tmpDir('mirrorfs-catchup-'));
  await Promise.all(changes.map((c, i) => journal.record(i + 1, c.request, Buffer.from(c.payload ?? ''), 'ok', [{ peer: 'west', kind: 'resend' }])));
  return journal;
}

/**
 * Creates of `files` files (seqs 1..files), then a write to each (seqs files+1..2 files): a
 * file's write is in a later call than its create, so only the claims order them.
 */
function filesThenWrites(files: number): Array<{ request: MutationRequest; payload?: string }> {
  const creates = Array.from({ length: files }, (_, i) => ({ request: { op: 'create', path: `f${i}`, mode: 0o644, exclusive: true } as MutationRequest }));
  const writes = Array.from({ length: files }, (_, i) => ({ request: { op: 'write', path: `f${i}`, offset: 0 } as MutationRequest, payload: `data ${i}` }));
  return [...creates, ...writes];
}

/**
 * A peer that applies each resent change by `answer` (an outcome; 'fail' or 'fenced' for a
 * failure without one), each call after a short round trip. The call is encoded as the client
 * would send it, so one over a frame's limits fails as it would.
 */
function standInPeer(answer: (c: Mutation) => string) {
  const seen = { calls: 0, inFlight: 0, maxInFlight: 0, largestCall: 0, applied: [] as number[], payloads: new Map<number, string>() };
  const west = {
    name: 'west',
    noteCaughtUp: () => {},
    async resend(mount: string, epoch: number, changes: Change[], payload: Buffer): Promise<ResendAnswer> {
      encodeFrameParts({ op: 'resend', mount, epoch, changes }, payload); // throws MFS_TOO_LARGE as the client would
      seen.calls++;
      seen.inFlight++;
      seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
      seen.largestCall = Math.max(seen.largestCall, changes.length);
      // The round trip, longer for calls that create: a later call must still wait for the creates it depends on.
      await new Promise((r) => setTimeout(r, changes.some((c) => c.change.op === 'create') ? 8 : 1));
      seen.inFlight--;
      const outcomes: ResendAnswer['outcomes'] = [];
      let at = 0;
      for (const { change, bytes, expect } of changes) {
        const got = answer(change);
        if (got === 'fail') return { outcomes, failure: { errno: 'EIO', code: 'MFS_UNREACHABLE', message: 'stand-in transient failure' } };
        if (got === 'fenced') return { outcomes, failure: { errno: 'EPERM', code: 'MFS_FENCED', message: 'stand-in: another mount owns this peer now' } };
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
    const journal = await journalOf(filesThenWrites(files));
    try {
      const { west, seen } = standInPeer(() => 'ok');
      const done = await catchUpOver(journal).drain(west);
      expect(done.ops).toBe(2 * files);
      expect([...seen.applied].sort((a, b) => a - b)).toEqual(Array.from({ length: 2 * files }, (_, i) => i + 1)); // each once
      for (let i = 0; i < files; i++) {
        expect(seen.applied.indexOf(files + i + 1)).toBeGreaterThan(seen.applied.indexOf(i + 1)); // the write after its create
        expect(seen.payloads.get(files + i + 1)).toBe(`data ${i}`);
      }
      expect(seen.largestCall).toBeGreaterThan(1);
      expect(seen.calls).toBeLessThan(2 * files / 8);
      expect(seen.maxInFlight).toBeGreaterThan(1);
      expect(journal.countFor('west').ops).toBe(0);
    } finally {
      journal.close();
    }
  });

  it('long names in characters of three UTF-8 bytes: calls stay within a frame header and every change arrives', async () => {
    // 64 creates of names of 700 CJK characters (2,100 bytes each): by characters a call of 32
    // would fit the header's 64 KiB; by bytes it would not.
    const long = (i: number) => `${'漢'.repeat(700)}${i}`;
    const journal = await journalOf(Array.from({ length: 64 }, (_, i) => ({ request: { op: 'create', path: long(i), mode: 0o644, exclusive: true } as MutationRequest })));
    try {
      const { west, seen } = standInPeer(() => 'ok');
      expect((await catchUpOver(journal).drain(west)).ops).toBe(64);
      expect(seen.applied.length).toBe(64);
      expect(seen.calls).toBeGreaterThan(2);
    } finally {
      journal.close();
    }
  });

  it('a change answered differently stops its call there: it and every later change to its names are deferred, the others delivered', async () => {
    // f7's create is seq 8; its write, seq 108, comes in a later call. Directory d is seq 201;
    // a file in it, seq 242, comes in a later call too (after 40 other creates).
    const changes = [
      ...filesThenWrites(100),
      { request: { op: 'mkdir', path: 'd', mode: 0o755 } as MutationRequest },
      ...Array.from({ length: 40 }, (_, i) => ({ request: { op: 'create', path: `z${i}`, mode: 0o644, exclusive: true } as MutationRequest })),
      { request: { op: 'create', path: 'd/x', mode: 0o644, exclusive: true } as MutationRequest },
    ];
    const journal = await journalOf(changes);
    try {
      // f7 and d exist on west already: their creates answer EEXIST where the others recorded ok.
      const { west, seen } = standInPeer((c) => ((c.op === 'create' && c.path === 'f7') || (c.op === 'mkdir' && c.path === 'd') ? 'EEXIST' : 'ok'));
      const catchUp = catchUpOver(journal);
      const done = await catchUp.drain(west);
      expect(seen.applied).toContain(8); // the create, answered EEXIST
      expect(seen.applied).not.toContain(108); // its write: deferred, not applied onto a file west holds differently
      expect(seen.applied).toContain(201); // the mkdir, answered EEXIST
      expect(seen.applied).not.toContain(242); // d/x, in a later call: deferred too
      expect(done.ops).toBe(changes.length - 4);
      expect(catchUp.hasDeferred(west)).toBe(true);
      // They stay in the journal, as repairs (copied whole at the join), and nothing else.
      expect(journal.lackingFor('west').map((e) => [e.seq, e.kind])).toEqual([[8, 'repair'], [108, 'repair'], [201, 'repair'], [242, 'repair']]);
    } finally {
      journal.close();
    }
  });

  it('a transient failure in the middle of a call: what was answered before it is delivered, the rest stays in the journal, and the drain fails', async () => {
    const journal = await journalOf(filesThenWrites(100));
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

  it('a peer fenced by another mount says so inside the call: the drain fails as fenced (the loop then stops)', async () => {
    const journal = await journalOf(filesThenWrites(20));
    try {
      const { west } = standInPeer((c) => (c.seq === 5 ? 'fenced' : 'ok'));
      const err = await catchUpOver(journal).drain(west).then(() => null, (e: unknown) => e);
      expect(isFenced(err)).toBe(true);
    } finally {
      journal.close();
    }
  });
});
