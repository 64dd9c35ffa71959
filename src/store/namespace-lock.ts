import { assert } from '../assert.js';
import { MirrorError } from '../protocol/errors.js';

/**
 * How long a call waits for the lock before it is refused. Holders are short:
 * one change, a stat, or a manifest walk's batch (64 entries, at most 8 files
 * opened; listing a directory is one hold of its own, as long as that listing
 * takes). The mount has given up on such a call long before (--peer-timeout)
 * and journaled it; the bound stops calls from piling up without end. A refused call is MFS_TIMEOUT
 * (errno EIO: not recorded, so the mount catches the peer up later).
 */
export const LOCK_WAIT_LIMIT_MS = 60_000;

/**
 * A readers-writer lock over the tree's namespace. Operations that can remove
 * a name or make a name a symlink take it exclusively (EXCLUSIVE_OPS in
 * peer/exactly-once.ts: rename, rmdir, unlink, symlink, link, and the xattr changes),
 * so nothing else sits between its confinement check and its syscall while a
 * name changes (see tree.ts); everything else shares it. Waiters are served in arrival order, so neither side starves.
 */
export class NamespaceLock {
  private shared = 0;
  private exclusive = false;
  private readonly queue: { exclusive: boolean; grant: () => void }[] = [];

  constructor(private readonly waitLimitMs = LOCK_WAIT_LIMIT_MS) {}

  async run<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    await this.acquire(exclusive);
    try {
      return await fn();
    } finally {
      this.release(exclusive);
    }
  }

  private acquire(exclusive: boolean): Promise<void> {
    if (this.queue.length === 0 && this.canGrant(exclusive)) {
      this.take(exclusive);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        exclusive,
        grant: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const at = this.queue.indexOf(waiter);
        if (at < 0) return; // granted meanwhile
        this.queue.splice(at, 1);
        reject(new MirrorError('MFS_TIMEOUT', `the namespace lock was not granted within ${this.waitLimitMs} ms (${exclusive ? 'exclusive' : 'shared'})`));
        // A waiter that gave up may have been what held the ones behind it back.
        this.grantWaiting();
      }, this.waitLimitMs);
      this.queue.push(waiter);
    });
  }

  private canGrant(exclusive: boolean): boolean {
    return exclusive ? !this.exclusive && this.shared === 0 : !this.exclusive;
  }

  private take(exclusive: boolean): void {
    // Granted only when compatible: one exclusive holder alone, or shared holders only.
    assert(this.canGrant(exclusive), 'the namespace lock is granted only when compatible with its holders');
    if (exclusive) this.exclusive = true;
    else this.shared++;
  }

  private release(exclusive: boolean): void {
    // Released once per grant (run's finally): a second release would let a writer in beside readers.
    assert(exclusive ? this.exclusive : this.shared > 0, 'the namespace lock is released once per grant (its count never goes negative)');
    if (exclusive) this.exclusive = false;
    else this.shared--;
    this.grantWaiting();
  }

  /** Grant waiters in arrival order while the first one can be granted. */
  private grantWaiting(): void {
    while (this.queue.length > 0 && this.canGrant(this.queue[0]!.exclusive)) {
      const next = this.queue.shift()!;
      this.take(next.exclusive);
      next.grant();
    }
  }
}
