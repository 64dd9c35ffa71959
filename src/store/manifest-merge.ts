import type { ManifestEntry } from '../protocol/ops.js';

/**
 * Comparing manifests as streams (issue 23: a tree of a million entries must
 * not sit in memory to be compared). Every manifest lists its entries in the
 * walk's order (store/manifest.ts): depth first, the names of a directory
 * sorted by UTF-16 code unit. Two or more such streams are merged like sorted
 * files, holding one entry of each at a time.
 */

/**
 * The walk's order of two paths: component by component, by UTF-16 code unit
 * (as Array.prototype.sort orders the names of a directory), a directory
 * before everything under it. Plain string order differs: it puts `a-b`
 * between `a` and `a/x`, the walk puts it after `a/x`.
 */
export function compareWalkOrder(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // The first difference: a separator ends that component, which is then a prefix of the other's.
    if (ca === SLASH) return -1;
    if (cb === SLASH) return 1;
    return ca - cb;
  }
  // One path is a prefix of the other: the shorter comes first (an ancestor, or a shorter name).
  return a.length - b.length;
}

const SLASH = '/'.charCodeAt(0);

/** One path of a merge: each stream's entry there, or null where a stream has none. */
export interface MergedPath {
  path: string;
  entries: Array<ManifestEntry | null>;
}

/**
 * Merge manifests listed in walk order: yields every path any of them holds,
 * in that order, with each one's entry. A stream out of order is an error
 * (the comparison would report false differences), named by its label.
 * Stopping early (break, return) ends every stream.
 */
export async function* mergeManifests(streams: Array<AsyncIterable<ManifestEntry>>, labels: string[] = streams.map((_, i) => `manifest ${i}`)): AsyncGenerator<MergedPath> {
  const iterators = streams.map((s) => s[Symbol.asyncIterator]());
  const heads: Array<ManifestEntry | null> = [];
  const last: Array<string | null> = streams.map(() => null);
  /** Streams whose next entry is being waited for (a peer's: up to its bound). */
  const waiting = new Set<number>();
  const advance = async (i: number): Promise<void> => {
    waiting.add(i);
    const next = await iterators[i]!.next().finally(() => waiting.delete(i));
    const entry = next.done ? null : next.value;
    if (entry !== null) {
      const before = last[i] ?? null;
      if (before !== null && compareWalkOrder(before, entry.path) >= 0) {
        throw new Error(`${labels[i]}: manifest out of order (${JSON.stringify(entry.path)} after ${JSON.stringify(before)})`);
      }
      last[i] = entry.path;
    }
    heads[i] = entry;
  };
  try {
    await Promise.all(iterators.map((_, i) => advance(i)));
    for (;;) {
      let path: string | null = null;
      for (const h of heads) if (h !== null && (path === null || compareWalkOrder(h.path, path) < 0)) path = h.path;
      if (path === null) return;
      const entries = heads.map((h) => (h !== null && h.path === path ? h : null));
      yield { path, entries };
      await Promise.all(entries.map((e, i) => (e !== null ? advance(i) : undefined)));
    }
  } finally {
    // Ends the streams not read to the end (a peer's answer is cancelled, a walk stops). One still
    // being waited for (another failed meanwhile) ends once that wait does: not waited for here, so
    // the failure is reported now.
    const ending = iterators.map((it, i) => Promise.resolve(it.return?.()).catch(() => undefined).then(() => i));
    await Promise.all(ending.filter((_, i) => !waiting.has(i)));
  }
}
