import type { WireStat } from '../../protocol/ops.js';

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
 *   name was in flight at the same time (two creates in one directory may be
 *   applied by a peer in either order, so neither knows the directory's
 *   final attributes);
 * - an answer from a read (a listing) is kept only if no change began or
 *   ended while it was being fetched (one that ended may have been applied
 *   after the peer listed);
 * - a change that fails, whatever the reason, drops the listings of the
 *   directories it touched and everything cached for its names: a failure
 *   may mean the cache was wrong, or that some peers applied it;
 * - only files with one link are cached: a change through another name of
 *   the same file would change them behind this cache's back;
 * - a rename or rmdir drops everything cached under the names involved, when
 *   it begins and again when it ends (a listing may land in between).
 * Bounded: past MAX_STATS attributes or MAX_LISTED_NAMES names in all
 * listings (or one listing past MAX_LISTING_NAMES) the oldest are forgotten,
 * which only means asking a peer again. Dropping a subtree visits only what
 * is held under it (an index by parent), never the whole cache.
 */
export class NameCache {
  private readonly stats = new Map<string, WireStat>();
  private readonly listings = new Map<string, Set<string>>();
  /**
   * Every name that has attributes or a listing here, or a descendant that has,
   * by its parent (so every ancestor of a held name is reachable from the root
   * down): a subtree is dropped by walking it, not by scanning everything.
   */
  private readonly byParent = new Map<string, Set<string>>();
  /** Names with a change in flight: how many, and whether two overlapped (then no answer about it is kept). */
  private readonly inFlight = new Map<string, { count: number; overlapped: boolean }>();
  /** Names in all listings, plus one per listing (an empty listing costs something too). */
  private listedNames = 0;
  private changes = 0;
  static readonly MAX_STATS = 50_000;
  static readonly MAX_LISTED_NAMES = 500_000;
  static readonly MAX_LISTING_NAMES = 100_000;

  /** Moves when any change begins or ends: a read's answer is kept only if this did not move while it was fetched. */
  get generation(): number {
    return this.changes;
  }

