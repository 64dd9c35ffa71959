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
 *
 * A directory listing from a peer also gives each entry's full list of xattr
 * names (`noteComplete`): every other name is then absent, so `ls -l`, which
 * asks each entry for security.selinux and system.posix_acl_access, needs no
 * round trip per entry. The same rules forget these lists.
 */
export class AbsentXattrs {
  private readonly absent = new Map<string, Set<string>>();
  /** Paths whose xattr names are all known: any other name is absent. */
  private readonly complete = new Map<string, ReadonlySet<string>>();
  private static readonly MAX_PATHS = 16_384;
  /**
   * Complete lists kept: as many as the name cache keeps attributes (NameCache.MAX_STATS), since a
   * listing it answers later brings no xattr names, and each entry missing here costs `ls -l` two
   * round trips (about 100 bytes each, most sharing one empty set: about 5 MB at the bound).
   */
  private static readonly MAX_COMPLETE = 50_000;
  /**
   * Bumped by every change: an answer is only cached if no change began while
   * it was being fetched (it may describe the state before that change).
   */
  generation = 0;

  isAbsent(path: string, name: string): boolean {
    if (this.absent.get(path)?.has(name)) return true;
    const present = this.complete.get(path);
    return present !== undefined && !present.has(name);
  }

  /** Every xattr name `path` has, as a listing fetched at `askedAtGeneration` said. */
  noteComplete(path: string, names: string[], askedAtGeneration: number): void {
    if (askedAtGeneration !== this.generation) return;
    if (!this.complete.has(path)) evictOldest(this.complete, AbsentXattrs.MAX_COMPLETE);
    this.complete.set(path, names.length === 0 ? NO_NAMES : new Set(names));
  }

  noteAbsent(path: string, name: string, askedAtGeneration: number): void {
    if (askedAtGeneration !== this.generation) return;
    let names = this.absent.get(path);
    if (!names) {
      evictOldest(this.absent, AbsentXattrs.MAX_PATHS);
      names = new Set();
      this.absent.set(path, names);
    }
    names.add(name);
  }

  clear(): void {
    this.generation++;
    this.absent.clear();
    this.complete.clear();
  }

  /** Forget one path (a change that makes or removes a file, not a directory's contents). */
  forgetName(path: string): void {
    this.generation++;
    this.absent.delete(path);
    this.complete.delete(path);
  }

  /** Forget a path and everything below it (a scan of every entry: for renames and rmdir). */
  forget(path: string): void {
    if (path === '') return this.clear();
    this.generation++;
    const prefix = `${path}/`;
    for (const map of [this.absent, this.complete]) for (const key of [...map.keys()]) if (key === path || key.startsWith(prefix)) map.delete(key);
  }
}

/**
 * The list of a path with no xattrs, which most have: one set shared by all of them (a Set of
 * its own each was about 150 bytes: 7 MiB of a full map, session 21's heap snapshot). Never
 * added to: `complete` is only ever replaced or deleted.
 */
const NO_NAMES: ReadonlySet<string> = new Set<string>();

/** Make room for one more: at the bound, the oldest tenth goes in one pass (deleting the front one by one is quadratic in a Map). */
function evictOldest(map: Map<string, unknown>, max: number): void {
  if (map.size < max) return;
  let evict = max / 10;
  for (const old of map.keys()) {
    if (evict-- <= 0) break;
    map.delete(old);
  }
}
