import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, fstatSync, ftruncateSync, lchownSync, linkSync, lstatSync,
  mkdirSync, open, opendirSync, openSync, readSync, readlinkSync, renameSync, rmdirSync, symlinkSync, unlink, unlinkSync, write,
} from 'node:fs';
import { promisify } from 'node:util';

/**
 * A create waits on the file system's journal when the disk is busy (measured
 * during a catch-up: ~0.45 ms per create on the event loop, 40% of the peer's
 * busy time); on the thread pool the peer serves other changes meanwhile.
 */
const openAsync = promisify(open);
const unlinkAsync = promisify(unlink);

function writeAsync(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => write(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}
import { checkCanonicalWire, fsDirname, fsPath, fsPathEquals, fsPathText, type FsPath } from '../protocol/byte-names.js';
import type { WireStat } from '../protocol/ops.js';
import { toWireStat } from './reads.js';
import { INODE_ID_XATTR, readInodeId, withInodeId, writeInodeId } from './inode-ids.js';
import { MirrorError } from '../protocol/errors.js';
import type { Mutation } from '../protocol/ops.js';
import type { Syncer } from './durable.js';
import type { Tree } from './tree.js';
import { fallocate, getXattr, linkFd, mknod, openTmpfile, removeXattr, renameat2, setXattr, utimens } from './posix.js';
import { requestedTime } from './times.js';
import { isSpecial, openNoSpecial } from './open-file.js';

import type { ApplyContext } from './context.js';

// Callers that apply also name the context; it lives in context.ts so reads.ts need not import this file.
export type { ApplyContext };

/**
 * Applying changing operations to the data directory. How durable each is
 * when it returns is the context's Syncer's choice: with flushingSync (a
 * durable change) once its effect survives a power cut (data via fdatasync,
 * attributes via fsync, names via fsync of the parent directory); with noSync
 * once it is in the file system (the peer's flusher makes it durable later).
 *
 * `redo` is set when the peer finds an intent for this (mount, seq) without an
 * outcome: it crashed while applying it, so the change may already be there.
 * Namespace operations then treat "already done" states as success, which is
 * safe because the mount orders operations on one name (nothing later on that
 * name can have been applied before this one was acknowledged). An operation
 * whose state after looks like its state before (RENAME_EXCHANGE, its own
 * inverse) cannot be told apart that way: `witnessOf` notes what it will
 * change, the peer keeps that with the intent, and a redo gets it back.
 */

/**
 * What a change answers besides ok: bytes written, whether a create made a new
 * file, and `stats`: the attributes, right after the change, of each name it
 * touched that still exists (the name itself and the directories whose
 * entries changed), by wire path. The mount uses them to answer the kernel's
 * next getattr without a round trip; they are not recorded with the outcome
 * (a re-send is answered without them).
 */
export type MutationResult = { written?: number; created?: boolean; stats?: Record<string, WireStat> } | null;

type Handler<K extends Mutation['op']> = (ctx: ApplyContext, req: Extract<Mutation, { op: K }>, payload: Buffer, redo: boolean, witness: string | null) => Promise<MutationResult>;

const handlers: { [K in Mutation['op']]: Handler<K> } = {
  async create({ tree, sync, stats: wantStats }, req, _payload, redo) {
    const abs = tree.resolve(req.path);
    const mode = newEntryMode(req, fsDirname(abs));
    let fd: number;
    // Whether the file is new: a new file has no security.capability (the answer says so).
    let created = true;
    try {
      fd = await createComplete(abs, req, mode);
    } catch (err) {
      // An existing file: fine for a non-exclusive create; after a crash (redo) it may be our own.
      if (!(errnoOf(err) === 'EEXIST' && (!req.exclusive || (redo && lstatSync(abs).isFile())))) throw err;
      fd = openNoSpecial(abs, constants.O_WRONLY | constants.O_NOFOLLOW);
      created = false;
    }
    try {
      // Exact mode, as a new file gets it (one whose ACL decided it keeps what it has).
      if (!created && mode.exact !== null) fchmodSync(fd, mode.exact);
      if (!created && redo) keepInodeId(fd, req, false); // made by name before a crash, perhaps without it
    } finally {
      closeSync(fd);
    }
    // One flush: on a journaling file system (ext4, xfs) the parent directory's
    // fsync commits the new inode, its mode and the entry together.
    await sync.dir(fsDirname(abs));
    return { created, stats: statsOf(wantStats, [req.path, abs], parentOf(req.path, abs)) };
  },

  async write({ tree, fds, sync, stats: wantStats }, req, payload) {
    const { fd, release, stats } = fds.acquire(req.path, () => tree.resolve(req.path), { write: true });
    try {
      const sizeBefore = (stats ?? fstatSync(fd)).size;
      let done = 0;
      try {
        // A durable change flushes its data here (flushingSync); an applied one leaves it to the background flush (noSync).
        while (done < payload.length) done += await writeAsync(fd, payload, done, payload.length - done, req.offset + done);
        await sync.data(fd);
      } catch (err) {
        // Leave nothing half-applied where we can: a write that failed part-way
        // (ENOSPC) and had extended the file is cut back to the size it had.
        // Bytes overwritten inside the old size cannot be restored here.
        if (fstatSync(fd).size > sizeBefore) ftruncateSync(fd, sizeBefore);
        throw err;
      }
      return { written: done, stats: openFileStats(wantStats, req.path, fd) };
    } finally {
      release();
    }
  },

  async truncate({ tree, fds, sync, stats: wantStats }, req) {
    const { fd, release } = fds.acquire(req.path, () => tree.resolve(req.path), { write: true });
    try {
      ftruncateSync(fd, req.size);
      await sync.data(fd);
      return { stats: openFileStats(wantStats, req.path, fd) };
    } finally {
      release();
    }
  },

  async fallocate({ tree, fds, sync, stats: wantStats }, req) {
    const { fd, release } = fds.acquire(req.path, () => tree.resolve(req.path), { write: true });
    try {
      await fallocate(fd, req.mode, req.offset, req.length);
      await sync.data(fd); // the blocks and, past the end, the new size
      return { stats: openFileStats(wantStats, req.path, fd) };
    } finally {
      release();
    }
  },

  async unlink({ tree, fds, sync, stats: wantStats }, req, _payload, redo) {
    const abs = tree.resolve(req.path);
    fds.invalidate(req.path);
    try {
      // On the thread pool: freeing a large file's blocks took 180 ms for 256 MiB on this disk,
      // which on the event loop stalled every other change and read the peer had meanwhile.
      await unlinkAsync(abs);
    } catch (err) {
      if (!(redo && errnoOf(err) === 'ENOENT')) throw err;
    }
    await sync.dir(fsDirname(abs));
    return { stats: statsOf(wantStats, parentOf(req.path, abs)) };
  },

  async mkdir({ tree, sync, stats: wantStats }, req, _payload, redo) {
    const abs = tree.resolve(req.path);
    let made = true;
    const mode = newEntryMode(req, fsDirname(abs));
    try {
      mkdirSync(abs, { mode: mode.exact ?? req.mode });
    } catch (err) {
      if (!(redo && errnoOf(err) === 'EEXIST' && lstatSync(abs).isDirectory())) throw err;
      made = false;
    }
    completeOrRemove(made, abs, () => rmdirSync(abs), () => {
      keepInodeId(abs, req, made);
      if (made && mode.stripInherited) stripInheritedAcls(abs, true);
      // Read only when an inherited ACL decided it (set-group-ID included): chown below may change it.
      const asCreated = mode.exact === null ? lstatSync(abs).mode & 0o7777 : 0;
      const inherited = chownNew(req, fsDirname(abs), (uid, gid) => lchownSync(abs, uid, gid));
      // Exact mode, whatever the umask (abs is a directory we just made, not a symlink);
      // in a set-group-ID directory a new directory is set-group-ID too (ext4, mkdir(2)).
      if (mode.exact !== null) chmodSync(abs, mode.exact | (inherited ? S_ISGID : 0));
      else if (made) chmodSync(abs, asCreated);
    });
    await sync.dir(fsDirname(abs)); // commits the new directory with its entry (journaling file system)
    return { stats: statsOf(wantStats, [req.path, abs], parentOf(req.path, abs)) };
  },

  async rmdir({ tree, fds, sync, stats: wantStats }, req, _payload, redo) {
    if (req.path === '') throw new MirrorError('MFS_ERRNO', 'cannot remove the root of the tree', { errno: 'EBUSY' });
    const abs = tree.resolve(req.path);
    fds.invalidate(req.path);
    try {
      rmdirSync(abs);
    } catch (err) {
      if (!(redo && errnoOf(err) === 'ENOENT')) throw err;
    }
    await sync.dir(fsDirname(abs));
    return { stats: statsOf(wantStats, parentOf(req.path, abs)) };
  },

  async rename({ tree, fds, sync, stats: wantStats }, req, _payload, redo, witness) {
    if (req.from === '' || req.to === '') throw new MirrorError('MFS_ERRNO', 'cannot rename the root of the tree', { errno: 'EBUSY' });
    if (req.noReplace && req.exchange) throw new MirrorError('MFS_ERRNO', 'rename: RENAME_NOREPLACE and RENAME_EXCHANGE together', { errno: 'EINVAL' });
    const from = tree.resolve(req.from, 'from');
    const to = tree.resolve(req.to, 'to');
    fds.invalidate(req.from);
    fds.invalidate(req.to);
    if (req.exchange) {
      // RENAME_EXCHANGE: both names stay, each now names what the other did. A redo
      // swaps only if the first attempt did not (the witness: the inodes before).
      if (!(redo && exchangeDone(from, to, witness))) renameat2(from, to, { exchange: true });
    } else {
      try {
        // RENAME_NOREPLACE: atomic "only if `to` does not exist" (EEXIST otherwise).
        if (req.noReplace) renameat2(from, to, { noReplace: true });
        else renameSync(from, to);
      } catch (err) {
        // A redo of a rename that was applied: `from` is gone and `to` is there (for
        // noReplace, the EEXIST is then its own earlier success).
        const code = errnoOf(err);
        if (!(redo && (code === 'ENOENT' || (req.noReplace && code === 'EEXIST')) && !exists(from) && exists(to))) throw err;
      }
    }
    await sync.dir(fsDirname(to));
    if (!fsPathEquals(fsDirname(from), fsDirname(to))) await sync.dir(fsDirname(from));
    // `from` is listed when it still exists: rename(2) onto another link of the same file does nothing.
    return { stats: statsOf(wantStats, [req.to, to], [req.from, from], parentOf(req.to, to), parentOf(req.from, from)) };
  },

  async symlink({ tree, sync, stats: wantStats }, req, _payload, redo) {
    const abs = tree.resolve(req.path);
    let made = true;
    try {
      // The target is data (like a file's contents): the peer stores it and never follows it.
      symlinkSync(fsPath(canonical(req.target, 'symlink target')), abs); // any bytes, as names (protocol/byte-names.ts)
    } catch (err) {
      if (!(redo && errnoOf(err) === 'EEXIST' && lstatSync(abs).isSymbolicLink())) throw err;
      made = false;
    }
    completeOrRemove(made, abs, () => unlinkSync(abs), () => {
      keepInodeId(abs, req, made);
      chownNew(req, fsDirname(abs), (uid, gid) => lchownSync(abs, uid, gid));
    });
    await sync.dir(fsDirname(abs));
    return { stats: statsOf(wantStats, [req.path, abs], parentOf(req.path, abs)) };
  },

  async mknod({ tree, sync, stats: wantStats }, req, _payload, redo) {
    const abs = tree.resolve(req.path);
    let made = true;
    const mode = newEntryMode(req, fsDirname(abs));
    try {
      mknod(abs, NODE_TYPE_BITS[req.kind] | (mode.exact ?? req.mode), req.kind === 'char' || req.kind === 'block' ? req.rdev : 0);
    } catch (err) {
      if (!(redo && errnoOf(err) === 'EEXIST' && entryKindOf(lstatSync(abs)) === req.kind)) throw err;
      made = false;
    }
    completeOrRemove(made, abs, () => unlinkSync(abs), () => {
      keepInodeId(abs, req, made);
      if (made && mode.stripInherited) stripInheritedAcls(abs, false);
      const asCreated = mode.exact === null ? lstatSync(abs).mode & 0o7777 : 0;
      chownNew(req, fsDirname(abs), (uid, gid) => lchownSync(abs, uid, gid));
      // Exact mode, whatever the umask (or as an inherited ACL made it: chown may have cleared set-ID bits);
      // chmod of a node changes the node, opens nothing.
      if (mode.exact !== null) chmodSync(abs, mode.exact);
      else if (made) chmodSync(abs, asCreated);
    });
    await sync.dir(fsDirname(abs));
    return { stats: statsOf(wantStats, [req.path, abs], parentOf(req.path, abs)) };
  },

  async link({ tree, sync, stats: wantStats }, req, _payload, redo) {
    const from = tree.resolve(req.from, 'from');
    const abs = tree.resolve(req.path);
    try {
      linkSync(from, abs); // link(2) does not follow a final symlink in `from`
    } catch (err) {
      if (!(redo && errnoOf(err) === 'EEXIST')) throw err;
    }
    await sync.dir(fsDirname(abs));
    return { stats: statsOf(wantStats, [req.path, abs], [req.from, from], parentOf(req.path, abs)) };
  },

  async chmod({ tree, fds, sync, stats: wantStats }, req) {
    const { abs } = tree.resolveNoFollow(req.path);
    fds.invalidate(req.path); // a cached read-only fd must not outlive a mode that allows writing
    if (isSpecial(lstatSync(abs))) {
      chmodSync(abs, req.mode); // by path: a special file is never opened (open-file.ts)
      await sync.dir(fsDirname(abs));
      return { stats: statsOf(wantStats, [req.path, abs]) };
    }
    const fd = openNoSpecial(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      fchmodSync(fd, req.mode);
      await sync.all(fd);
      return { stats: openFileStats(wantStats, req.path, fd) };
    } finally {
      closeSync(fd);
    }
  },

  async chown({ tree, sync, stats: wantStats }, req) {
    const abs = tree.resolve(req.path);
    lchownSync(abs, req.uid, req.gid);
    await syncInode(sync, abs);
    return { stats: statsOf(wantStats, [req.path, abs]) };
  },

  async utimens({ tree, sync, stats: wantStats }, req) {
    const abs = tree.resolve(req.path);
    // Exact to the nanosecond, a time not given left alone, a symlink's own times (never its target's).
    utimens(abs, requestedTime(req.atimeNs, req.atimeMs), requestedTime(req.mtimeNs, req.mtimeMs), { noFollow: true });
    await syncInode(sync, abs);
    return { stats: statsOf(wantStats, [req.path, abs]) };
  },

  async setxattr({ tree, sync, stats: wantStats }, req, payload, redo) {
    const { abs } = resolveForXattr(tree, req);
    // On redo the first attempt may have set it already: set the value whatever the flag says.
    if (req.flags !== 'any' && !redo) {
      const present = hasXattr(abs, req.name);
      if (req.flags === 'create' && present) throw new MirrorError('MFS_ERRNO', `xattr ${req.name} exists`, { errno: 'EEXIST' });
      if (req.flags === 'replace' && !present) throw new MirrorError('MFS_ERRNO', `xattr ${req.name} does not exist`, { errno: 'ENODATA' });
    }
    setXattr(abs, fsPath(canonical(req.name, 'xattr name')), payload);
    await syncInode(sync, abs);
    return { stats: statsOf(wantStats, [req.path, abs]) };
  },

  async removexattr({ tree, sync, stats: wantStats }, req, _payload, redo) {
    const { abs } = resolveForXattr(tree, req);
    try {
      removeXattr(abs, fsPath(canonical(req.name, 'xattr name')));
    } catch (err) {
      if (!(redo && errnoOf(err) === 'ENODATA')) throw err;
    }
    await syncInode(sync, abs);
    return { stats: statsOf(wantStats, [req.path, abs]) };
  },

  async access({ tree, stats: wantStats }, req) {
    // Read the entry once as a reader would: this kernel's atime rules (relatime, the
    // peer's noatime) decide. Nothing is flushed: atime never is on its own.
    const abs = tree.resolve(req.path);
    const st = lstatSync(abs);
    if (st.isFile()) {
      const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK); // a regular file (just checked): no O_NOATIME
      try {
        readSync(fd, Buffer.alloc(1), 0, 1, 0);
      } finally {
        closeSync(fd);
      }
    } else if (st.isDirectory()) {
      const dir = opendirSync(abs, { bufferSize: 1 });
      try {
        dir.readSync();
      } finally {
        dir.closeSync();
      }
    } else if (st.isSymbolicLink()) {
      readlinkSync(abs);
    }
    return { stats: statsOf(wantStats, [req.path, abs]) };
  },
};

