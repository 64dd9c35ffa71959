import {
  closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync,
  rmSync, statSync, symlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FALLOC, fallocate, getU64Xattr, getXattr, linkFd, listXattrs, makedev, major, minor, mknod, openTmpfile, removeXattr, renameat2, setU64Xattr, setXattr, utimens } from '../../src/store/posix.js';
import { INODE_ID_BASE, InodeIds, MAX_INODE_ID_EPOCH } from '../../src/store/inode-ids.js';

/** The addon's syscalls for real, in a temporary directory. */

const { S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK } = constants;
const isRoot = process.getuid?.() === 0; // device nodes need CAP_MKNOD

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mirrorfs-posix-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The error `fn` throws (fails the test when it throws nothing). */
function thrown(fn: () => void): NodeJS.ErrnoException & { dest?: string } {
  try {
    fn();
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  throw new Error('expected an error');
}

const umask = process.umask();
const ns = (sec: number, nsec: number): bigint => BigInt(sec) * 1_000_000_000n + BigInt(nsec);

describe('mknod', () => {
  it('makes a FIFO, with the umask applied to its mode', () => {
    const p = join(dir, 'fifo');
    mknod(p, S_IFIFO | 0o666, 0);
    const st = lstatSync(p);
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o666 & ~umask);
  });

  it('makes a socket node', () => {
    const p = join(dir, 'sock');
    mknod(p, S_IFSOCK | 0o640, 0);
    const st = lstatSync(p);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o640 & ~umask);
  });

  it.skipIf(!isRoot)('makes a character device 1,3 like /dev/null', () => {
    const p = join(dir, 'null');
    mknod(p, S_IFCHR | 0o644, makedev(1, 3));
    const st = lstatSync(p, { bigint: true });
    expect(st.isCharacterDevice()).toBe(true);
    expect(Number(st.mode & 0o7777n)).toBe(0o644 & ~umask);
    expect(major(Number(st.rdev))).toBe(1);
    expect(minor(Number(st.rdev))).toBe(3);
    if (existsSync('/dev/null')) expect(Number(st.rdev)).toBe(statSync('/dev/null').rdev);
  });

  it.skipIf(!isRoot)('makes a block device 7,0', () => {
    const p = join(dir, 'loop');
    mknod(p, S_IFBLK | 0o600, makedev(7, 0));
    const st = lstatSync(p);
    expect(st.isBlockDevice()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o600 & ~umask);
    expect([major(st.rdev), minor(st.rdev)]).toEqual([7, 0]);
  });

  it.skipIf(!isRoot)('carries the largest Linux device numbers (12-bit major, 20-bit minor) through makedev', () => {
    const p = join(dir, 'big');
    const dev = makedev(4095, 0xfffff);
    expect(dev).toBeGreaterThan(0xffff); // the minor's high bits sit above the major's
    mknod(p, S_IFCHR | 0o600, dev);
    const st = lstatSync(p);
    expect(st.rdev).toBe(dev);
    expect([major(st.rdev), minor(st.rdev)]).toEqual([4095, 0xfffff]);
  });

  it('fails like node:fs when the name exists', () => {
    const p = join(dir, 'taken');
    writeFileSync(p, 'x');
    const err = thrown(() => mknod(p, S_IFIFO | 0o644, 0));
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('EEXIST');
    expect(err.errno).toBe(-osConstants.errno.EEXIST);
    expect(err.syscall).toBe('mknod');
    expect(err.path).toBe(p);
    expect(err.message).toBe(`EEXIST: file already exists, mknod '${p}'`);
    const fsErr = thrown(() => mkdirSync(p));
    expect(Object.keys(err).sort()).toEqual(Object.keys(fsErr).sort());
    expect(lstatSync(p).isFile()).toBe(true);
  });
});

