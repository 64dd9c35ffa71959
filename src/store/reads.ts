import { INODE_ID_XATTR, readInodeId, withInodeId } from './inode-ids.js';
import { closeSync, constants, fstatSync, type Dirent, lstatSync, read, readSync, readdirSync, readlinkSync, statfsSync, type BigIntStats, type Stats } from 'node:fs';
import { join } from 'node:path';
import { checkCanonicalWire, fsPath, fsPathText, wireFromBytes, type FsPath } from '../protocol/byte-names.js';
import { MAX_PAYLOAD_BYTES } from '../protocol/codec.js';
import { MirrorError } from '../protocol/errors.js';
import type { ReadRequest, WireStat, WireStatfs } from '../protocol/ops.js';
import { RESERVED_ROOT_NAMES } from '../protocol/paths.js';
import type { ApplyContext } from './context.js';
import { openNoSpecial } from './open-file.js';
import { getXattr, listXattrs } from './posix.js';

/**
 * Serving reads from the data directory. None of these follow a symlink at the
 * end of the path: a symlink is reported as itself (lstat, readlink), and data
 * reads of one are refused.
 */

export interface ReadOutcome {
  result?: unknown;
  payload?: Buffer;
}

/** An entry's type, from its attributes or from a directory entry (d_type). */
export function entryType(st: Pick<Stats, 'isFile' | 'isDirectory' | 'isSymbolicLink' | 'isFIFO' | 'isSocket' | 'isCharacterDevice' | 'isBlockDevice'>): WireStat['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'other';
}

/** Attributes for the wire, from a stat taken with `{ bigint: true }` (the only one that holds nanoseconds). */
export function toWireStat(st: BigIntStats): WireStat {
  return {
    type: entryType(st),
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    nlink: Number(st.nlink),
    ino: Number(st.ino),
    blocks: Number(st.blocks),
    rdev: Number(st.rdev),
    atimeMs: Number(st.atimeMs),
    mtimeMs: Number(st.mtimeMs),
    ctimeMs: Number(st.ctimeMs),
    atimeNs: st.atimeNs.toString(),
    mtimeNs: st.mtimeNs.toString(),
    ctimeNs: st.ctimeNs.toString(),
  };
}

/** Names in a directory (wire forms), hiding the peer's own state at the root. */
export function listNames(abs: FsPath, isRoot: boolean): string[] {
  let names = readdirSync(abs);
  // Node decodes names as UTF-8, a byte that is not as U+FFFD: such a listing is read again as bytes.
  if (names.some((n) => n.includes('\uFFFD'))) names = readdirSync(abs, { encoding: 'buffer' }).map(wireFromBytes);
  return isRoot ? names.filter((n) => !RESERVED_ROOT_NAMES.has(n)) : names;
}

/** A symlink's target (its wire form: any bytes, as names). */
export function readTarget(abs: FsPath): string {
  const target = readlinkSync(abs);
  return target.includes('\uFFFD') ? wireFromBytes(readlinkSync(abs, { encoding: 'buffer' })) : target;
}

/** A directory entry's name and type: all that readdir gives the kernel (the binding passes only the type bits: no readdirplus attributes). */
export interface EntryType {
  name: string;
  type: WireStat['type'];
}

/**
 * A directory's entries with their types from the directory itself (d_type),
 * without an lstat per entry: what a FUSE readdir needs. Node lstats an entry
 * itself only where the file system does not record types.
 */
export function listTypes({ tree }: Pick<ApplyContext, 'tree'>, path: string): EntryType[] {
  const abs = tree.resolve(path);
  if (!lstatSync(abs).isDirectory()) throw new MirrorError('MFS_ERRNO', `readdir ${JSON.stringify(path)}: not a directory`, { errno: 'ENOTDIR' });
  // A Buffer path is listed as bytes straight away (Node cannot give string names under a
  // Buffer path where it must lstat entries itself); a string path as strings, and again
  // as bytes when a name came back as U+FFFD (see listNames).
  let entries: { name: string | Buffer; isFile(): boolean }[] =
    typeof abs === 'string' ? readdirSync(abs, { withFileTypes: true }) : readdirSync(abs, { withFileTypes: true, encoding: 'buffer' });
  if (entries.some((e) => typeof e.name === 'string' && e.name.includes('\uFFFD'))) entries = readdirSync(abs, { withFileTypes: true, encoding: 'buffer' });
  const out: EntryType[] = [];
  for (const e of entries as Dirent<string | Buffer>[]) {
    const name = typeof e.name === 'string' ? e.name : wireFromBytes(e.name);
    if (path === '' && RESERVED_ROOT_NAMES.has(name)) continue;
    out.push({ name, type: entryType(e) });
  }
  return out;
}

/** xattr names (wire forms) readable on a path; none on symlinks (user.* ones cannot exist there). */
export function xattrNames(abs: FsPath, st: Pick<Stats | BigIntStats, 'isSymbolicLink'>): string[] {
  // A symlink has no xattrs of its own (Linux refuses user.* on one) but the mirror's inode number.
  if (st.isSymbolicLink()) return readInodeId(abs) === null ? [] : [INODE_ID_XATTR];
  return listXattrs(abs).map(wireFromBytes);
}