/**
 * Make one entry durable (an fsync, fdatasync or fsyncdir through the mount, as
 * a local file system would): a regular file's data (and with `datasync` false
 * its metadata) through its cached fd, a directory's entries, a symlink's or a
 * special file's through its parent. On ext4 and xfs a file's flush commits the
 * journal, so its name is durable with it, as it would be locally.
 */
export async function flushEntry({ tree, fds, sync }: ApplyContext, wirePath: string, datasync: boolean): Promise<void> {
  const abs = tree.resolve(wirePath);
  const st = lstatSync(abs);
  if (st.isDirectory()) return sync.dir(abs);
  if (!st.isFile()) return syncInode(sync, abs);
  const { fd, release } = fds.acquire(wirePath, () => abs);
  try {
    await (datasync ? sync.data(fd) : sync.all(fd));
  } finally {
    release();
  }
}

/**
 * Apply one change. `redo`: an intent for it was found without an outcome (see
 * above); `witness`: what `witnessOf` noted with that intent, if anything.
 */
export function applyMutation(ctx: ApplyContext, req: Mutation, payload: Buffer, redo: boolean, witness: string | null = null): Promise<MutationResult> {
  const handler = handlers[req.op] as Handler<typeof req.op>;
  return handler(ctx, req as never, payload, redo, witness);
}

