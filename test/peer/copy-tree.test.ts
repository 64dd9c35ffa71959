import { chmodSync, lchownSync, linkSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setAttributeSync } from 'fs-xattr';
import { afterEach, describe, expect, it } from 'vitest';
import { noSync } from '../../src/store/durable.js';
import { FdCache } from '../../src/store/fd-cache.js';
import { makeEqual, storeCopy } from '../../src/store/copy-tree.js';
import { Tree } from '../../src/store/tree.js';
import { makedev, mknod, utimens } from '../../src/store/posix.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { compareDirs } from '../helpers/tree.js';

/** makeEqual on real directories (the algorithm behind resync, repair and verify --repair). */

afterEach(() => cleanupTmp());

function copyOf(dir: string, name: string) {
  return storeCopy(name, { tree: new Tree(dir), fds: new FdCache(), sync: noSync });
}

function dirs() {
  const base = tmpDir('mirrorfs-copytree-');
  const src = join(base, 'src');
  const dst = join(base, 'dst');
  mkdirSync(src);
  mkdirSync(dst);
  return { src, dst };
}

describe('makeEqual', () => {
  it('special files, owners and nanosecond mtimes: FIFOs, sockets and device nodes are made with their modes, owners and numbers; files keep their exact mtime', async () => {
    const { src, dst } = dirs();
    mknod(join(src, 'fifo'), 0o010640, 0);
    mknod(join(src, 'sock'), 0o140755, 0);
    mknod(join(src, 'null'), 0o020600, makedev(1, 3));
    mknod(join(src, 'loop'), 0o060660, makedev(7, 9));
    chmodSync(join(src, 'fifo'), 0o640);
    lchownSync(join(src, 'fifo'), 2001, 2002);
    lchownSync(join(src, 'null'), 2003, 2004);
    writeFileSync(join(src, 'small'), 'x');
    writeFileSync(join(src, 'big'), Buffer.alloc(2 * 1024 * 1024, 1)); // over put-file's size: written in ranges, then utimens
    const mtime = { sec: 1_000_000_000, nsec: 123_456_789 };
    for (const f of ['small', 'big']) utimens(join(src, f), mtime, mtime);
    // a wrong special file on the target is replaced
    mknod(join(dst, 'loop'), 0o060660, makedev(7, 8));
    await makeEqual(copyOf(src, 'src'), copyOf(dst, 'dst'), '');
    expect(compareDirs([{ label: 'src', dir: src }, { label: 'dst', dir: dst }])).toEqual([]);
    expect(lstatSync(join(dst, 'fifo')).isFIFO()).toBe(true);
    expect(lstatSync(join(dst, 'sock')).isSocket()).toBe(true);
    expect(lstatSync(join(dst, 'loop')).rdev).toBe(makedev(7, 9));
    expect(lstatSync(join(dst, 'null'))).toMatchObject({ uid: 2003, gid: 2004, rdev: makedev(1, 3) });
    for (const f of ['small', 'big']) expect(lstatSync(join(dst, f), { bigint: true }).mtimeNs).toBe(1_000_000_000_123_456_789n);
  });

  it('repairing one name of a hard-linked file keeps the names linked, with the source content', async () => {
    const { src, dst } = dirs();
    writeFileSync(join(src, 'a'), 'new content');
    linkSync(join(src, 'a'), join(src, 'b'));
    writeFileSync(join(dst, 'a'), 'old');
    linkSync(join(dst, 'a'), join(dst, 'b'));
    await makeEqual(copyOf(src, 'src'), copyOf(dst, 'dst'), 'a');
    expect(readFileSync(join(dst, 'b'), 'utf8')).toBe('new content');
    expect(lstatSync(join(dst, 'a')).ino).toBe(lstatSync(join(dst, 'b')).ino);
  });

  it('a target name linked where the source is not is separated before it is written', async () => {
    const { src, dst } = dirs();
    writeFileSync(join(src, 'a'), 'A');
    writeFileSync(join(src, 'b'), 'B');
    writeFileSync(join(dst, 'a'), 'B');
    linkSync(join(dst, 'a'), join(dst, 'b'));
    await makeEqual(copyOf(src, 'src'), copyOf(dst, 'dst'), '');
    expect(readFileSync(join(dst, 'a'), 'utf8')).toBe('A');
    expect(readFileSync(join(dst, 'b'), 'utf8')).toBe('B');
    expect(compareDirs([{ label: 'src', dir: src }, { label: 'dst', dir: dst }])).toEqual([]);
  });

  it('a name whose directory is missing on the target gets the directory first', async () => {
    const { src, dst } = dirs();
    mkdirSync(join(src, 'd/e'), { recursive: true });
    writeFileSync(join(src, 'd/e/f'), 'deep');
    await makeEqual(copyOf(src, 'src'), copyOf(dst, 'dst'), 'd/e/f');
    expect(readFileSync(join(dst, 'd/e/f'), 'utf8')).toBe('deep');
    // and a name the source lacks, under a directory the target lacks, is simply absent
    await makeEqual(copyOf(src, 'src'), copyOf(dst, 'dst'), 'x/y');
  });

  it('a whole tree: files, directories, symlinks, modes and removals', async () => {
    const { src, dst } = dirs();
    mkdirSync(join(src, 'ro/inner'), { recursive: true });
    writeFileSync(join(src, 'ro/inner/f'), 'x'.repeat(3 * 1024 * 1024)); // larger than one put-file
    writeFileSync(join(src, 'small'), 'small');
    symlinkSync('small', join(src, 'link'));
    chmodSync(join(src, 'ro'), 0o555);
    mkdirSync(join(dst, 'only-in-dst/deep'), { recursive: true });
    writeFileSync(join(dst, 'small'), 'other');
    await makeEqual(copyOf(src, 'src'), copyOf(dst, 'dst'), '');
    expect(compareDirs([{ label: 'src', dir: src }, { label: 'dst', dir: dst }])).toEqual([]);
    chmodSync(join(src, 'ro'), 0o755);
    chmodSync(join(dst, 'ro'), 0o755);
  });

  it('many small files (read from the source in batches): new, changed, unchanged, read-only, with xattrs, hard-linked', async () => {
    const { src, dst } = dirs();
    for (let d = 0; d < 3; d++) {
      mkdirSync(join(src, `d${d}`));
      mkdirSync(join(dst, `d${d}`));
      for (let f = 0; f < 150; f++) {
        const name = join(`d${d}`, `f${f}`);
        writeFileSync(join(src, name), `content of ${name}\n`.repeat(f));
        if (f % 3 === 0) writeFileSync(join(dst, name), `content of ${name}\n`.repeat(f)); // unchanged
        if (f % 3 === 1) writeFileSync(join(dst, name), 'stale'); // changed
        if (f % 10 === 0) setAttributeSync(join(src, name), 'user.tag', Buffer.from(`tag ${f}`));
        if (f % 7 === 0) chmodSync(join(src, name), 0o444);
      }
    }
    writeFileSync(join(src, 'mid'), Buffer.alloc(200 * 1024, 9)); // whole, but not batched
    linkSync(join(src, 'd0/f5'), join(src, 'd2/linked'));
    const progress = await makeEqual(copyOf(src, 'src'), copyOf(dst, 'dst'), '');
    expect(compareDirs([{ label: 'src', dir: src }, { label: 'dst', dir: dst }])).toEqual([]);
    expect(lstatSync(join(dst, 'd2/linked')).ino).toBe(lstatSync(join(dst, 'd0/f5')).ino);
    // 450 small files of which 150 were already equal, and mid
    expect(progress.filesCopied).toBe(300 + 1);
  });
});
