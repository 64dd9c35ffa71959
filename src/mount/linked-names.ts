import { constants } from 'node:os';
import type { Logger } from '../log.js';

/**
 * What a stat through the dentry cache alone answers when it could not reach the
 * name that way: EAGAIN (not all cached), and on kernels before 5.12 (no
 * RESOLVE_CACHED) EINVAL, before 5.6 (no openat2) ENOSYS. The name is walked then.
 */
const WALK_INSTEAD: ReadonlySet<number> = new Set([constants.errno.EAGAIN, constants.errno.EINVAL, constants.errno.ENOSYS]);

/**
 * Keeps the kernel's view of hard-linked files fresh under all their names.
 *
 * libfuse's path API gives every name its own kernel inode, so the kernel
 * caches attributes per name (for the mount's attr_timeout), and a change
 * through one name of a hard-linked file (chmod, write, link, unlink...) would
 * leave every other name's cached nlink, mode, size and ctime stale for up to
 * that long. The binding has no call to drop another name's cache (libfuse 3's
 * fuse_invalidate_path is not exposed: docs/decisions/0003), so the mount does what a reader
 * would: before it answers such a change, it stats each other name it knows
 * with AT_STATX_FORCE_SYNC, which makes the kernel ask this daemon for that
 * name's attributes again; the answer already shows the change.
 *
 * Which names to refresh: every attribute the kernel caches comes from this
 * daemon's getattr, so noting each answer with nlink > 1 knows every name
 * whose cached attributes could go stale. A name first seen with one link is
 * not noted, and needs not be: the link that gives it a second name is made
 * through this mount, which refreshes the source too (the kernel counts the new
 * link only in the new name's inode) and looks the new name up.
 *
 * How a name is refreshed matters, because the kernel may hold locks that only
 * this daemon's answer releases: an unlink, link or rename holds its
 * directories' locks until it is answered, and a path walk that must look a
 * name up in such a directory waits for that lock. So each name is first
 * reached through the dentry cache alone (forceStat cachedOnly: no lock is
 * taken), which is all it takes when the kernel holds attributes for it. Only
 * when that cannot be done (some part of the path is not cached, or must be
 * revalidated) is the name walked in full; a change of names (`namesChange`)
 * does not wait for such a walk, which may need the very lock it holds (the
 * walk finishes once the answer releases it).
 *
 * Bounded in three ways. At most MAX_NAMES names are held (the oldest noted
 * are forgotten: a forgotten name may show stale attributes until they expire,
 * as without this class). A refresh waits at most `waitMs` (a walk may wait on
 * a directory that some other request, waiting behind this one, holds): then
 * the change is answered anyway. And at most MAX_STATS_IN_FLIGHT cached stats
 * and MAX_WALKS_IN_FLIGHT walks run at once, each kind in its own queue (a walk
 * blocked on a lock never delays a cached stat), so blocked calls take at most
 * three of libuv's four threads, which the mount's file I/O shares; a name
 * already waiting for a cached stat is not queued twice.
 *
 * libfuse's high-level API also locks names: an unlink or a rename holds the names it removes
 * or moves until it is answered, and a getattr of such a name waits. So a name
 * with an unlink or rename in flight (`removing`) is not refreshed: two unlinks
 * of two names of one file would otherwise each wait for the other's answer
 * (the kernel drops the attributes of a name it unlinks itself).
 */
export class LinkedNames {
  /** Name -> inode number, for names last seen with more than one link; in the order noted (oldest first). */
  private readonly inoOf = new Map<string, string>();
  /** Inode number -> its names held here. */
  private readonly namesOf = new Map<string, Set<string>>();
  static readonly MAX_NAMES = 50_000;
  static readonly MAX_STATS_IN_FLIGHT = 2;
  static readonly MAX_WALKS_IN_FLIGHT = 1;
  private readonly cachedStats = new Limiter(LinkedNames.MAX_STATS_IN_FLIGHT);
  private readonly walks = new Limiter(LinkedNames.MAX_WALKS_IN_FLIGHT);
  /** Cached stats queued and not yet started, by name: a second refresh of the name joins the first. */
  private readonly queuedStats = new Map<string, Promise<number>>();
  /** Names an unlink or rename has in flight (locked by libfuse until answered), with how many. */
  private readonly inRemoval = new Map<string, number>();