/**
 * What a redo of this change will need to tell whether it was applied, noted
 * just before it is (kept with its intent); null for the changes whose result
 * shows by itself. For RENAME_EXCHANGE, the inode numbers at both names.
 */
export function witnessOf({ tree }: ApplyContext, req: Mutation): string | null {
  if (req.op !== 'rename' || !req.exchange) return null;
  try {
    const from = lstatSync(tree.resolve(req.from, 'from'), { bigint: true });
    const to = lstatSync(tree.resolve(req.to, 'to'), { bigint: true });
    // Inode numbers only: a device's number may change across the reboot that makes a redo.
    return JSON.stringify({ exchange: [String(from.ino), String(to.ino)] });
  } catch {
    return null; // a name missing (the exchange fails ENOENT) or refused: nothing to witness
  }
}

/**
 * On a redo: has the exchange been done? The names hold what the witness recorded (not
 * yet: swap), or each what the other held (done). Anything else (a name made again in
 * between, say by a repair) is not this change's to decide: refused as an error the peer
 * does not record, so the mount's recovery copies the names from a peer that has them.
 */
function exchangeDone(from: FsPath, to: FsPath, witness: string | null): boolean {
  // An intent without a witness (a name was missing when it was taken): applying again answers as the first did.
  if (witness === null) return false;
  const [fromIno, toIno] = (JSON.parse(witness) as { exchange: string[] }).exchange;
  const now = { from: String(lstatSync(from, { bigint: true }).ino), to: String(lstatSync(to, { bigint: true }).ino) };
  if (now.from === toIno && now.to === fromIno) return true; // swapped (or two links of one file: nothing to do)
  if (now.from === fromIno && now.to === toIno) return false;
  throw new MirrorError('MFS_INTERNAL', `rename exchange redo: ${fsPathText(from)} and ${fsPathText(to)} hold neither what they held nor each other's`, { errno: 'EIO' });
}

