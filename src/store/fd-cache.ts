import type { FsPath } from '../protocol/byte-names.js';
import { closeSync, constants, fstatSync, type Stats } from 'node:fs';
import { openNoSpecial } from './open-file.js';

/**
 * Open file descriptors of regular files, kept between operations so a stream
 * of writes to one file costs no open/close per write (and no path walk).
 *
 * Entries are keyed by wire path. Whatever can change what a path names
 * (unlink, rename, rmdir) invalidates that path and everything under it,
 * before the change is applied; so does chmod (a read-only entry may become
 * writable). An entry in use
 * (a write or fsync on the thread pool) is closed only when its last user
 * releases it, so a recycled fd number can never receive another file's data.
 */

// Never O_DSYNC: a durable change flushes what it wrote itself (store/durable.ts flushingSync).
const BASE_FLAGS = constants.O_RDWR | constants.O_NOFOLLOW;

interface Entry {
  fd: number;
  users: number;
  stale: boolean;
  readOnly: boolean;
}

export class FdCache {
  private readonly entries = new Map<string, Entry>();

  private readonly flags: number;

  constructor(opts: { capacity?: number } = {}) {
    this.flags = BASE_FLAGS;
    this.capacity = opts.capacity ?? 256;
  }

  private readonly capacity: number;

  /**
   * Borrow an fd for wirePath (opening abs on a miss); call release() after.
   * `open` is only called on a miss, so the caller's confinement checks run then.
   */
  acquire(wirePath: string, abs: () => FsPath, opts: { write?: boolean } = {}): { fd: number; release: () => void; stats?: Stats } {
    let entry = this.entries.get(wirePath);
    // The attributes looked at for a cached fd go to the caller (a write needs the size before it): one fstat, not two.
    // `stats` is present only on a cache hit, and is that fd's state when acquired.
    let stats: Stats | undefined = entry && fstatSync(entry.fd);
    if (entry && (stats!.nlink === 0 || (opts.write && entry.readOnly))) {
      // Unlinked behind our back (someone edited the directory by hand), or
      // read-only while a write needs it: reopen by name.
      this.drop(wirePath);
      entry = undefined;
      stats = undefined;
    }
    if (entry) {
      // refresh LRU position
      this.entries.delete(wirePath);
      this.entries.set(wirePath, entry);
    } else {
      const opened = opts.write ? { fd: openNoSpecial(abs(), this.flags), readOnly: false } : this.open(abs());
      entry = { ...opened, users: 0, stale: false };
      this.entries.set(wirePath, entry);
      this.evict();
    }
    entry.users++;
    const held = entry;
    let released = false;
    return {
      fd: held.fd,
      stats,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        if (held.stale && held.users === 0) closeSync(held.fd);
      },
    };
  }

  /**
   * Read-write when permitted; a file the store's user may not write (a peer
   * not running as root) is opened read-only, so reads work and writes fail
   * with the file system's own error.
   */
  private open(abs: FsPath): { fd: number; readOnly: boolean } {
    try {
      return { fd: openNoSpecial(abs, this.flags), readOnly: false };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ETXTBSY') {
        return { fd: openNoSpecial(abs, constants.O_RDONLY | constants.O_NOFOLLOW), readOnly: true };
      }
      throw err;
    }
  }

  /** Forget wirePath and every path below it (they may name other files from now on). */
  invalidate(wirePath: string): void {
    if (wirePath === '') {
      for (const key of [...this.entries.keys()]) this.drop(key);
      return;
    }
    const prefix = `${wirePath}/`;
    for (const key of [...this.entries.keys()]) if (key === wirePath || key.startsWith(prefix)) this.drop(key);
  }

  closeAll(): void {
    for (const key of [...this.entries.keys()]) this.drop(key);
  }

  get size(): number {
    return this.entries.size;
  }

  private drop(key: string): void {
    const entry = this.entries.get(key)!;
    this.entries.delete(key);
    entry.stale = true;
    if (entry.users === 0) closeSync(entry.fd);
  }

  private evict(): void {
    for (const key of this.entries.keys()) {
      if (this.entries.size <= this.capacity) return;
      this.drop(key);
    }
  }
}