/** The value of xattr `name` (its wire form, canonical only) of `abs`. */
export function xattrValue(abs: FsPath, name: string): Buffer {
  checkCanonicalWire(name, 'xattr name');
  return getXattr(abs, fsPath(name));
}

/** Read a file's bytes into `dest` (from its start); returns how many (fewer at the end of the file). */
export function readInto({ tree, fds }: Pick<ApplyContext, 'tree' | 'fds'>, path: string, offset: number, length: number, dest: Buffer): number {
  const { fd, release } = fds.acquire(path, () => tree.resolve(path));
  try {
    let got = 0;
    while (got < length) {
      const n = readSync(fd, dest, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return got;
  } finally {
    release();
  }
}

function preadAsync(fd: number, dest: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, dest, at, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * Read up to `length` bytes at `offset` of an open file into `dest` (from its
 * start) on libuv's thread pool; returns how many (fewer at the end of the
 * file). A peer serving a large read from a cold cache would otherwise stop
 * its event loop for the disk, and reads for several blocks can run at once.
 */
export async function preadFully(fd: number, dest: Buffer, offset: number, length: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const n = await preadAsync(fd, dest, got, length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

export function serveRead({ tree, fds }: ApplyContext, req: ReadRequest): ReadOutcome {
  switch (req.op) {
    case 'getattr': {
      const abs = tree.resolve(req.path);
      return { result: withInodeId(toWireStat(lstatSync(abs, { bigint: true })), abs) };
    }
    case 'readdir': {
      const abs = tree.resolve(req.path);
      if (!lstatSync(abs).isDirectory()) throw new MirrorError('MFS_ERRNO', `readdir ${JSON.stringify(req.path)}: not a directory`, { errno: 'ENOTDIR' });
      const names = listNames(abs, req.path === '');
      if (!req.withAttrs) return { result: { names } };
      const entries: { name: string; stat: WireStat | null; xattrs?: string[] }[] = names.map((name) => {
        let entry: FsPath;
        let st: BigIntStats;
        try {
          entry = fsPath(join(fsPathText(abs), name));
          st = lstatSync(entry, { bigint: true });
        } catch {
          return { name, stat: null }; // vanished between readdir and lstat
        }
        const stat = withInodeId(toWireStat(st), entry);
        // The names of its xattrs too: `ls -l` asks each entry for two the tree almost never has
        // (security.selinux, system.posix_acl_access), a round trip each without this list.
        try {
          return { name, stat, xattrs: xattrNames(entry, st) };
        } catch {
          return { name, stat }; // none listed (a file system without xattrs, or the entry went)
        }
      });
      return { result: { names, entries } };
    }
    case 'read': {
      const buf = Buffer.allocUnsafe(req.length);
      return { payload: buf.subarray(0, readInto({ tree, fds }, req.path, req.offset, req.length, buf)) };
    }
    case 'read-many':
      return readMany(tree, req.paths);
    case 'readlink':
      return { result: { target: readTarget(tree.resolve(req.path)) } };
    case 'getxattr': {
      const abs = tree.resolve(req.path);
      // user.* xattrs cannot exist on symlinks (Linux), and reading one would follow the link.
      if (lstatSync(abs).isSymbolicLink()) throw new MirrorError('MFS_ERRNO', 'no xattrs on symlinks', { errno: 'ENODATA' });
      return { payload: xattrValue(abs, req.name) };
    }
    case 'listxattr': {
      const abs = tree.resolve(req.path);
      return { result: { names: xattrNames(abs, lstatSync(abs)) } };
    }
    case 'statfs': {
      const s = statfsSync(tree.root);
      const result: WireStatfs = { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, namemax: 255 };
      return { result };
    }
  }
}

/**
 * Whole regular files, their contents one after another in the payload and
 * their sizes in the result. Refused as a whole (E2BIG) when they do not fit
 * in one payload, and with the errno of the first name that cannot be read.
 */
function readMany(tree: ApplyContext['tree'], paths: string[]): ReadOutcome {
  const parts: Buffer[] = [];
  const sizes: number[] = [];
  let total = 0;
  for (const path of paths) {
    let fd: number;
    try {
      fd = openNoSpecial(tree.resolve(path), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (err instanceof MirrorError) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      throw new MirrorError('MFS_ERRNO', `read-many ${JSON.stringify(path)}: ${code}`, { errno: code, cause: err });
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new MirrorError('MFS_ERRNO', `read-many ${JSON.stringify(path)}: not a regular file`, { errno: 'EINVAL' });
      if (total + st.size > MAX_PAYLOAD_BYTES) throw new MirrorError('MFS_ERRNO', `read-many: the files total more than ${MAX_PAYLOAD_BYTES} bytes; read fewer at once`, { errno: 'E2BIG' });
      const buf = Buffer.allocUnsafe(st.size);
      let got = 0;
      while (got < st.size) {
        const n = readSync(fd, buf, got, st.size - got, got);
        if (n === 0) break; // shrank meanwhile: what is there
        got += n;
      }
      parts.push(buf.subarray(0, got));
      sizes.push(got);
      total += got;
    } finally {
      closeSync(fd);
    }
  }
  return { result: { sizes }, payload: Buffer.concat(parts, total) };
}