/** The wire path and absolute path of a name's parent directory. */
function parentOf(wirePath: string, abs: FsPath): [string, FsPath] {
  const slash = wirePath.lastIndexOf('/');
  return [slash < 0 ? '' : wirePath.slice(0, slash), fsDirname(abs)];
}

/** The attributes of an open file, under its wire path (see MutationResult); none when the caller does not want them. */
function openFileStats(wanted: boolean | undefined, wirePath: string, fd: number): Record<string, WireStat> | undefined {
  return wanted === false ? undefined : { [wirePath]: withInodeId(toWireStat(fstatSync(fd, { bigint: true })), fd) };
}

/** Attributes of the given names that exist now (see MutationResult); none when the caller does not want them (ApplyContext.stats). */
function statsOf(wanted: boolean | undefined, ...names: Array<[string, FsPath]>): Record<string, WireStat> | undefined {
  if (wanted === false) return undefined;
  const out: Record<string, WireStat> = {};
  for (const [wirePath, abs] of names) {
    try {
      out[wirePath] = withInodeId(toWireStat(lstatSync(abs, { bigint: true })), abs);
    } catch {
      // Gone already (renamed over, say): nothing to tell.
    }
  }
  return out;
}

/**
 * fsync an inode; a symlink cannot be opened and a special file must not be
 * (open-file.ts), so their parent directory's flush carries them (ext4 journals both).
 */
