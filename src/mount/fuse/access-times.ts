import type { WireStat } from '../../protocol/ops.js';

/**
 * atime as a local file system keeps it. The FUSE kernel never updates atime
 * itself: after a read, a listing or following a symlink it only forgets the
 * atime it cached and asks the file system again. Peers read with O_NOATIME
 * (store/open-file.ts), so a read served by one copy changes none; instead,
 * the first read of an entry that a local file system would stamp sends the
 * `access` operation to every copy, each of which reads the entry once and lets
 * its own kernel stamp it.
 *
 * "Would stamp" is relatime, Linux's default: when atime is not after mtime or
 * ctime, or is a day old. The mount is the only writer, so it knows when an
 * entry last changed; what it knows is kept per name:
 * - fresh until T: atime is after mtime and ctime, and a day old at T (from a
 *   getattr answer, or an access just made);
 * - a change through the mount (or to another name of a hard-linked file)
 *   forgets that, so the next read stamps again.
 * Unknown names are stamped on their first read; the copy's kernel then decides
 * (an access it does not need changes nothing). Bounded: the oldest names are
 * forgotten first (each then costs one access more).
 */
/**
 * relatime or noatime. No strictatime: each copy stamps with its own kernel under
 * its own mount options (relatime by default), which a mount cannot override
 * without changing ctime too.
 */
export type AtimeMode = 'relatime' | 'noatime';

const DAY_MS = 24 * 60 * 60 * 1000;
const DAY_NS = BigInt(DAY_MS) * 1_000_000n;

export class AccessTimes {
  static readonly MAX_NAMES = 100_000;
  /** Name -> until when (ms since the epoch) a read would not change its atime. */
  private readonly freshUntil = new Map<string, number>();
  /** Name -> the change counter at its last change (bounded like freshUntil). */
  private readonly changedAt = new Map<string, number>();
  private changes = 0;
  /** Accesses in flight by name: concurrent reads of one name share one. */
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly opts: {
      mode: AtimeMode;
      /** nodiratime: listing a directory never stamps it. */
      noDirectories?: boolean;
      /** Send the access operation for this FUSE path to every copy. */
      access: (path: string) => Promise<void>;
      now?: () => number;
    },
  ) {}

  /** Where a change stands now, for `noteStat` and `accessed` to tell whether one came in between. */
  mark(): number {
    return this.changes;
  }

  /** A change through the mount to these names: their next read stamps atime again. */
  changed(...paths: string[]): void {
    for (const path of paths) {
      this.freshUntil.delete(path);
      this.changedAt.delete(path);
      this.changedAt.set(path, ++this.changes);
      bound(this.changedAt);
    }
  }

  /**
   * Names under these directories (not the names themselves): after a rename, or the
   * removal of a directory, they are other files. A scan of every name held: renames only.
   */
  changedBelow(...dirs: string[]): void {
    const prefixes = dirs.map((d) => (d === '' ? '' : `${d}/`));
    for (const path of this.freshUntil.keys()) {
      if (prefixes.some((p) => path.startsWith(p) && path !== p)) this.freshUntil.delete(path);
    }
  }

  /** A getattr answer for `path`, asked when mark() was `since`. */
  noteStat(path: string, st: WireStat, since: number): void {
    if (st.atimeNs === undefined || st.mtimeNs === undefined || st.ctimeNs === undefined) return;
    const atime = BigInt(st.atimeNs);
    if (atime <= BigInt(st.mtimeNs) || atime <= BigInt(st.ctimeNs)) {
      this.freshUntil.delete(path); // relatime would stamp it, whatever was noted before
      return;
    }
    if (!this.changedSince(path, since)) this.keepFresh(path, Number((atime + DAY_NS) / 1_000_000n));
  }

  /**
   * A reader's access to `path` (a read, a listing, a symlink followed): resolves once
   * every copy has stamped it, where a local file system would; null when no stamp is due
   * (nothing to wait for: a sequential read asks this for every 128 KiB, and a promise
   * and a timer each time were work for the collector).
   */
  read(path: string, kind: 'file' | 'directory' = 'file'): Promise<void> | null {
    if (this.opts.mode === 'noatime' || (kind === 'directory' && this.opts.noDirectories)) return null;
    const now = this.now();
    const until = this.freshUntil.get(path) ?? 0;
    if (until > now) {
      this.keepFresh(path, until); // read often: kept longest
      return null;
    }
    const running = this.inFlight.get(path);
    if (running) return running;
    const since = this.mark();
    const work = this.opts
      .access(path)
      .then(() => {
        if (!this.changedSince(path, since)) this.keepFresh(path, now + DAY_MS);
      })
      .finally(() => this.inFlight.delete(path));
    this.inFlight.set(path, work);
    return work;
  }

  /** How many names are held (tests). */
  get size(): number {
    return this.freshUntil.size;
  }

  private changedSince(path: string, since: number): boolean {
    return (this.changedAt.get(path) ?? 0) > since;
  }

  private keepFresh(path: string, until: number): void {
    this.freshUntil.delete(path); // re-inserted last: the map's order is its age
    this.freshUntil.set(path, until);
    bound(this.freshUntil);
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }
}

function bound(map: Map<string, number>): void {
  if (map.size <= AccessTimes.MAX_NAMES) return;
  for (const key of map.keys()) {
    map.delete(key);
    if (map.size <= AccessTimes.MAX_NAMES) return;
  }
}
