import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyMutation, witnessOf, type ApplyContext } from '../../src/store/apply.js';
import { noSync } from '../../src/store/durable.js';
import { FdCache } from '../../src/store/fd-cache.js';
import { Tree } from '../../src/store/tree.js';

/** rename with noReplace (RENAME_NOREPLACE) on a copy, with real files: atomic "only if absent", and a redo after a crash. */

let dir: string;
let ctx: ApplyContext;
let seq = 1;
const stamp = () => ({ mount: 'm', epoch: 1, seq: seq++ });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mirrorfs-rename-'));
  writeFileSync(join(dir, 'a'), 'a');
  writeFileSync(join(dir, 'b'), 'b');
  ctx = { tree: new Tree(dir), fds: new FdCache(), sync: noSync };
});
afterEach(() => {
  ctx.fds.closeAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('rename noReplace', () => {
  it('renames onto an absent name, refuses an existing one with EEXIST and changes nothing then', async () => {
    await expect(applyMutation(ctx, { op: 'rename', from: 'a', to: 'b', noReplace: true, ...stamp() }, Buffer.alloc(0), false)).rejects.toMatchObject({ code: 'EEXIST' });
    expect([readFileSync(join(dir, 'a'), 'utf8'), readFileSync(join(dir, 'b'), 'utf8')]).toEqual(['a', 'b']);
    await applyMutation(ctx, { op: 'rename', from: 'a', to: 'c', noReplace: true, ...stamp() }, Buffer.alloc(0), false);
    expect([existsSync(join(dir, 'a')), readFileSync(join(dir, 'c'), 'utf8')]).toEqual([false, 'a']);
  });

  it('a redo of one that was applied (from gone, to there) succeeds; a redo that finds both names still fails', async () => {
    const req = { op: 'rename' as const, from: 'a', to: 'c', noReplace: true, ...stamp() };
    await applyMutation(ctx, req, Buffer.alloc(0), false);
    await expect(applyMutation(ctx, req, Buffer.alloc(0), true)).resolves.toBeDefined();
    await expect(applyMutation(ctx, { op: 'rename', from: 'b', to: 'c', noReplace: true, ...stamp() }, Buffer.alloc(0), true)).rejects.toMatchObject({ code: 'EEXIST' });
  });
});

describe('rename exchange, redone after a crash', () => {
  const exchange = () => ({ op: 'rename' as const, from: 'a', to: 'b', exchange: true, ...stamp() });
  const contents = () => [readFileSync(join(dir, 'a'), 'utf8'), readFileSync(join(dir, 'b'), 'utf8')];

  it('swaps when the names still hold what the witness recorded, and not again when they are swapped', async () => {
    const req = exchange();
    const witness = witnessOf(ctx, req);
    await applyMutation(ctx, req, Buffer.alloc(0), true, witness); // the crash came before the swap
    expect(contents()).toEqual(['b', 'a']);
    await applyMutation(ctx, req, Buffer.alloc(0), true, witness); // the crash came after it
    expect(contents()).toEqual(['b', 'a']);
  });

  it('refuses, as an error the peer does not record, when a name holds neither (made again in between)', async () => {
    const req = exchange();
    const witness = witnessOf(ctx, req);
    writeFileSync(join(dir, 'b2'), 'new b'); // another inode (made while b's is still in use: ext4 reuses a freed number)
    renameSync(join(dir, 'b2'), join(dir, 'b'));
    await expect(applyMutation(ctx, req, Buffer.alloc(0), true, witness)).rejects.toMatchObject({ code: 'MFS_INTERNAL', errno: 'EIO' });
    expect(contents()).toEqual(['a', 'new b']);
  });

  it('has no witness when a name is missing, and then fails as the first attempt did', async () => {
    const req = { op: 'rename' as const, from: 'a', to: 'absent', exchange: true, ...stamp() };
    expect(witnessOf(ctx, req)).toBeNull();
    await expect(applyMutation(ctx, req, Buffer.alloc(0), true, null)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