async function syncInode(sync: Syncer, abs: FsPath): Promise<void> {
  const st = lstatSync(abs);
  if (st.isSymbolicLink() || isSpecial(st)) return sync.dir(fsDirname(abs));
  const fd = openNoSpecial(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await sync.all(fd);
  } finally {
    closeSync(fd);
  }
}

const S_ISGID = 0o2000;
/** st_mode type bits of the special files mknod makes. */
const NODE_TYPE_BITS = { fifo: 0o010000, socket: 0o140000, char: 0o020000, block: 0o060000 } as const;

function entryKindOf(st: ReturnType<typeof lstatSync>): keyof typeof NODE_TYPE_BITS | null {
  if (!st) return null;
  return st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : null;
}

/**
 * Give a new entry its creator as owner (the request's uid and gid, the caller's
 * fsuid and fsgid on the mount). In a set-group-ID directory the entry takes the
 * directory's group instead, as ext4 does (inode_init_owner); returns whether it
 * did, so a new directory can take the set-group-ID bit too. A request without
 * an owner (an older mount) leaves the entry to the peer process, as before.
 */
function chownNew(req: { uid?: number; gid?: number }, parentAbs: FsPath, chown: (uid: number, gid: number) => void): boolean {
  const parent = lstatSync(parentAbs);
  const inherited = (parent.mode & S_ISGID) !== 0;
  if (req.uid !== undefined || req.gid !== undefined) chown(req.uid ?? -1, inherited ? parent.gid : (req.gid ?? -1));
  return inherited;
}

