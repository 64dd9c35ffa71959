import { constants } from 'node:os';
import type { Logger } from '../../log.js';
import { Limiter } from '../../ordering/limiter.js';

const ENOENT = constants.errno.ENOENT;

/**
 * Keeps the kernel's view of hard-linked files fresh under all their names.
 *
 * libfuse's path API gives every name its own kernel inode, so the kernel
 * caches attributes and pages per name (for the mount's attr_timeout), and a
 * change through one name of a hard-linked file (chmod, write, link, unlink,
 * an ACL...) would leave every other name's cached nlink, mode, size, ctime,
 * ACL and bytes stale for up to that long. So before the mount answers such a
 * change, it tells the kernel to drop what it caches for each other name it
 * knows (libfuse 3's fuse_invalidate_path, which our patch of the binding
 * exposes: docs/decisions/0003); the next stat or read of that name asks this
 * daemon again, and the answer already shows the change.
 *
 * Which names: every attribute the kernel caches comes from this daemon's
 * getattr, so noting each answer with nlink > 1 knows every name whose cached
 * attributes could go stale. A name first seen with one link is not noted, and
 * needs not be: the link that gives it a second name is made through this
 * mount, which invalidates the source too (the kernel counts the new link only
 * in the new name's inode) and looks the new name up.
 *
 * An invalidation takes no lock a change holds (unlike a path walk, which may
 * wait for a directory an unlink or rename has locked until it is answered, or
 * for an ACL the kernel has not cached): it finds the kernel inode by name in
 * libfuse's table and drops its attributes and pages. Dropping pages waits for
 * a read of that name in flight, which JavaScript answers meanwhile, so it runs
 * on libuv's thread pool.
 *
 * Bounded in three ways. At most MAX_NAMES names are held (the oldest noted
 * are forgotten: a forgotten name may show stale attributes until they expire,
 * as without this class). A refresh waits at most `waitMs`: then the change is
 * answered anyway. And at most MAX_IN_FLIGHT invalidations run at once (the
 * thread pool is shared with the mount's file I/O); a name already waiting for
 * its turn is not queued twice.
 */
export class LinkedNames {
  /** Name -> inode number, for names last seen with more than one link; in the order noted (oldest first). */
  private readonly inoOf = new Map<string, string>();
  /** Inode number -> its names held here. */
  private readonly namesOf = new Map<string, Set<string>>();
  static readonly MAX_NAMES = 50_000;
  static readonly MAX_IN_FLIGHT = 2;
  private readonly limiter = new Limiter(LinkedNames.MAX_IN_FLIGHT);
  /** Invalidations queued and not yet started, by name: a second refresh of the name joins the first. */
  private readonly queued = new Map<string, Promise<void>>();

  constructor(
    private readonly opts: {
      /** Make the kernel drop what it caches for this mount path; resolves with 0 or a negative errno (-ENOENT: it holds nothing). */
      invalidate: (fusePath: string) => Promise<number>;
      /** The longest a change's answer waits for the other names' refresh. */
      waitMs: number;
      log: Logger;
    },
  ) {}

  /** The kernel is about to cache these attributes of `path` (a getattr answer). */
  note(path: string, stat: { type: string; nlink: number; ino: number }): void {
    if (stat.type !== 'dir' && stat.nlink > 1) this.hold(path, String(stat.ino));
    else this.removed(path);
  }

  /** The other names held for the file at `path` (none when it is not known to be hard-linked). */
  othersOf(path: string): string[] {
    const ino = this.inoOf.get(path);
    if (ino === undefined) return [];
    const names = this.namesOf.get(ino)!;
    return names.size > 1 ? [...names].filter((n) => n !== path) : [];
  }

  /** `path` was removed. */
  removed(path: string): void {
    const ino = this.inoOf.get(path);
    if (ino !== undefined) this.unlink(path, ino);
  }

