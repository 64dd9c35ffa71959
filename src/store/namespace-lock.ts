import { assert } from '../assert.js';

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
    return new Promise((grant) => this.queue.push({ exclusive, grant }));
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
    while (this.queue.length > 0 && this.canGrant(this.queue[0]!.exclusive)) {
      const next = this.queue.shift()!;
      this.take(next.exclusive);
      next.grant();
    }
  }
}
