import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Refusal } from '../refusal.js';

/**
 * The file system calls node:fs lacks, from our own Node-API addon (native/posix,
 * built by scripts/build-native.mjs):
 * - mknod: node:fs cannot make FIFOs, sockets or device nodes at all;
 * - utimens: fs.utimes takes seconds as a double, which near today's 1.7e9 s
 *   resolves only about 240 ns, so a mirrored mtime would not be the original
 *   one; nor can it leave one time alone (UTIME_OMIT) or use the kernel's own
 *   "now" (UTIME_NOW); fs.lutimes has the same limits;
 * - renameat2: fs.rename always replaces; RENAME_NOREPLACE and RENAME_EXCHANGE
 *   make "create if absent" and "swap" atomic;
 * - fallocate: node:fs can only truncate, not reserve blocks or punch holes.
 * - syncfs: node:fs can flush one file, not a whole file system in one call.
 * - openTmpfile and linkFd: O_TMPFILE (no constant in node:fs, and it differs by
 *   architecture) and linkat through /proc/self/fd, so a new file gets its name
 *   only once its owner and mode are set;
 * - getXattr, setXattr, listXattrs, removeXattr: node:fs has no xattr calls, and
 *   the fs-xattr package (used before) takes names and paths as UTF-8 strings only,
 *   follows symlinks, and emulates XATTR_CREATE / XATTR_REPLACE not at all.
 * Calls are synchronous (short metadata syscalls) but openTmpfile, linkFd,
 * fallocate and syncfs (which may take long), which run on libuv's thread pool and return
 * Promises; failures are errors shaped like node:fs ones: code, errno, syscall, path.
 * Paths are strings (UTF-8) or Buffers (raw bytes: names that are not UTF-8).
 */

interface PosixAddon {
  mknod(path: string | Buffer, mode: number, rdev: number): void;
  utimensat(path: string | Buffer, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number, noFollow: boolean): void;
  renameat2(from: string | Buffer, to: string | Buffer, flags: number): void;
  fallocate(fd: number, mode: number, offset: number, length: number): Promise<void>;
  syncfs(fd: number): Promise<void>;
  realtimeCoarseNs(): bigint;
  openTmpfile(dir: string | Buffer, mode: number): Promise<number>;
  linkFd(fd: number, path: string | Buffer): Promise<void>;
  lgetxattr(path: string | Buffer, name: string | Buffer): Buffer;
  lsetxattr(path: string | Buffer, name: string | Buffer, value: Buffer, flags: number): void;
  getU64Xattr(target: string | Buffer | number, name: string): bigint | null;
  setU64Xattr(target: string | Buffer | number, name: string, value: bigint): void;
  llistxattr(path: string | Buffer): Buffer;
  lremovexattr(path: string | Buffer, name: string | Buffer): void;
}

let addon: PosixAddon | undefined;

/** The addon, loaded on first use so that modules importing this one load without it. */
function posix(): PosixAddon {
  addon ??= loadAddon();
  return addon;
}

function loadAddon(): PosixAddon {
  // From src/store (tests) and dist/store (the build) alike: the addon lives at the project root.
  const file = join(projectRoot(import.meta.dirname), 'native/posix/build/Release/posix.node');
  const howToBuild = 'run `node scripts/build-native.mjs` (or scripts/setup.sh) to build it';
  if (!existsSync(file)) throw new Refusal('ADDON_MISSING', `the mirrorfs posix addon is not built (${file} is missing): ${howToBuild}`);
  try {
    return createRequire(import.meta.url)(file) as PosixAddon;
  } catch (err) {
    throw new Refusal('ADDON_MISSING', `cannot load the mirrorfs posix addon ${file}: ${(err as Error).message}; ${howToBuild}`, { cause: err });
  }
}

/** The nearest directory at or above `dir` holding package.json. */
function projectRoot(dir: string): string {
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, 'package.json'))) return at;
    if (dirname(at) === at) throw new Refusal('ADDON_MISSING', `no package.json above ${dir}: cannot find the mirrorfs posix addon`);
  }
}

/** mknod(2): mode holds the type (S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK) and permission bits; the umask applies. */
export function mknod(path: string | Buffer, mode: number, rdev: number): void {
  posix().mknod(path, mode, rdev);
}

/** A time for utimens: exact seconds and nanoseconds, the kernel's current time, or "leave it as it is". */
export type TimeSpec = { sec: number; nsec: number } | 'now' | 'omit';

const UTIME_NOW_ARG = -1;
const UTIME_OMIT_ARG = -2;

function timeArgs(time: TimeSpec, which: string): [sec: number, nsec: number] {
  if (time === 'now') return [0, UTIME_NOW_ARG];
  if (time === 'omit') return [0, UTIME_OMIT_ARG];
  // A negative nsec would reach the addon as one of the sentinels above.
  if (!Number.isInteger(time.nsec) || time.nsec < 0 || time.nsec > 999_999_999) {
    throw new RangeError(`utimens: ${which}.nsec must be an integer from 0 to 999999999 (got ${time.nsec})`);
  }
  return [time.sec, time.nsec];
}

/**
 * utimensat(2) relative to the working directory; noFollow sets a symbolic link's own times.
 * With both times 'omit' Linux returns at once without looking the path up: no ENOENT.
 */
export function utimens(path: string | Buffer, atime: TimeSpec, mtime: TimeSpec, opts: { noFollow?: boolean } = {}): void {
  posix().utimensat(path, ...timeArgs(atime, 'atime'), ...timeArgs(mtime, 'mtime'), opts.noFollow ?? false);
}