describe('utimens', () => {
  it('sets both times to the nanosecond', () => {
    const p = join(dir, 'f');
    writeFileSync(p, 'x');
    utimens(p, { sec: 1_000_000_000, nsec: 123_456_789 }, { sec: 1_100_000_000, nsec: 987_654_321 });
    const st = lstatSync(p, { bigint: true });
    expect(st.atimeNs).toBe(ns(1_000_000_000, 123_456_789));
    expect(st.mtimeNs).toBe(ns(1_100_000_000, 987_654_321));
  });

  it('takes seconds before 1970 and past 2^32', () => {
    const p = join(dir, 'f');
    writeFileSync(p, 'x');
    utimens(p, { sec: -86_400, nsec: 5 }, { sec: 2 ** 32 + 7, nsec: 999_999_999 });
    const st = lstatSync(p, { bigint: true });
    expect(st.atimeNs).toBe(ns(-86_400, 5));
    expect(st.mtimeNs).toBe(ns(2 ** 32 + 7, 999_999_999));
  });

  it("leaves an 'omit' time unchanged", () => {
    const p = join(dir, 'f');
    writeFileSync(p, 'x');
    utimens(p, { sec: 1_000_000_000, nsec: 1 }, { sec: 1_000_000_000, nsec: 2 });
    utimens(p, 'omit', { sec: 1_200_000_000, nsec: 3 });
    let st = lstatSync(p, { bigint: true });
    expect(st.atimeNs).toBe(ns(1_000_000_000, 1));
    expect(st.mtimeNs).toBe(ns(1_200_000_000, 3));
    utimens(p, { sec: 1_300_000_000, nsec: 4 }, 'omit');
    st = lstatSync(p, { bigint: true });
    expect(st.atimeNs).toBe(ns(1_300_000_000, 4));
    expect(st.mtimeNs).toBe(ns(1_200_000_000, 3));
  });

  it("sets a 'now' time to the current time", () => {
    const p = join(dir, 'f');
    writeFileSync(p, 'x');
    utimens(p, { sec: 1_000_000_000, nsec: 0 }, { sec: 1_000_000_000, nsec: 0 });
    utimens(p, 'omit', 'now');
    const st = lstatSync(p);
    expect(Math.abs(st.mtimeMs - Date.now())).toBeLessThan(5_000);
    expect(st.atimeMs).toBe(1_000_000_000_000);
  });

  it('with noFollow sets a symbolic link’s own times, not its target’s', () => {
    const target = join(dir, 'target');
    const link = join(dir, 'link');
    writeFileSync(target, 'x');
    symlinkSync('target', link);
    utimens(target, { sec: 1_000_000_000, nsec: 0 }, { sec: 1_000_000_000, nsec: 0 });
    utimens(link, { sec: 1_234_567_890, nsec: 42 }, { sec: 1_234_567_890, nsec: 43 }, { noFollow: true });
    expect(lstatSync(link, { bigint: true }).mtimeNs).toBe(ns(1_234_567_890, 43));
    expect(lstatSync(target, { bigint: true }).mtimeNs).toBe(ns(1_000_000_000, 0));
    // Without it, the call follows the link.
    utimens(link, { sec: 1_111_111_111, nsec: 0 }, { sec: 1_111_111_111, nsec: 7 });
    expect(lstatSync(target, { bigint: true }).mtimeNs).toBe(ns(1_111_111_111, 7));
    expect(lstatSync(link, { bigint: true }).mtimeNs).toBe(ns(1_234_567_890, 43));
  });

  it('fails like node:fs on a missing file, and refuses an out-of-range nsec', () => {
    const p = join(dir, 'missing');
    const err = thrown(() => utimens(p, 'now', 'now'));
    expect(err.code).toBe('ENOENT');
    expect(err.errno).toBe(-osConstants.errno.ENOENT);
    expect(err.syscall).toBe('utimensat');
    expect(err.path).toBe(p);
    // Linux does not even look the path up when both times are omitted.
    expect(() => utimens(p, 'omit', 'omit')).not.toThrow();
    expect(() => utimens(p, { sec: 0, nsec: 1_000_000_000 }, 'omit')).toThrow(RangeError);
    expect(() => utimens(p, { sec: 0, nsec: -1 }, 'omit')).toThrow(RangeError);
  });
});

