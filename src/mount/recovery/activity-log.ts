/**
 * The mount's activity log (the idea of DRBD's): the names each change
 * touched, kept until every peer has reported that change durable.
 *
 * A peer whose machine went down (an unclean restart) may have lost, or hold
 * half of, what it applied after its durable point, and nothing else: every
 * name not touched since then is as the durable point left it. So copying
 * just the names changed after that point from a peer that has every change
 * makes it exact again, instead of a full resync of the whole tree.
 *
 * Trimmed through the lowest durable point any peer reported, in step or not:
 * a peer behind still applies what catch-up brings it without flushing, and
 * may lose that too. In memory only: after the mount restarts it knows nothing
 * of the names changed before, and an unclean peer gets the full verified
 * resync at mount time. Bounded: past MAX_ENTRIES the oldest entries are
 * dropped, and a peer durable only before them needs a full resync (a remount).
 */

/** What the log needs to know of a peer. */
export interface LoggedPeer {
  readonly name: string;
  /** The durable point of its last report (null before the first). */
  readonly durableThrough: number | null;
}

/** Entries kept at most (each a seq and the names of one change: about 10 MiB in all). */
export const MAX_ENTRIES = 100_000;
/** How often at most the log is trimmed (it is trimmed as changes are noted). */
const TRIM_EVERY_MS = 250;

export class ActivityLog {
  private seqs: number[] = [];
  private names: string[][] = [];
  private head = 0;
  /** Changes with a seq at or below this are not known here (before this mount started, or dropped over the bound). */
  private unknownThrough: number;
  private lastTrim = 0;

  constructor(
    /** The last seq before this mount started: what came before is not known here. */
    lastSeqBefore: number,
    private readonly peers: () => readonly LoggedPeer[],
    private readonly maxEntries = MAX_ENTRIES,
  ) {
    this.unknownThrough = lastSeqBefore;
  }

  /** A change was stamped with seq and touches these names. Seqs arrive in increasing order. */
  note(seq: number, names: string[]): void {
    this.seqs.push(seq);
    this.names.push(names);
    const now = Date.now();
    if (now - this.lastTrim >= TRIM_EVERY_MS || this.size > this.maxEntries) {
      this.lastTrim = now;
      this.trim();
    }
  }

  get size(): number {
    return this.seqs.length - this.head;
  }

  /**
   * The names a peer whose machine went down may hold wrongly: those changed
   * after its durable point (the one it reports after the restart, or the
   * last one it reported before, whichever is lower). Null when the log does
   * not reach back that far (then only a full resync repairs it).
   */
  suspectNames(peer: string, durableThrough: number): string[] | null {
    const reported = this.peers().find((p) => p.name === peer)?.durableThrough ?? durableThrough;
    const names = this.namesAfter(Math.min(durableThrough, reported));
    return names && [...names];
  }

  /** Drop what every peer has durable (and the oldest entries over the bound). */
  trim(): void {
    const points = this.peers().map((p) => p.durableThrough);
    const through = points.length > 0 && points.every((p) => p !== null) ? Math.min(...(points as number[])) : -1;
    while (this.head < this.seqs.length && (this.seqs[this.head]! <= through || this.size > this.maxEntries)) {
      if (this.seqs[this.head]! > through) this.unknownThrough = this.seqs[this.head]!; // dropped over the bound, not durable everywhere
      this.head++;
    }
    if (this.head > 4096 && this.head * 2 > this.seqs.length) {
      this.seqs = this.seqs.slice(this.head);
      this.names = this.names.slice(this.head);
      this.head = 0;
    }
  }

  /** Every name touched by a change after seq, or null when such changes are not all known here. */
  private namesAfter(seq: number): Set<string> | null {
    if (seq < this.unknownThrough) return null;
    const out = new Set<string>();
    for (let i = this.seqs.length - 1; i >= this.head && this.seqs[i]! > seq; i--) for (const n of this.names[i]!) out.add(n);
    return out;
  }
}
