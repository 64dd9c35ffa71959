import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { fsPath, type FsPath } from '../protocol/byte-names.js';
import { MirrorError } from '../protocol/errors.js';
import { parseWirePath } from '../protocol/paths.js';

/**
 * Confinement: turns a wire path into a path inside the data directory,
 * after checking that no component on the way is a symlink. The
 * kernel on the mount side resolves symlinks itself, so a legitimate request
 * never walks through one; a request that does is trying to leave the tree.
 *
 * The check-then-use window is closed by the peer's namespace lock: every
 * operation that can remove a name or turn a name into a symlink runs
 * exclusively, everything else shares the lock (see peer/exactly-once.ts, EXCLUSIVE_OPS).
 *
 * Paths given to system calls start at `fsRoot`: "." when the process runs
 * in the data directory (mirrorfs-peer changes to it at start), else the
 * root itself. Relative to the data directory, any wire path (at most
 * PATH_MAX - 1 bytes) fits in one system call, as on a local file system;
 * with the data directory's own path in front it might not.
 *
 * A path is a string, or a Buffer when a name in it is not UTF-8 (its wire
 * form escapes bytes: protocol/byte-names.ts); node:fs and store/posix take both.
 */
export class Tree {
  /** Where the paths this tree hands out start: "." or `root`. */
  readonly fsRoot: string;

  constructor(readonly root: string) {
    this.fsRoot = workingDirectory() === root ? '.' : root;
  }

  /** The path of a wire path for system calls (from fsRoot), its ancestors verified real directories. */
  resolve(wirePath: unknown, what = 'path'): FsPath {
    const parts = parseWirePath(wirePath, what);
    let current = this.fsRoot;
    for (let i = 0; i < parts.length - 1; i++) {
      current = join(current, parts[i]!);
      const st = lstatOrThrow(fsPath(current), wirePath as string);
      if (st.isSymbolicLink()) {
        throw new MirrorError('MFS_PATH_ESCAPE', `${what} ${JSON.stringify(wirePath)} passes through a symlink at ${JSON.stringify(parts.slice(0, i + 1).join('/'))}`);
      }
      if (!st.isDirectory()) throw new MirrorError('MFS_ERRNO', `${what} ${JSON.stringify(wirePath)}: a component is not a directory`, { errno: 'ENOTDIR' });
    }
    return parts.length === 0 ? this.fsRoot : fsPath(join(current, parts[parts.length - 1]!));
  }

  /** Resolve, and refuse when the final component is a symlink (operations that would follow it). */
  resolveNoFollow(wirePath: unknown, what = 'path'): { abs: FsPath; stat: Stats } {
    const abs = this.resolve(wirePath, what);
    const stat = lstatOrThrow(abs, wirePath as string);
    if (stat.isSymbolicLink()) {
      throw new MirrorError('MFS_PATH_ESCAPE', `${what} ${JSON.stringify(wirePath)} is a symlink; refusing to follow it`, { errno: 'ELOOP' });
    }
    return { abs, stat };
  }
}

function workingDirectory(): string | null {
  try {
    return process.cwd();
  } catch {
    return null; // removed from under us: not the data directory
  }
}

function lstatOrThrow(abs: FsPath, wirePath: string): Stats {
  try {
    return lstatSync(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new MirrorError('MFS_ERRNO', `${JSON.stringify(wirePath)}: ${code}`, { errno: code, cause: err });
  }
}
