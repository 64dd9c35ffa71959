import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { walkManifest } from '../../src/store/manifest.js';
import { compareWalkOrder, mergeManifests } from '../../src/store/manifest-merge.js';
import type { ManifestEntry } from '../../src/protocol/ops.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/**
 * Manifests are compared as streams (issue 23): the merge must follow the
 * walk's own order exactly, or it would report entries as missing that are
 * only listed elsewhere in the stream.
 */

afterEach(() => cleanupTmp());

async function paths(root: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of walkManifest(root, { content: false })) out.push(e.path);
  return out;
}

function entry(path: string, size = 0): ManifestEntry {
  return { path, type: 'file', mode: 0o100644, uid: 0, gid: 0, size, mtimeMs: 0 } as ManifestEntry;
}

async function* streamOf(entries: ManifestEntry[], closed?: { count: number }): AsyncGenerator<ManifestEntry> {
  try {
    for (const e of entries) yield e;
  } finally {
    if (closed) closed.count++;
  }
}

describe('manifest merge', () => {
  it('orders paths as the walk lists them, which plain string order does not', async () => {
    const root = tmpDir('mirrorfs-merge-');
    // Names around '/' in code-unit order ('!' and '-' sort below it, 'B' and 'é' above), and prefixes of each other.
    for (const d of ['a', 'a/x', 'a-b', 'a!', 'ab', 'B', 'é', 'a/x/y']) mkdirSync(join(root, d), { recursive: true });
    for (const f of ['a/x/y/z', 'a/x-1', 'a-b/c', 'a!/d', 'ab/e', 'B/f', 'é/g', 'a0']) writeFileSync(join(root, f), f);
    const walked = await paths(root);
    expect([...walked].sort(compareWalkOrder)).toEqual(walked);
    expect([...walked].sort()).not.toEqual(walked); // the case the comparator exists for
    for (let i = 1; i < walked.length; i++) expect(compareWalkOrder(walked[i - 1]!, walked[i]!)).toBeLessThan(0);
  });

  it('a walk resumed after a path lists exactly what comes after it, without describing what comes before', async () => {
    const root = tmpDir('mirrorfs-after-');
    for (const d of ['a/x/y', 'a-b', 'a!', 'b/c', 'é']) mkdirSync(join(root, d), { recursive: true });
    for (let i = 0; i < 100; i++) writeFileSync(join(root, 'a/x', `f${String(i).padStart(3, '0')}`), String(i));
    for (const f of ['a/x/y/z', 'a-b/c', 'a!/d', 'b/c/e', 'é/g', 'a0']) writeFileSync(join(root, f), f);
    const whole = await paths(root);
    // After a directory, a file deep down, a name that is not there, the last entry, and the root ('' lists all).
    for (const after of ['a', 'a/x/f050', 'a/x/f050x', 'a/x/y', 'a-b/c', 'a!', 'b/c/e0', 'é/g', 'zzz']) {
      const resumed: string[] = [];
      for await (const e of walkManifest(root, { content: false, after })) resumed.push(e.path);
      expect(resumed, `after ${after}`).toEqual(whole.filter((p) => compareWalkOrder(p, after) > 0));
    }
    // What comes before is skipped, not described: far fewer holds of the lock.
    let holds = 0;
    const counting = <T>(fn: () => T) => {
      holds++;
      return Promise.resolve(fn());
    };
    for await (const _ of walkManifest(root, { content: false, hold: counting })) void _;
    const wholeHolds = holds;
    holds = 0;
    for await (const _ of walkManifest(root, { content: false, hold: counting, after: 'b' })) void _;
    expect(holds).toBeLessThan(wholeHolds / 2);
  });

  it('yields every path of any copy once, with each copy\'s entry or null', async () => {
    const a = [entry('a'), entry('a/x'), entry('a-b'), entry('c', 1)];
    const b = [entry('a'), entry('a-b'), entry('b'), entry('c', 2)];
    const merged: Array<[string, Array<number | null>]> = [];
    for await (const { path, entries } of mergeManifests([streamOf(a), streamOf(b)])) merged.push([path, entries.map((e) => (e ? e.size : null))]);
    expect(merged).toEqual([
      ['a', [0, 0]],
      ['a/x', [0, null]],
      ['a-b', [0, 0]],
      ['b', [null, 0]],
      ['c', [1, 2]],
    ]);
  });

  it('refuses a stream out of the walk order, naming it', async () => {
    const good = [entry('a'), entry('b')];
    const bad = [entry('a'), entry('a-b'), entry('a/x')];
    const read = async () => {
      for await (const _ of mergeManifests([streamOf(good), streamOf(bad)], ['east', 'west'])) void _;
    };
    await expect(read()).rejects.toThrow(/west: manifest out of order \("a\/x" after "a-b"\)/);
  });

  it('reports a stream\'s failure at once, not after another stream\'s wait ends', async () => {
    async function* failing(): AsyncGenerator<ManifestEntry> {
      yield entry('a');
      throw new Error('east went away');
    }
    async function* stalled(): AsyncGenerator<ManifestEntry> {
      yield entry('a');
      await new Promise(() => undefined); // a peer that sends nothing more (its own bound is long)
    }
    const read = async () => {
      for await (const _ of mergeManifests([failing(), stalled()])) void _;
    };
    await expect(read()).rejects.toThrow('east went away');
  });

  it('ends every stream when the reader stops early', async () => {
    const closed = { count: 0 };
    const many = Array.from({ length: 100 }, (_, i) => entry(`f${String(i).padStart(3, '0')}`));
    for await (const { path } of mergeManifests([streamOf(many, closed), streamOf(many, closed)])) if (path === 'f010') break;
    expect(closed.count).toBe(2);
  });
});