/** O_TMPFILE's errors where a file system (or an old kernel) cannot make an unnamed file. */
const NO_TMPFILE: ReadonlySet<string | undefined> = new Set(['EOPNOTSUPP', 'ENOTSUP', 'EISDIR']);

/**
 * A new regular file at `abs` with the request's owner and exact mode, open for
 * writing; EEXIST when the name exists. Made unnamed (O_TMPFILE), completed, then
 * linked in: the name never shows a half-made file (the peer's own, or the umask's
 * mode), neither to a reader nor to a redo after a crash, which could not tell such a
 * file from one that was there before. Where O_TMPFILE is missing, created by name and
 * completed (removed again if that fails).
 */
async function createComplete(abs: FsPath, req: { mode: number; uid?: number; gid?: number; ino?: number }, mode: NewEntryMode): Promise<number> {
  const dir = fsDirname(abs);
  const createMode = mode.exact ?? req.mode;
  const complete = (fd: number, named: boolean) => {
    keepInodeId(fd, req, true);
    if (named && mode.stripInherited) stripInheritedAcls(abs, false);
    const asCreated = mode.exact === null ? fstatSync(fd).mode & 0o7777 : 0; // as an inherited ACL made it
    // The creator's, not the peer's; before the mode, since chown clears set-ID bits.
    chownNew(req, dir, (uid, gid) => fchownSync(fd, uid, gid));
    fchmodSync(fd, mode.exact ?? asCreated); // exact mode, whatever the peer's umask
  };
  const byName = async (): Promise<number> => {
    const fd = await openAsync(abs, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, createMode);
    try {
      completeOrRemove(true, abs, () => unlinkSync(abs), () => complete(fd, true));
    } catch (completing) {
      closeSync(fd);
      throw completing;
    }
    return fd;
  };
  // Inherited ACLs are removed by name (no call here takes them off a descriptor).
  if (mode.stripInherited) return byName();
  let fd: number;
  try {
    fd = await openTmpfile(dir, createMode);
  } catch (err) {
    if (NO_TMPFILE.has(errnoOf(err))) return byName();
    // An existing name is EEXIST first, as O_CREAT | O_EXCL answers (a full disk would
    // otherwise make an exclusive create, or the redo of a finished one, fail ENOSPC).
    if (exists(abs)) throw Object.assign(new Error(`${fsPathText(abs)}: file exists`), { code: 'EEXIST' });
    throw err;
  }
  try {
    complete(fd, false);
    await linkFd(fd, abs);
  } catch (err) {
    closeSync(fd); // unnamed: gone with its descriptor
    // ENOENT with the directory there: no way to link a descriptor here (no /proc, and
    // no CAP_DAC_READ_SEARCH for AT_EMPTY_PATH): made by name instead.
    if (errnoOf(err) === 'ENOENT' && exists(dir)) return byName();
    throw err;
  }
  return fd;
}

