import type { WireStat } from '../protocol/ops.js';
import type { FsPath } from '../protocol/byte-names.js';
import { getU64Xattr, removeXattr, setU64Xattr } from './posix.js';

/**
 * The mirror's own inode numbers. Each copy's file system numbers its inodes its own way,
 * so the st_ino a stat through the mount showed changed with the copy that answered (after
 * a failover, a resync, a rebuilt local copy), and tools that key files by inode number
 * (git's index, backup tools, `find -samefile`) saw new files. So the mount gives every
 * file, directory, symlink and node it creates a number of its own (`ino` in create,
 * mkdir, mknod and symlink), each copy keeps it in the inode as the xattr below, and every
 * stat a copy answers carries it in place of its own st_ino: the names of a hard-linked
 * file share it (one inode, one xattr), and it is the same on every copy and across
 * remounts. Copies and repairs carry it like any xattr; the mount hides it.
 *
 * Entries the mount did not make (a tree that was there before, a copy that cannot set
 * trusted.* xattrs because it runs without CAP_SYS_ADMIN) answer with their own st_ino,
 * as before.
 */
export const INODE_ID_XATTR = 'trusted.mirrorfs.ino';

/**
 * The numbers the mount hands out: 2^52 + epoch * 2^32 + n, n counting creations within
 * this ownership epoch (a new one at every mount and takeover, so no two mounts hand out
 * the same numbers). Above every inode number ext4 gives (32 bits), and below 2^53 so
 * that JSON, and tools that read st_ino as a double (Node's fs.stat), keep them exact.
 */
export const INODE_ID_BASE = 2 ** 52;
const PER_EPOCH = 2 ** 32;
export const MAX_INODE_ID_EPOCH = (2 ** 53 - INODE_ID_BASE) / PER_EPOCH - 1;

export class InodeIds {
  private next = 0;
  constructor(private readonly epoch: number) {}

  /** A new number, or undefined once this epoch's range is spent (or past the epochs it can number). */
  allocate(): number | undefined {
    if (this.epoch > MAX_INODE_ID_EPOCH || this.next >= PER_EPOCH - 1) return undefined;
    this.next++;
    return INODE_ID_BASE + this.epoch * PER_EPOCH + this.next;
  }
}

/** The mirror's number kept in an inode (a path itself, or an open descriptor), or null. */
export function readInodeId(target: FsPath | number): number | null {
  const id = getU64Xattr(target, INODE_ID_XATTR);
  return id === null ? null : Number(id);
}

/**
 * Keep the mirror's number in a new inode. A copy that may not set trusted.* xattrs
 * (no CAP_SYS_ADMIN) goes on without it: its stats then show its own numbers.
 */
export function writeInodeId(target: FsPath | number, id: number): void {
  try {
    setU64Xattr(target, INODE_ID_XATTR, BigInt(id));
  } catch (err) {
    if (!NO_INODE_IDS.has((err as NodeJS.ErrnoException).code)) throw err;
  }
}
const NO_INODE_IDS: ReadonlySet<string | undefined> = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP']);

/**
 * Can this copy keep the mirror's numbers? Tried once on the directory itself: a trusted.*
 * xattr needs CAP_SYS_ADMIN, and the file system must take xattrs. The mount numbers new
 * entries only when every copy can: copies that differ here would never compare equal.
 */
export function canKeepInodeIds(dir: FsPath): boolean {
  try {
    setU64Xattr(dir, PROBE_XATTR, 1n);
    removeXattr(dir, PROBE_XATTR);
    return true;
  } catch {
    return false;
  }
}
const PROBE_XATTR = 'trusted.mirrorfs.probe';

/** A stat as the mount should see it: with the mirror's number when the inode keeps one. */
export function withInodeId(stat: WireStat, target: FsPath | number): WireStat {
  if (stat.type === 'other') return stat;
  const id = readInodeId(target);
  return id === null ? stat : { ...stat, ino: id };
}
