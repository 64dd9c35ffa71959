import { constants, lstatSync, openSync } from 'node:fs';
import { fsPathText, type FsPath } from '../protocol/byte-names.js';
import { MirrorError } from '../protocol/errors.js';

/** The access-mode bits of open(2)'s flags (Linux; node:fs has no constant for it). */
const O_ACCMODE = 3;

/**
 * open(2) for the store, which never opens a FIFO, socket or device node in the
 * tree: opening a FIFO with no other end blocks the peer's event loop for ever,
 * and opening a device acts on it (a tape rewinds, a watchdog arms) or hands
 * out a disk's bytes. The mirror only ever reads, writes or flushes regular
 * files and directories; a special file is changed by path (chmod, lchown,
 * utimensat) and flushed through its parent directory.
 *
 * The lstat first refuses what is special now; O_NONBLOCK makes the open of a
 * FIFO put there in between return at once instead of blocking (it changes
 * nothing for regular files).
 *
 * Reads through these descriptors leave atime alone (O_NOATIME): the mirror's
 * own reads (serving one peer's read, hashing for verify, copying for a resync)
 * are not a reader's access, and a read served by one peer would otherwise
 * change that copy alone. A reader's access reaches every copy as the `access`
 * operation instead (apply.ts). O_NOATIME needs the file's owner or CAP_FOWNER:
 * a peer running as another user opens without it (EPERM).
 */
export function openNoSpecial(abs: FsPath, flags: number, mode?: number): number {
  const st = lstatSync(abs, { throwIfNoEntry: false });
  if (st && !st.isFile() && !st.isDirectory() && !st.isSymbolicLink()) {
    throw new MirrorError('MFS_ERRNO', `${fsPathText(abs)}: a FIFO, socket or device node is never opened by mirrorfs`, { errno: 'EINVAL' });
  }
  const reads = (flags & O_ACCMODE) !== constants.O_WRONLY;
  if (reads && st) {
    try {
      return openSync(abs, flags | constants.O_NONBLOCK | constants.O_NOATIME, mode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    }
  }
  return openSync(abs, flags | constants.O_NONBLOCK, mode);
}

/** True for a FIFO, socket or device node: changed by path, flushed through its directory. */
export function isSpecial(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): boolean {
  return !st.isFile() && !st.isDirectory() && !st.isSymbolicLink();
}