describe('renameat2', () => {
  it('with noReplace refuses an existing target (EEXIST) and renames otherwise', () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    const c = join(dir, 'c');
    writeFileSync(a, 'A');
    writeFileSync(b, 'B');
    const err = thrown(() => renameat2(a, b, { noReplace: true }));
    expect(err.code).toBe('EEXIST');
    expect(err.syscall).toBe('renameat2');
    expect(err.path).toBe(a);
    expect(err.dest).toBe(b);
    expect(readFileSync(a, 'utf8')).toBe('A');
    expect(readFileSync(b, 'utf8')).toBe('B');
    renameat2(a, c, { noReplace: true });
    expect(existsSync(a)).toBe(false);
    expect(readFileSync(c, 'utf8')).toBe('A');
  });

  it('with no flags replaces the target, like rename(2)', () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    writeFileSync(a, 'A');
    writeFileSync(b, 'B');
    renameat2(a, b, {});
    expect(existsSync(a)).toBe(false);
    expect(readFileSync(b, 'utf8')).toBe('A');
  });

  it('with exchange swaps two files, and needs both to exist', () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    writeFileSync(a, 'A');
    writeFileSync(b, 'B');
    renameat2(a, b, { exchange: true });
    expect(readFileSync(a, 'utf8')).toBe('B');
    expect(readFileSync(b, 'utf8')).toBe('A');
    expect(thrown(() => renameat2(a, join(dir, 'none'), { exchange: true })).code).toBe('ENOENT');
  });
});

describe('fallocate', () => {
  const MiB = 1 << 20;

  async function withFile(fn: (fd: number, path: string) => Promise<void>): Promise<void> {
    const path = join(dir, 'f');
    const fd = openSync(path, 'w+');
    try {
      await fn(fd, path);
    } finally {
      closeSync(fd);
    }
  }

  it('with KEEP_SIZE reserves blocks but keeps the size', async () => {
    await withFile(async (fd) => {
      writeSync(fd, Buffer.from('hello'));
      const before = fstatSync(fd);
      await fallocate(fd, FALLOC.KEEP_SIZE, 0, 4 * MiB);
      const after = fstatSync(fd);
      expect(after.size).toBe(5);
      expect(after.blocks * 512).toBeGreaterThanOrEqual(4 * MiB);
      expect(after.blocks).toBeGreaterThan(before.blocks);
    });
  });

  it('with PUNCH_HOLE | KEEP_SIZE zeroes a range and keeps the rest', async () => {
    await withFile(async (fd, path) => {
      writeSync(fd, Buffer.alloc(64 * 1024, 0xaa));
      await fallocate(fd, FALLOC.PUNCH_HOLE | FALLOC.KEEP_SIZE, 4096, 8192);
      const data = readFileSync(path);
      expect(data.length).toBe(64 * 1024);
      expect(data.subarray(0, 4096).every((b) => b === 0xaa)).toBe(true);
      expect(data.subarray(4096, 12288).every((b) => b === 0)).toBe(true);
      expect(data.subarray(12288).every((b) => b === 0xaa)).toBe(true);
    });
  });

  it('with mode 0 extends the size with zeroes', async () => {
    await withFile(async (fd, path) => {
      writeSync(fd, Buffer.from('abc'));
      await fallocate(fd, 0, 0, 100_000);
      expect(fstatSync(fd).size).toBe(100_000);
      const data = readFileSync(path);
      expect(data.subarray(0, 3).toString()).toBe('abc');
      expect(data.subarray(3).every((b) => b === 0)).toBe(true);
    });
  });

  it('fails like node:fs on a bad descriptor (no path)', async () => {
    const fd = openSync(join(dir, 'closed'), 'w');
    closeSync(fd);
    const err = (await fallocate(fd, 0, 0, 1).then(() => null, (e: NodeJS.ErrnoException) => e))!;
    expect(err.code).toBe('EBADF');
    expect(err.errno).toBe(-osConstants.errno.EBADF);
    expect(err.syscall).toBe('fallocate');
    expect(err.path).toBeUndefined();
    expect(err.message).toBe('EBADF: bad file descriptor, fallocate');
  });
});

