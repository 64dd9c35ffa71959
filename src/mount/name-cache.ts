import type { WireStat } from '../protocol/ops.js';

/**
 * What the mount knows about names without asking a peer, for a mount without
 * a local copy (with one, every read is local anyway). The mount is the only
 * writer of the tree, so what it learned stays true until it changes it:
 * - attributes of a name, from the answer to a change (the peer sends the
 *   attributes of what the change touched) or from a directory listing;
 * - complete listings of directories: one this mount made (empty), or one a
 *   peer listed; kept up to date by this mount's own creates, renames and
 *   removals, so a lookup of a name that is not there is answered "no such
 *   file" at once (cp -r and untar look up every name before creating it).
 *
 * Races are what make a cache wrong, so the rules are strict:
 * - a change marks every name it touches, and the parents whose entries it
 *   changes, as in flight from before it is sent until its outcome is known;
 *   nothing is answered for a name in flight, and a cached answer for it is
 *   dropped when the change starts;
 * - an answer from a change is kept only if no other change touching that
 *   name began after it did or is still running (two creates in one directory
 *   may finish in either order; only the last one's view of the directory is
 *   right);
 * - an answer from a read (a listing) is kept only if no change at all began
 *   while it was being fetched;
 * - a change that fails, whatever the reason, drops the listings of the
 *   directories it touched and everything cached for its names: a failure
 *   may mean the cache was wrong, or that some peers applied it;
 * - only files with one link are cached: a change through another name of
 *   the same file would change them behind this cache's back;
 * - a rename or rmdir drops everything cached under the names involved.
 * Bounded: past MAX_STATS attributes or MAX_LISTINGS listings (or a listing
 * past MAX_LISTING_NAMES names) the oldest are forgotten, which only means
 * asking a peer again.
 */
export class NameCache {
  private readonly stats = new Map<string, WireStat>();
  private readonly listings = new Map<string, Set<string>>();
  /** Names with a change in flight: how many, and the number of the last one begun. */
  private readonly inFlight = new Map<string, { count: number; lastBegun: number }>();
  private begun = 0;
  private static readonly MAX_STATS = 200_000;
  private static readonly MAX_LISTINGS = 20_000;
  private static readonly MAX_LISTING_NAMES = 100_000;

  /** Bumped by every change: a read's answer is kept only if this did not move while it was fetched. */
  get generation(): number {
    return this.begun;
  }

  /**
   * A change is about to be sent. `names` are the names it creates, removes
   * or modifies; `entriesChange` says whether it adds or removes entries (so
   * their directories' attributes change too); `subtrees` are the names whose
   * descendants it moves or removes (rename, rmdir). Returns the token to give
   * to end().
   */
  begin(names: string[], entriesChange: boolean, subtrees: string[] = []): ChangeToken {
    const token = { number: ++this.begun, touched: touchedBy(names, entriesChange) };
    for (const name of token.touched) {
      const entry = this.inFlight.get(name);
      if (entry) {
        entry.count++;
        entry.lastBegun = token.number;
      } else {
        this.inFlight.set(name, { count: 1, lastBegun: token.number });
      }
      this.stats.delete(name);
    }
    for (const root of subtrees) this.forgetSubtree(root);
    return token;
  }

  /**
   * The change's outcome is known. On success, `created` and `removed` update
   * the listings and `stats` (from the peer's answer) are kept where the rules
   * allow; on failure, everything the change touched is forgotten.
   */
  end(token: ChangeToken, outcome: ChangeOutcome | { ok: false }): void {
    const quiet = new Set<string>();
    for (const name of token.touched) {
      const entry = this.inFlight.get(name);
      if (!entry) continue;
      if (--entry.count === 0) {
        if (entry.lastBegun === token.number) quiet.add(name);
        this.inFlight.delete(name);
      }
    }
    // Whatever a listing fetched meanwhile said about these names is out of date.
    for (const name of token.touched) this.stats.delete(name);
    if (!outcome.ok) {
      for (const name of token.touched) this.listings.delete(name);
      return;
    }
    for (const name of outcome.removed ?? []) this.listings.get(parentOf(name))?.delete(name.slice(name.lastIndexOf('/') + 1));
    for (const name of outcome.created ?? []) {
      const listing = this.listings.get(parentOf(name));
      if (!listing) continue;
      if (listing.size >= NameCache.MAX_LISTING_NAMES) this.listings.delete(parentOf(name));
      else listing.add(name.slice(name.lastIndexOf('/') + 1));
    }
    for (const [name, stat] of Object.entries(outcome.stats ?? {})) {
      if (!quiet.has(name) || !cacheable(stat)) continue;
      this.keepStat(name, stat);
    }
    // A directory this change made (mkdir, not a rename) is empty: its listing is complete.
    for (const dir of outcome.madeEmpty ?? []) if (quiet.has(dir)) this.keepListing(dir, new Set());
  }