  /** `from` was renamed to `to` (what was at `to` is gone; names below a renamed directory move with it). */
  renamed(from: string, to: string): void {
    const fromIno = this.inoOf.get(from);
    // Two names of one file: rename(2) does nothing at all.
    if (fromIno !== undefined && fromIno === this.inoOf.get(to)) return;
    this.removed(to);
    if (this.inoOf.size === 0) return;
    const moves: Array<[string, string, string]> = [];
    for (const [name, ino] of this.inoOf) {
      if (name === from) moves.push([name, to, ino]);
      else if (name.startsWith(`${to}/`)) moves.push([name, '', ino]); // under a directory that was replaced
      else if (name.startsWith(`${from}/`)) moves.push([name, to + name.slice(from.length), ino]);
    }
    for (const [name, , ino] of moves) this.unlink(name, ino);
    for (const [, moved, ino] of moves) if (moved) this.hold(moved, ino);
  }

  /** `a` and `b` were exchanged (RENAME_EXCHANGE): each name, and what is below it, now belongs to the other. */
  exchanged(a: string, b: string): void {
    if (this.inoOf.size === 0) return;
    const moves: Array<[string, string, string]> = [];
    for (const [name, ino] of this.inoOf) {
      if (name === a) moves.push([name, b, ino]);
      else if (name === b) moves.push([name, a, ino]);
      else if (name.startsWith(`${a}/`)) moves.push([name, b + name.slice(a.length), ino]);
      else if (name.startsWith(`${b}/`)) moves.push([name, a + name.slice(b.length), ino]);
    }
    for (const [name, , ino] of moves) this.unlink(name, ino);
    for (const [, moved, ino] of moves) this.hold(moved, ino);
  }

  /**
   * Make the kernel drop what it caches for `names`, before the change that made
   * them stale is answered; undefined when there is nothing to do (the common
   * case: no await on the write path).
   */
  refresh(names: string[]): Promise<void> | undefined {
    if (names.length === 0) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all(names.map((name) => this.invalidate(name)));
    const bound = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.opts.waitMs);
    });
    return Promise.race([all, bound]).then((outcome) => {
      clearTimeout(timer);
      if (outcome === 'late') this.opts.log.debug({ names: names.slice(0, 8), waitMs: this.opts.waitMs }, 'hard links: other names not refreshed in time; answering the change anyway');
    });
  }

  /** One invalidation in its turn; one queued and not yet started serves every refresh of its name. */
  private invalidate(name: string): Promise<void> {
    const queued = this.queued.get(name);
    if (queued) return queued;
    const started = this.limiter.acquire().then(() => {
      // Started: a later refresh of this name must invalidate again (this one may predate its change).
      if (this.queued.get(name) === run) this.queued.delete(name);
    });
    const run: Promise<void> = (async () => {
      await started;
      try {
        const result = await this.opts.invalidate(name);
        if (result !== 0 && result !== -ENOENT) this.opts.log.debug({ name, result }, 'hard links: invalidating another name failed');
      } catch (err) {
        this.opts.log.debug({ name, err }, 'hard links: invalidating another name failed');
      } finally {
        this.limiter.release();
      }
    })();
    this.queued.set(name, run);
    return run;
  }

  private hold(path: string, ino: string): void {
    const held = this.inoOf.get(path);
    if (held !== undefined) this.unlink(path, held); // (re)noted names move to the young end
    this.inoOf.set(path, ino);
    let names = this.namesOf.get(ino);
    if (!names) this.namesOf.set(ino, (names = new Set()));
    names.add(path);
    while (this.inoOf.size > LinkedNames.MAX_NAMES) {
      const [oldest, oldestIno] = this.inoOf.entries().next().value as [string, string];
      this.unlink(oldest, oldestIno);
    }
  }

  private unlink(path: string, ino: string): void {
    this.inoOf.delete(path);
    const names = this.namesOf.get(ino);
    if (!names) return;
    names.delete(path);
    if (names.size === 0) this.namesOf.delete(ino);
  }
}
