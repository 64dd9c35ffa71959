/**
 * Names of extended attributes known to be absent, per path. The kernel asks
 * for security.capability before nearly every write; without a local copy each
 * of those questions would cost a round trip to a peer. The mount is the only
 * writer, so an absence stays true until the mount itself changes it:
 * - any setxattr or removexattr clears everything (through a hard link it may
 *   concern other names, and these calls are rare);
 * - an operation that changes what a name refers to (create, unlink, rename,
 *   rmdir, mkdir, symlink, link) forgets that name and everything under it.
 * Bounded: past MAX_PATHS entries the oldest are forgotten.
 */
export class AbsentXattrs {
  private readonly absent = new Map<string, Set<string>>();
  private static readonly MAX_PATHS = 65_536;
  /**
   * Bumped by every change: an answer is only cached if no change began while
   * it was being fetched (it may describe the state before that change).
   */
  generation = 0;

  isAbsent(path: string, name: string): boolean {
    return this.absent.get(path)?.has(name) ?? false;
  }

  noteAbsent(path: string, name: string, askedAtGeneration: number): void {
    if (askedAtGeneration !== this.generation) return;
    let names = this.absent.get(path);
    if (!names) {
      if (this.absent.size >= AbsentXattrs.MAX_PATHS) this.absent.delete(this.absent.keys().next().value!);
      names = new Set();
      this.absent.set(path, names);
    }
    names.add(name);
  }

  clear(): void {
    this.generation++;
    this.absent.clear();
  }

  /** Forget a path and everything below it. */
  forget(path: string): void {
    if (path === '') return this.clear();
    this.generation++;
    const prefix = `${path}/`;
    for (const key of [...this.absent.keys()]) if (key === path || key.startsWith(prefix)) this.absent.delete(key);
  }
}
