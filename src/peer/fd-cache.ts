import { closeSync, constants, openSync } from 'node:fs';

/**
 * Open file descriptors of regular files, kept between operations so a stream
 * of writes to one file costs no open/close per write (and no path walk).
 *
 * Entries are keyed by wire path. Whatever can change what a path names
 * (unlink, rename, rmdir, a non-exclusive create over a name) invalidates that
 * path and everything under it, before the change is applied. An entry in use
 * (a write or fsync on the thread pool) is closed only when its last user
 * releases it, so a recycled fd number can never receive another file's data.
 */

// O_DSYNC: a write(2) returns only once its data (and the size, if it grew) is
// on stable storage. One syscall on the thread pool instead of write + fdatasync.
const OPEN_FLAGS = constants.O_RDWR | constants.O_NOFOLLOW | constants.O_DSYNC;

interface Entry {
  fd: number;
  users: number;
  stale: boolean;
}

export class FdCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly capacity = 256) {}

  /**
   * Borrow an fd for wirePath (opening abs on a miss); call release() after.
   * `open` is only called on a miss, so the caller's confinement checks run then.
   */
  acquire(wirePath: string, abs: () => string): { fd: number; release: () => void } {
    let entry = this.entries.get(wirePath);
    if (entry) {
      // refresh LRU position
      this.entries.delete(wirePath);
      this.entries.set(wirePath, entry);
    } else {
      entry = { fd: openSync(abs(), OPEN_FLAGS), users: 0, stale: false };
      this.entries.set(wirePath, entry);
      this.evict();
    }
    entry.users++;
    const held = entry;
    let released = false;
    return {
      fd: held.fd,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        if (held.stale && held.users === 0) closeSync(held.fd);
      },
    };
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
