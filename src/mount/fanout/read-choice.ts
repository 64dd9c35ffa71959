/**
 * Which peer a read goes to. Reads go to the fastest healthy in-step peer,
 * except that the peer reads went to last keeps them until another is clearly
 * faster: its median latency below READ_SWITCH_RATIO of the current one's.
 * Medians of two similar peers cross back and forth, and a file read from
 * both by turns is half-sequential on each, which defeats their disks'
 * read-ahead (session 8: a cold 512 MiB read after writing the file measured
 * 176-199 MB/s alternating, against 227-257 MB/s from one peer).
 */
export const READ_SWITCH_RATIO = 0.7;

export interface ReadCandidate {
  readonly healthy: boolean;
  /** Median latency (µs); unmeasured peers report a very large number. */
  readonly latencyP50Us: number;
}

/** `byPreference` (fastest first) with `current` moved to the front when it should keep the reads. */
export function keepReadPeer<T extends ReadCandidate>(byPreference: T[], current: T | null, ratio = READ_SWITCH_RATIO): T[] {
  const at = current ? byPreference.indexOf(current) : -1;
  if (at <= 0 || !current!.healthy) return byPreference;
  if (byPreference[0]!.latencyP50Us < ratio * current!.latencyP50Us) return byPreference;
  return [current!, ...byPreference.slice(0, at), ...byPreference.slice(at + 1)];
}
