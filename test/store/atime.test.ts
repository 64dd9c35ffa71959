import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, lstatSync, writeFileSync, lutimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyMutation, type ApplyContext } from '../../src/store/apply.js';
import { FdCache } from '../../src/store/fd-cache.js';
import { noSync } from '../../src/store/durable.js';
import { walkManifest } from '../../src/store/manifest.js';
import { readInto, serveRead } from '../../src/store/reads.js';
import { Tree } from '../../src/store/tree.js';

/**
 * A copy's atime changes only by a reader's access (the `access` operation),
 * never by the mirror's own reads of a file: serving a read, hashing for verify. Real files in a temporary directory on
 * this machine's file system (mounted relatime).
 */

let dir: string;
let ctx: ApplyContext;
const OLD = new Date('2020-01-02T03:04:05Z');
const atimeOf = (p: string) => lstatSync(join(dir, p)).atimeMs;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mirrorfs-atime-'));
  writeFileSync(join(dir, 'f'), 'some bytes to read');
  mkdirSync(join(dir, 'd'));
  writeFileSync(join(dir, 'd/x'), 'x');
  symlinkSync('f', join(dir, 'l'));
  // atime well before mtime: relatime would stamp any reader's access
  for (const p of ['f', 'd']) utimesSync(join(dir, p), OLD, new Date());
  lutimesSync(join(dir, 'l'), OLD, new Date());
  ctx = { tree: new Tree(dir), fds: new FdCache(), sync: noSync };
});
afterEach(() => {
  ctx.fds.closeAll();
  rmSync(dir, { recursive: true, force: true });
});

const stamp = { mount: 'm', epoch: 1 };

describe('atime on a copy', () => {
  // (Listing a directory stamps it on the copy that lists it: node:fs has no O_NOATIME for
  // directories. README, known limits.)
  it('the mirror\'s own reads of a file leave its atime alone: reads, read-many and a manifest with hashes', async () => {
    readInto(ctx, 'f', 0, 4, Buffer.alloc(4));
    serveRead(ctx, { op: 'read', path: 'f', offset: 0, length: 100 });
    serveRead(ctx, { op: 'read-many', paths: ['f', 'd/x'] });
    for await (const _ of walkManifest(dir, { content: true })) void _;
    expect(atimeOf('f')).toBe(OLD.getTime());
  });

  it('the access operation stamps a file, a directory and a symlink as the kernel does for a reader', async () => {
    let seq = 1;
    for (const path of ['f', 'd', 'l']) {
      const before = Date.now() - 1000;
      await applyMutation(ctx, { op: 'access', path, ...stamp, seq: seq++ }, Buffer.alloc(0), false);
      expect(atimeOf(path), path).toBeGreaterThan(before);
    }
  });
});
