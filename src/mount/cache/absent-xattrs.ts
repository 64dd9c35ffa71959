/**
 * Names of extended attributes known to be absent, per path. The kernel asks
 * for security.capability before nearly every write; without a local copy each
 * of those questions would cost a round trip to a peer. The mount is the only
 * writer, so an absence stays true until the mount itself changes it:
 * - any setxattr or removexattr clears everything (through a hard link it may
 *   concern other names, and these calls are rare);
 * - an operation that changes what a name refers to (create, unlink, rename,
 *   rmdir, mkdir, symlink, link) forgets that name, and a rename or rmdir
 *   everything under it too.
 * Bounded: past MAX_PATHS entries the oldest are forgotten.
 */
export class AbsentXattrs {
  private readonly absent = new Map<string, Set<string>>();
  private static readonly MAX_PATHS = 16_384;
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
      if (this.absent.size >= AbsentXattrs.MAX_PATHS) {
        // The oldest tenth in one pass (deleting the front one by one is quadratic in a Map).
        let evict = AbsentXattrs.MAX_PATHS / 10;
        for (const old of this.absent.keys()) {
          if (evict-- <= 0) break;
          this.absent.delete(old);
        }
      }
      names = new Set();
      this.absent.set(path, names);
    }
    names.add(name);
  }

  clear(): void {
    this.generation++;
    this.absent.clear();
  }

  /** Forget one path (a change that makes or removes a file, not a directory's contents). */
  forgetName(path: string): void {
    this.generation++;
    this.absent.delete(path);
  }

  /** Forget a path and everything below it (a scan of every entry: for renames and rmdir). */
  forget(path: string): void {
    if (path === '') return this.clear();
    this.generation++;
    const prefix = `${path}/`;
    for (const key of [...this.absent.keys()]) if (key === path || key.startsWith(prefix)) this.absent.delete(key);
  }
}
