import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { walkManifest, type Hold } from '../../src/store/manifest.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/**
 * The manifest walk holds the namespace lock a batch at a time (issue 22), so
 * names may change between holds. What changes there must never lead it out of
 * the tree: a directory replaced by a symlink between holds is not read through.
 */

afterEach(() => cleanupTmp());

async function collect(root: string, hold?: Hold): Promise<string[]> {
  const out: string[] = [];
  for await (const e of walkManifest(root, { content: true, hold })) out.push(e.path);
  return out;
}

describe('walkManifest in holds', () => {
  it('lists the same entries in the same order with holds as without', async () => {
    const root = tmpDir('mirrorfs-walk-');
    mkdirSync(join(root, 'd', 'e'), { recursive: true });
    for (let i = 0; i < 150; i++) writeFileSync(join(root, 'd', `f${i}`), String(i));
    writeFileSync(join(root, 'd', 'e', 'g'), 'g');
    let holds = 0;
    const hold: Hold = (fn) => {
      holds++;
      return Promise.resolve(fn());
    };
    expect(await collect(root, hold)).toEqual(await collect(root));
    expect(holds).toBeGreaterThan(3); // batches, not one hold for the tree
  });

  it('does not read through a directory that became a symlink between holds', async () => {
    const root = tmpDir('mirrorfs-walk-');
    const outside = tmpDir('mirrorfs-outside-');
    writeFileSync(join(outside, 'secret'), 'not in the tree');
    mkdirSync(join(root, 'd'));
    for (let i = 0; i < 100; i++) writeFileSync(join(root, 'd', `f${String(i).padStart(3, '0')}`), String(i));
    let holds = 0;
    const hold: Hold = (fn) => {
      holds++;
      // After the walk described d as a directory and before it lists d, someone swaps d for a symlink out of the tree.
      if (holds === 3) {
        renameSync(join(root, 'd'), join(root, 'moved'));
        symlinkSync(outside, join(root, 'd'));
      }
      return Promise.resolve(fn());
    };
    const paths = await collect(root, hold);
    expect(paths).toContain('d'); // described before the swap
    expect(paths.filter((p) => p.startsWith('d/'))).toEqual([]); // nothing read through the symlink: not the secret
  });
});
