import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../../src/mount/recovery/journal.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/** The primary's journal (SQLite, a real file): what peers lack, and leaving it once delivered. */
describe('Journal', () => {
  afterEach(() => cleanupTmp());

  it('keeps a change while any peer lacks it, in seq order, and drops it once every peer has it', async () => {
    const dir = tmpDir('mirrorfs-journal-');
    const j = new Journal(dir);
    try {
      await Promise.all([
        j.record(1, { op: 'mkdir', path: 'd', mode: 0o755 }, Buffer.alloc(0), 'ok', [{ peer: 'west', kind: 'resend' }, { peer: 'north', kind: 'resend' }]),
        j.record(2, { op: 'write', path: 'd/f', offset: 0 }, Buffer.from('abc'), 'ok', [{ peer: 'west', kind: 'resend' }]),
      ]);
      expect(j.lackingFor('west').map((e) => e.seq)).toEqual([1, 2]);
      expect(j.countFor('west')).toEqual({ ops: 2, bytes: 3 });
      j.delivered('west', 1);
      j.delivered('west', 2);
      expect(j.lackingFor('west')).toEqual([]);
      // North still lacks seq 1: the change stays; seq 2 is gone.
      expect(j.lackingFor('north').map((e) => e.seq)).toEqual([1]);
      expect(j.maxSeq()).toBe(1);
      j.delivered('north', 1);
      expect(j.countFor('north').ops).toBe(0);
      expect(j.maxSeq()).toBe(0);
    } finally {
      j.close();
    }
  });

  it('a change recorded just before close is committed by close, and its record() resolves (not rejected by a commit on the closed database)', async () => {
    const dir = tmpDir('mirrorfs-journal-');
    const j = new Journal(dir);
    const recorded = j.record(1, { op: 'write', path: 'f', offset: 0 }, Buffer.from('x'), 'ok', [{ peer: 'west', kind: 'resend' }]);
    j.close();
    await expect(recorded).resolves.toBeUndefined();
    const again = new Journal(dir);
    try {
      expect(again.lackingFor('west').map((e) => e.seq)).toEqual([1]);
    } finally {
      again.close();
    }
  });

  it('answers "does any peer still lack this change" from an index, not a scan (catch-up of 20,000 files went quadratic)', () => {
    const dir = tmpDir('mirrorfs-journal-');
    new Journal(dir).close();
    const db = new Database(join(dir, 'journal.db'), { readonly: true });
    try {
      const plan = db.prepare('EXPLAIN QUERY PLAN SELECT 1 FROM lacking WHERE seq = ?').all(7) as Array<{ detail: string }>;
      expect(plan.map((p) => p.detail).join('; ')).toMatch(/USING (COVERING )?INDEX lacking_by_seq/);
    } finally {
      db.close();
    }
  });
});