describe('openTmpfile and linkFd', () => {
  it('make a file that has no name until it is complete, then give it one; EEXIST onto an existing name', async () => {
    const fd = await openTmpfile(dir, 0o600);
    try {
      writeSync(fd, Buffer.from('complete'));
      expect(readdirSync(dir)).toEqual([]); // nothing to see yet
      await linkFd(fd, join(dir, 'named'));
      expect(readFileSync(join(dir, 'named'), 'utf8')).toBe('complete');
      expect(lstatSync(join(dir, 'named')).mode & 0o777).toBe(0o600 & ~umask);
      const again = await openTmpfile(dir, 0o600);
      try {
        const err = await linkFd(again, join(dir, 'named')).then(() => null, (e: NodeJS.ErrnoException) => e);
        expect(err).toMatchObject({ code: 'EEXIST', syscall: 'linkat', path: join(dir, 'named') });
      } finally {
        closeSync(again);
      }
      expect(readdirSync(dir)).toEqual(['named']);
    } finally {
      closeSync(fd);
    }
  });

  it('reject like node:fs for a directory that is not there', async () => {
    const err = await openTmpfile(join(dir, 'missing'), 0o600).then(() => null, (e: NodeJS.ErrnoException) => e);
    expect(err).toMatchObject({ code: 'ENOENT', errno: -osConstants.errno.ENOENT, syscall: 'open', path: join(dir, 'missing') });
  });
});

describe('xattrs', () => {
  it('set, get, list and remove, with empty values, the kernel\'s create/replace checks and names as bytes', () => {
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    expect(listXattrs(file).filter((n) => n.toString().startsWith('user.'))).toEqual([]); // none yet (the size-0 answer)
    setXattr(file, 'user.empty', Buffer.alloc(0));
    expect(getXattr(file, 'user.empty')).toEqual(Buffer.alloc(0));
    setXattr(file, 'user.v', Buffer.from('one'), 'create');
    expect(thrown(() => setXattr(file, 'user.v', Buffer.from('two'), 'create'))).toMatchObject({ code: 'EEXIST', syscall: 'lsetxattr' });
    expect(thrown(() => setXattr(file, 'user.absent', Buffer.from('x'), 'replace')).code).toBe('ENODATA');
    setXattr(file, 'user.v', Buffer.from('two'), 'replace');
    expect(getXattr(file, 'user.v').toString()).toBe('two');
    const byteName = Buffer.from([...Buffer.from('user.n'), 0xe9]); // not UTF-8
    setXattr(file, byteName, Buffer.alloc(3_000, 7)); // larger than a first guess at its size
    expect(getXattr(file, byteName)).toEqual(Buffer.alloc(3_000, 7));
    expect(listXattrs(file).map((n) => n.toString('hex')).sort()).toEqual([byteName, Buffer.from('user.empty'), Buffer.from('user.v')].map((n) => n.toString('hex')).sort());
    removeXattr(file, byteName);
    expect(thrown(() => getXattr(file, byteName))).toMatchObject({ code: 'ENODATA', syscall: 'lgetxattr', path: file });
    expect(thrown(() => removeXattr(file, byteName)).code).toBe('ENODATA');
  });

  it('acts on a symlink itself, never on its target', () => {
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    setXattr(file, 'user.t', Buffer.from('target'));
    symlinkSync('f', join(dir, 'l'));
    expect(listXattrs(join(dir, 'l')).map(String).filter((n) => n.startsWith('user.'))).toEqual([]);
    expect(thrown(() => getXattr(join(dir, 'l'), 'user.t')).code).toBe('ENODATA');
    expect(thrown(() => setXattr(join(dir, 'l'), 'user.t', Buffer.from('x'))).code).toBe('EPERM'); // user.* cannot be set on a symlink
    expect(getXattr(file, 'user.t').toString()).toBe('target');
  });
});