  /**
   * What is known about a name: its attributes, ABSENT when its directory's
   * listing is complete and lacks it, or undefined (ask a peer).
   */
  lookup(name: string): WireStat | typeof ABSENT | undefined {
    if (this.inFlight.has(name)) return undefined;
    const stat = this.stats.get(name);
    if (stat) return stat;
    if (name === '') return undefined;
    const listing = this.listings.get(parentOf(name));
    // A change in flight elsewhere in the directory touches only its own name (in flight, so not
    // answered above) and the directory's attributes: the rest of the listing stands.
    if (listing && !listing.has(name.slice(name.lastIndexOf('/') + 1))) return ABSENT;
    return undefined;
  }

  /** A directory listing read from a peer, with each entry's attributes (null: vanished while listed). */
  noteListing(dir: string, entries: Array<{ name: string; stat: WireStat | null }>, askedAtGeneration: number): void {
    if (askedAtGeneration !== this.begun || entries.length > NameCache.MAX_LISTING_NAMES) return;
    if (entries.some((e) => e.stat === null)) return; // the directory was changing: not a clean listing
    this.keepListing(dir, new Set(entries.map((e) => e.name)));
    for (const e of entries) {
      const name = dir === '' ? e.name : `${dir}/${e.name}`;
      if (cacheable(e.stat!) && !this.inFlight.has(name)) this.keepStat(name, e.stat!);
    }
  }

  /** Forget everything (a repair changed the peers' trees). */
  clear(): void {
    this.begun++;
    this.stats.clear();
    this.listings.clear();
  }

  private keepStat(name: string, stat: WireStat): void {
    this.stats.delete(name); // re-inserted last: the map's order is its age
    if (this.stats.size >= NameCache.MAX_STATS) this.stats.delete(this.stats.keys().next().value!);
    this.stats.set(name, stat);
  }

  private keepListing(dir: string, names: Set<string>): void {
    this.listings.delete(dir);
    if (this.listings.size >= NameCache.MAX_LISTINGS) this.listings.delete(this.listings.keys().next().value!);
    this.listings.set(dir, names);
  }

  private forgetSubtree(root: string): void {
    const prefix = root === '' ? '' : `${root}/`;
    for (const map of [this.stats, this.listings] as Map<string, unknown>[]) {
      for (const key of [...map.keys()]) if (key === root || key.startsWith(prefix)) map.delete(key);
    }
  }
}

export const ABSENT = Symbol('absent');

/** What a successful change did to names: those it made (madeEmpty: new, empty directories) and removed, and the peer's attributes after it. */
export interface ChangeOutcome {
  ok: true;
  created?: string[];
  madeEmpty?: string[];
  removed?: string[];
  stats?: Record<string, WireStat>;
}

export interface ChangeToken {
  readonly number: number;
  /** The names and the parents of the names. */
  readonly touched: ReadonlySet<string>;
}

function touchedBy(names: string[], entriesChange: boolean): Set<string> {
  const out = new Set<string>();
  for (const name of names) {
    out.add(name);
    if (entriesChange && name !== '') out.add(parentOf(name));
  }
  return out;
}

export function parentOf(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? '' : name.slice(0, slash);
}

/** A file with another name could change through it, behind this cache: not kept. */
function cacheable(stat: WireStat): boolean {
  return stat.type === 'dir' || stat.nlink === 1;
}