  /**
   * A change is about to be sent. `names` are the names it creates, removes
   * or modifies; `entriesChange` says whether it adds or removes entries (so
   * their directories' attributes change too); `subtrees` are the names whose
   * descendants it moves or removes (rename, rmdir). Returns the token to give
   * to end().
   */
  begin(names: string[], entriesChange: boolean, subtrees: string[] = []): ChangeToken {
    this.changes++;
    const token = { touched: touchedBy(names, entriesChange), subtrees };
    for (const name of token.touched) {
      const entry = this.inFlight.get(name);
      // Two changes to one name in flight at once (a directory's entries, say) may be
      // applied by a peer in either order: neither answer's view of it can be trusted.
      if (entry) {
        entry.count++;
        entry.overlapped = true;
      } else {
        this.inFlight.set(name, { count: 1, overlapped: false });
      }
      this.dropStat(name);
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
    this.changes++;
    const quiet = new Set<string>();
    for (const name of token.touched) {
      const entry = this.inFlight.get(name);
      if (!entry) continue;
      if (--entry.count === 0) {
        if (!entry.overlapped) quiet.add(name);
        this.inFlight.delete(name);
      }
    }
    // Whatever a listing fetched meanwhile said about these names is out of date.
    for (const name of token.touched) this.dropStat(name);
    for (const root of token.subtrees) this.forgetSubtree(root);
    if (!outcome.ok) {
      for (const name of token.touched) this.dropListing(name);
      return;
    }
    for (const name of outcome.removed ?? []) {
      if (this.listings.get(parentOf(name))?.delete(baseName(name))) this.listedNames--;
    }
    for (const name of outcome.created ?? []) {
      const dir = parentOf(name);
      const listing = this.listings.get(dir);
      if (!listing || listing.has(baseName(name))) continue;
      if (listing.size >= NameCache.MAX_LISTING_NAMES) {
        // One listing past its bound: dropped, not trimmed (a partial listing would answer ABSENT wrongly).
        this.dropListing(dir);
      } else {
        listing.add(baseName(name));
        this.listedNames++;
      }
    }
    for (const [name, stat] of Object.entries(outcome.stats ?? {})) {
      if (quiet.has(name) && cacheable(stat)) this.keepStat(name, stat);
    }
    // A directory this change made (mkdir, not a rename) is empty: its listing is complete.
    for (const dir of outcome.madeEmpty ?? []) if (quiet.has(dir)) this.keepListing(dir, new Set());
    this.trimListings();
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
    if (listing && !listing.has(baseName(name))) return ABSENT;
    return undefined;
  }

  /**
   * A directory's entries with their attributes, when all of it is known here:
   * its listing is complete, and neither it nor any entry has a change in
   * flight or lacks attributes (a file with several links, say). Undefined:
   * ask a peer. Answering readdir from here is what lets `find` over a tree
   * this mount wrote run without a round trip per directory.
   */
  listed(dir: string): Array<{ name: string; stat: WireStat }> | undefined {
    const listing = this.listings.get(dir);
    if (!listing || this.inFlight.has(dir)) return undefined;
    const entries: Array<{ name: string; stat: WireStat }> = [];
    for (const base of listing) {
      const name = dir === '' ? base : `${dir}/${base}`;
      const stat = this.inFlight.has(name) ? undefined : this.stats.get(name);
      if (!stat) return undefined;
      entries.push({ name: base, stat });
    }
    return entries;
  }

  /** A directory listing read from a peer, with each entry's attributes (null: vanished while listed). */
  noteListing(dir: string, entries: Array<{ name: string; stat: WireStat | null }>, askedAtGeneration: number): void {
    if (askedAtGeneration !== this.changes || entries.length > NameCache.MAX_LISTING_NAMES) return;
    if (entries.some((e) => e.stat === null)) return; // the directory was changing: not a clean listing
    this.keepListing(dir, new Set(entries.map((e) => e.name)));
    for (const e of entries) {
      const name = dir === '' ? e.name : `${dir}/${e.name}`;
      if (cacheable(e.stat!) && !this.inFlight.has(name)) this.keepStat(name, e.stat!);
    }
    this.trimListings();
  }

  /** Forget everything (a repair changed the peers' trees). */
  clear(): void {
    this.changes++;
    this.stats.clear();
    this.listings.clear();
    this.byParent.clear();
    this.listedNames = 0;
  }

  /** How much is held (for tests and status). */
  get size(): { stats: number; listings: number; listedNames: number } {
    return { stats: this.stats.size, listings: this.listings.size, listedNames: this.listedNames };
  }

  private keepStat(name: string, stat: WireStat): void {
    this.stats.delete(name); // re-inserted last: the map's order is its age
    if (this.stats.size >= NameCache.MAX_STATS) {
      // The oldest tenth in one pass: deleting the first entry one at a time makes each
      // next look at a Map's front skip every hole left before it (quadratic).
      let evict = NameCache.MAX_STATS / 10;
      for (const old of this.stats.keys()) {
        if (evict-- <= 0) break;
        this.dropStat(old);
      }
    }
    this.stats.set(name, stat);
    this.index(name);
  }

  private keepListing(dir: string, names: Set<string>): void {
    this.dropListing(dir);
    this.listings.set(dir, names);
    this.listedNames += names.size + 1;
    this.index(dir);
  }

  /** Past the budget of listed names, the oldest listings go first. */
  private trimListings(): void {
    if (this.listedNames <= NameCache.MAX_LISTED_NAMES) return;
    // In one pass of one iterator (deleting a Map's front one by one is quadratic), down to 90%.
    for (const dir of this.listings.keys()) {
      if (this.listedNames <= NameCache.MAX_LISTED_NAMES * 0.9) break;
      this.dropListing(dir);
    }
  }

  private dropStat(name: string): void {
    if (this.stats.delete(name)) this.unindex(name);
  }

  private dropListing(dir: string): void {
    const listing = this.listings.get(dir);
    if (!listing) return;
    this.listedNames -= listing.size + 1;
    this.listings.delete(dir);
    this.unindex(dir);
  }

  /** Make a held name reachable: it and each ancestor in its parent's set, up to one already there. */
  private index(name: string): void {
    while (name !== '') {
      const dir = parentOf(name);
      let children = this.byParent.get(dir);
      if (!children) this.byParent.set(dir, (children = new Set()));
      if (children.has(name)) return;
      children.add(name);
      name = dir;
    }
  }

  /** A name that holds nothing any more (no attributes, listing or held descendant) leaves the index, and so may its ancestors. */
  private unindex(name: string): void {
    while (name !== '' && !this.stats.has(name) && !this.listings.has(name) && !this.byParent.has(name)) {
      const dir = parentOf(name);
      const children = this.byParent.get(dir);
      if (!children?.delete(name)) return;
      if (children.size > 0) return;
      this.byParent.delete(dir);
      name = dir;
    }
  }

  /** Drop a name and everything held under it, visiting only what is held. */
  private forgetSubtree(root: string): void {
    const pending = [root];
    while (pending.length > 0) {
      const name = pending.pop()!;
      this.stats.delete(name);
      const listing = this.listings.get(name);
      if (listing) {
        this.listedNames -= listing.size + 1;
        this.listings.delete(name);
      }
      const children = this.byParent.get(name);
      this.byParent.delete(name);
      if (children) for (const child of children) pending.push(child); // not push(...): a set can be larger than the call stack allows
    }
    this.unindex(root);
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
  /** The names and the parents of the names. */
  readonly touched: ReadonlySet<string>;
  /** Names whose descendants the change moves or removes: dropped when it begins and again when it ends. */
  readonly subtrees: readonly string[];
}

function touchedBy(names: string[], entriesChange: boolean): Set<string> {
  const out = new Set<string>();
  for (const name of names) {
    out.add(name);
    if (entriesChange && name !== '') out.add(parentOf(name));
  }
  return out;
}

function baseName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

export function parentOf(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? '' : name.slice(0, slash);
}

/** A file with another name could change through it, behind this cache: not kept. */
function cacheable(stat: WireStat): boolean {
  return stat.type === 'dir' || stat.nlink === 1;
}