describe('paths', () => {
  it('takes a Buffer path with bytes that are not UTF-8, as they are', () => {
    const name = Buffer.from([0x66, 0xe9]); // "f" and a lone Latin-1 é
    const p = Buffer.concat([Buffer.from(`${dir}/`), name]);
    mknod(p, S_IFIFO | 0o600, 0);
    expect(readdirSync(dir, { encoding: 'buffer' })).toEqual([name]);
    expect(lstatSync(p).isFIFO()).toBe(true);
    utimens(p, { sec: 1_000_000_000, nsec: 123_456_789 }, { sec: 1_000_000_001, nsec: 1 });
    const st = lstatSync(p, { bigint: true });
    expect(st.atimeNs).toBe(ns(1_000_000_000, 123_456_789));
    expect(st.mtimeNs).toBe(ns(1_000_000_001, 1));
    // The error names the path decoded as UTF-8, as node:fs does for a Buffer.
    const err = thrown(() => mknod(p, S_IFIFO | 0o600, 0));
    expect(err.code).toBe('EEXIST');
    expect(err.path).toBe(p.toString());
  });

  it('refuses a NUL byte in a path with EINVAL (the kernel would cut the name there)', () => {
    const asString = thrown(() => mknod(join(dir, 'a\0b'), S_IFIFO | 0o600, 0));
    expect(asString.code).toBe('EINVAL');
    expect(asString.syscall).toBe('mknod');
    expect(asString.path).toBe(join(dir, 'a\0b'));
    const asBuffer = thrown(() => utimens(Buffer.from(`${dir}/a\0b`), 'now', 'now'));
    expect(asBuffer.code).toBe('EINVAL');
    expect(asBuffer.syscall).toBe('utimensat');
    writeFileSync(join(dir, 'x'), 'x');
    expect(thrown(() => renameat2(join(dir, 'x'), join(dir, 'a\0b'), {})).code).toBe('EINVAL');
    expect(readdirSync(dir)).toEqual(['x']);
  });
});

describe('makedev', () => {
  it('encodes and decodes like glibc', () => {
    expect(makedev(1, 3)).toBe(0x103);
    expect(makedev(8, 17)).toBe(0x811);
    expect(makedev(0x123, 0x45678)).toBe(0x45612378);
    expect(makedev(0x1000, 0x100)).toBe(2 ** 44 + 0x100000);
    for (const [ma, mi] of [[0, 0], [1, 3], [259, 1_000_000], [4095, 0xfffff], [0x1000, 0x100]] as const) {
      const dev = makedev(ma, mi);
      expect([major(dev), minor(dev)]).toEqual([ma, mi]);
    }
    expect(() => makedev(2 ** 31, 0)).toThrow(RangeError);
  });
});

describe('8-byte xattrs (the mirror\'s inode numbers)', () => {
  it('sets and reads one through a path, a descriptor and a symlink itself; null where there is none', () => {
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    const link = join(dir, 'l');
    symlinkSync('f', link);
    expect(getU64Xattr(file, 'trusted.t')).toBeNull();
    setU64Xattr(file, 'trusted.t', 2n ** 52n + 5n);
    const fd = openSync(file, 'r');
    try {
      expect(getU64Xattr(fd, 'trusted.t')).toBe(2n ** 52n + 5n);
      setU64Xattr(fd, 'trusted.t', 2n ** 64n - 1n);
      expect(getU64Xattr(file, 'trusted.t')).toBe(2n ** 64n - 1n);
    } finally {
      closeSync(fd);
    }
    expect(getXattr(file, 'trusted.t')).toEqual(Buffer.from([255, 255, 255, 255, 255, 255, 255, 255])); // little-endian, 8 bytes
    setU64Xattr(link, 'trusted.t', 7n); // the link's own, not its target's
    expect(getU64Xattr(link, 'trusted.t')).toBe(7n);
    expect(getU64Xattr(file, 'trusted.t')).toBe(2n ** 64n - 1n);
    setXattr(file, 'trusted.short', Buffer.from([1, 2]));
    expect(getU64Xattr(file, 'trusted.short')).toBeNull(); // another size: not one of ours
    expect(thrown(() => getU64Xattr(join(dir, 'absent'), 'trusted.t')).code).toBe('ENOENT');
    expect(() => setU64Xattr(file, 'trusted.t', -1n)).toThrow(TypeError);
  });

  it('numbers new entries above every ext4 inode number and below 2^53, uniquely per epoch, and stops past its range', () => {
    const a = new InodeIds(1);
    const b = new InodeIds(2);
    const fromA = [a.allocate()!, a.allocate()!];
    const fromB = b.allocate()!;
    expect(fromA[0]).toBeGreaterThan(INODE_ID_BASE);
    expect(fromA[1]).toBe(fromA[0]! + 1);
    expect(fromB).toBeGreaterThan(fromA[1]!);
    const last = new InodeIds(MAX_INODE_ID_EPOCH);
    expect(last.allocate()!).toBeLessThan(2 ** 53);
    expect(Number.isSafeInteger(last.allocate()!)).toBe(true);
    expect(new InodeIds(MAX_INODE_ID_EPOCH + 1).allocate()).toBeUndefined();
  });
});