const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;

/** renameat2(2): noReplace fails with EEXIST instead of replacing `to`; exchange swaps the two names atomically. */
export function renameat2(from: string | Buffer, to: string | Buffer, flags: { noReplace?: boolean; exchange?: boolean }): void {
  posix().renameat2(from, to, (flags.noReplace ? RENAME_NOREPLACE : 0) | (flags.exchange ? RENAME_EXCHANGE : 0));
}

/** fallocate(2) on an open descriptor, on libuv's thread pool; mode is 0 or a combination of FALLOC flags. */
export function fallocate(fd: number, mode: number, offset: number, length: number): Promise<void> {
  return posix().fallocate(fd, mode, offset, length);
}

/** Write out everything dirty on the file system holding fd (syncfs(2)), on the thread pool. */
export function syncfs(fd: number): Promise<void> {
  return posix().syncfs(fd);
}

/** The FALLOC_FL_* modes of fallocate(2). */
export const FALLOC = { KEEP_SIZE: 1, PUNCH_HOLE: 2, COLLAPSE_RANGE: 8, ZERO_RANGE: 16, INSERT_RANGE: 32, UNSHARE_RANGE: 64 } as const;

/**
 * A dev_t from major and minor numbers, encoded as glibc's makedev does (the low
 * 8 bits of the minor, then 12 of the major, then the rest of each). BigInt,
 * because JavaScript's bitwise operators work on 32 bits.
 */
export function makedev(major: number, minor: number): number {
  const ma = BigInt(checkUint32(major, 'major'));
  const mi = BigInt(checkUint32(minor, 'minor'));
  const dev = ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
  if (dev > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`makedev(${major}, ${minor}) does not fit in a JavaScript number`);
  return Number(dev);
}

/** The major number of a dev_t (glibc's encoding, see makedev). */
export function major(dev: number): number {
  const d = BigInt(checkDev(dev));
  return Number(((d >> 32n) & 0xfffff000n) | ((d >> 8n) & 0xfffn));
}

/** The minor number of a dev_t (glibc's encoding, see makedev). */
export function minor(dev: number): number {
  const d = BigInt(checkDev(dev));
  return Number(((d >> 12n) & 0xffffff00n) | (d & 0xffn));
}

function checkUint32(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${what} must be an integer from 0 to 4294967295 (got ${n})`);
  return n;
}

function checkDev(dev: number): number {
  if (!Number.isSafeInteger(dev) || dev < 0) throw new RangeError(`a dev_t must be a non-negative safe integer (got ${dev})`);
  return dev;
}

/**
 * The wall clock the kernel stamps file times with (CLOCK_REALTIME_COARSE), in
 * nanoseconds. It lags the precise clock (Date.now) by up to a tick, so a "now"
 * for utimens taken from it is not later than the ctime that change then gets,
 * as on a local file system.
 */
export function realtimeCoarseNs(): bigint {
  return posix().realtimeCoarseNs();
}

/**
 * An unnamed regular file in `dir`'s file system (open with O_TMPFILE, write-only),
 * as a descriptor, opened on libuv's thread pool; the umask applies to `mode`. Throws EOPNOTSUPP (or EISDIR on old
 * kernels) where the file system cannot make one.
 */
export function openTmpfile(dir: string | Buffer, mode: number): Promise<number> {
  return posix().openTmpfile(dir, mode);
}

/** Give the file open as `fd` (from openTmpfile) the name `path`; EEXIST when it exists, as link(2). */
export function linkFd(fd: number, path: string | Buffer): Promise<void> {
  return posix().linkFd(fd, path);
}

/** The value of xattr `name` of `path` itself (lgetxattr: a symlink's own, never its target's); ENODATA when it has none. */
export function getXattr(path: string | Buffer, name: string | Buffer): Buffer {
  return posix().lgetxattr(path, name);
}

/** XATTR_CREATE: fail with EEXIST when the name is set; XATTR_REPLACE: fail with ENODATA when it is not. */
export const XATTR_FLAGS = { any: 0, create: 1, replace: 2 } as const;

/** Set xattr `name` of `path` itself (lsetxattr), with the kernel's own create/replace check. */
export function setXattr(path: string | Buffer, name: string | Buffer, value: Buffer, flags: keyof typeof XATTR_FLAGS = 'any'): void {
  posix().lsetxattr(path, name, value, XATTR_FLAGS[flags]);
}

/**
 * An 8-byte little-endian xattr of a path itself (never a symlink's target) or of an
 * open descriptor: null when the entry has none (or one of another size) or its file
 * system keeps none.
 */
export function getU64Xattr(target: string | Buffer | number, name: string): bigint | null {
  return posix().getU64Xattr(target, name);
}

/** Set an 8-byte little-endian xattr of a path itself or of an open descriptor. */
export function setU64Xattr(target: string | Buffer | number, name: string, value: bigint): void {
  posix().setU64Xattr(target, name, value);
}

/** The xattr names of `path` itself (llistxattr), each as raw bytes (a name need not be UTF-8). */
export function listXattrs(path: string | Buffer): Buffer[] {
  const list = posix().llistxattr(path);
  const names: Buffer[] = [];
  let start = 0;
  for (let end = list.indexOf(0); end >= 0; end = list.indexOf(0, start)) {
    if (end > start) names.push(list.subarray(start, end));
    start = end + 1;
  }
  return names;
}

/** Remove xattr `name` of `path` itself (lremovexattr); ENODATA when it has none. */
export function removeXattr(path: string | Buffer, name: string | Buffer): void {
  posix().lremovexattr(path, name);
}