  constructor(
    private readonly opts: {
      /**
       * Make the kernel fetch the attributes of this mount path again; resolves
       * with the errno (0: done; EAGAIN with cachedOnly: not all in the dentry cache).
       */
      forceStat: (fusePath: string, cachedOnly: boolean, dropData: boolean) => Promise<number>;
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

  /** Run an unlink or rename of `names`: while it runs, those names are not refreshed. */
  async removing<T>(names: string[], work: () => Promise<T>): Promise<T> {
    for (const name of names) this.inRemoval.set(name, (this.inRemoval.get(name) ?? 0) + 1);
    try {
      return await work();
    } finally {
      for (const name of names) {
        const left = this.inRemoval.get(name)! - 1;
        if (left === 0) this.inRemoval.delete(name);
        else this.inRemoval.set(name, left);
      }
    }
  }

  /**
   * Make the kernel fetch the attributes of `names` again, before the change
   * that made them stale is answered; undefined when there is nothing to do
   * (the common case: no await on the write path). `namesChange`: the change
   * is an unlink, link or rename (its directories are locked until answered).
   * `data`: the change wrote the file's bytes (write, truncate, fallocate): the
   * kernel's cached pages of the other names are dropped too, or a descriptor or
   * map already open on one would go on reading the old bytes.
   */
  refresh(names: string[], opts: { namesChange?: boolean; data?: boolean } = {}): Promise<void> | undefined {
    const wanted = this.inRemoval.size === 0 ? names : names.filter((name) => !this.inRemoval.has(name));
    if (wanted.length === 0) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all(wanted.map((name) => this.refreshOne(name, opts.namesChange ?? false, opts.data ?? false)));
    const bound = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.opts.waitMs);
    });
    return Promise.race([all, bound]).then((outcome) => {
      clearTimeout(timer);
      if (outcome === 'late') this.opts.log.debug({ names: wanted.slice(0, 8), waitMs: this.opts.waitMs }, 'hard links: other names not refreshed in time; answering the change anyway');
    });
  }

  private async refreshOne(name: string, namesChange: boolean, data: boolean): Promise<void> {
    if (!WALK_INSTEAD.has(await this.cachedStat(name, data))) return;
    const walk = this.stat(this.walks, name, false, data);
    if (!namesChange) await walk;
  }

  /**
   * A stat through the dentry cache; one that is queued and not yet started serves
   * every refresh of its name (one that drops data serves one that does not).
   */
  private cachedStat(name: string, data: boolean): Promise<number> {
    const key = `${data ? 'd' : 'a'}${name}`;
    const queued = this.queuedStats.get(key) ?? (data ? undefined : this.queuedStats.get(`d${name}`));
    if (queued) return queued;
    const stat = this.stat(this.cachedStats, name, true, data, () => {
      if (this.queuedStats.get(key) === stat) this.queuedStats.delete(key);
    });
    this.queuedStats.set(key, stat);
    return stat;
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

  /** forceStat within `limiter`; `started` is called when it leaves the queue (a stat begun may predate the change being answered). */
  private async stat(limiter: Limiter, name: string, cachedOnly: boolean, data: boolean, started?: () => void): Promise<number> {
    await limiter.acquire();
    started?.();
    try {
      return await this.opts.forceStat(name, cachedOnly, data);
    } catch (err) {
      this.opts.log.debug({ name, err }, 'hard links: refreshing another name failed');
      return -1;
    } finally {
      limiter.release();
    }
  }
}

/** At most `limit` holders at once; the others wait their turn. */
class Limiter {
  private held = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async acquire(): Promise<void> {
    if (this.held >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.held++;
  }

  release(): void {
    this.held--;
    this.waiting.shift()?.();
  }
}