/**
 * Finish an entry just made (owner, mode); if that fails, remove it again (when this
 * call made it) so that a failed change leaves nothing behind, then throw.
 */
function completeOrRemove(made: boolean, abs: FsPath, remove: () => void, complete: () => void): void {
  try {
    complete();
  } catch (err) {
    if (made) {
      try {
        remove();
      } catch {
        // the change fails either way; what is left is the repair's to find
      }
    }
    throw err;
  }
}

/**
 * The entry whose xattr changes: never through a symlink, and a symlink itself only for
 * the mirror's inode number (the one xattr a symlink has here; a copy carries it so).
 */
function resolveForXattr(tree: Tree, req: { path: string; name: string }): { abs: FsPath } {
  return req.name === INODE_ID_XATTR ? { abs: tree.resolve(req.path) } : tree.resolveNoFollow(req.path);
}

/**
 * Give a new entry the mirror's inode number it was sent with (store/inode-ids.ts). On a
 * redo (`made` false: the entry was there) only when it lacks one: the first attempt may
 * have been cut between making the entry and this.
 */
function keepInodeId(target: FsPath | number, req: { ino?: number }, made: boolean): void {
  if (req.ino === undefined) return;
  if (made || readInodeId(target) === null) writeInodeId(target, req.ino);
}

/**
 * The permissions of a new entry: `exact`, or null when its directory's default ACL
 * decides them (as this copy's kernel makes the entry, inheriting that ACL).
 */
interface NewEntryMode {
  exact: number | null;
  /**
   * An exact mode (no umask: a repair or copy) in a directory with a default ACL: the ACLs
   * the entry inherits on this copy are removed, since the copy gives it exactly what it has
   * on the source (its own ACLs among its xattrs, if any).
   */
  stripInherited: boolean;
}

/**
 * A request with a `umask` comes from a mount that enforces POSIX ACLs (protocol/ops.ts
 * creatorUmask): as on ext4, a default ACL on the directory decides the new entry's
 * permissions from the requested mode and the umask is ignored; without one, the umask
 * applies. Without a `umask`, `mode` is exact.
 */
function newEntryMode(req: { mode: number; umask?: number }, parentAbs: FsPath): NewEntryMode {
  const defaultAcl = hasXattr(parentAbs, 'system.posix_acl_default', NO_ACLS);
  if (req.umask === undefined) return { exact: req.mode, stripInherited: defaultAcl };
  return defaultAcl ? { exact: null, stripInherited: false } : { exact: req.mode & ~req.umask, stripInherited: false };
}

/**
 * For a repair that just made `abs` (put-file, put-dir): remove what it inherited from a
 * default ACL on its directory, since it gets exactly the source's attributes.
 */
export function dropInheritedAcls(abs: FsPath, directory: boolean): void {
  if (hasXattr(fsDirname(abs), 'system.posix_acl_default', NO_ACLS)) stripInheritedAcls(abs, directory);
}

/** Remove the ACLs a new entry inherited from its directory (see NewEntryMode). */
function stripInheritedAcls(abs: FsPath, directory: boolean): void {
  for (const name of directory ? ['system.posix_acl_access', 'system.posix_acl_default'] : ['system.posix_acl_access']) {
    try {
      removeXattr(abs, fsPath(name));
    } catch (err) {
      if (errnoOf(err) !== 'ENODATA') throw err;
    }
  }
}

/** Where a file system keeps no ACLs, its directories have no default ACL. */
const NO_ACLS: ReadonlySet<string | undefined> = new Set(['EOPNOTSUPP', 'ENOTSUP']);

function hasXattr(abs: FsPath, name: string, absentToo: ReadonlySet<string | undefined> = new Set()): boolean {
  try {
    getXattr(abs, fsPath(name));
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ENODATA' || absentToo.has(errnoOf(err))) return false;
    throw err;
  }
}

function exists(abs: FsPath): boolean {
  try {
    lstatSync(abs);
    return true;
  } catch {
    return false;
  }
}

/** A wire form, refused unless it is the one form of its bytes (one name, one spelling). */
function canonical(text: string, what: string): string {
  checkCanonicalWire(text, what);
  return text;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}
