import { createHash } from 'node:crypto';
import type { ManifestEntry } from '../../protocol/ops.js';
import { entryKey } from '../recovery/consistency.js';
import { localCopyHandle, peerCopy } from '../peers/copies.js';
import type { CopyHandle } from '../../store/copy-tree.js';
import type { MirrorController } from '../fanout/mirror.js';
import { makeEqual } from '../../store/copy-tree.js';
import { mergeManifests } from '../../store/manifest-merge.js';

export interface VerifyOptions {
  repair: boolean;
  /** With repair: the copy every other is made equal to (a peer name, or "local"). Default: the majority. */
  source?: string;
  /** False: compare names, types, sizes, modes, owners, times and links, not content hashes (a quicker look; `--metadata-only`). */
  content?: boolean;
  /** Resume: compare only what comes after this path in the walk's order (`--from`, from an interrupted verify's progress). */
  from?: string;
  /** Told as the comparison goes (often: the caller throttles). */
  onProgress?: (p: VerifyProgress) => void;
  /** Stops the comparison (its requester went away): it throws VerifyInterrupted. */
  signal?: AbortSignal;
}

/** How far a verify has come. */
export interface VerifyProgress {
  phase: 'comparing' | 'checking';
  entries: number;
  /** File bytes compared (of the first copy's entries). */
  bytes: number;
  /**
   * Where a verify stopped now resumes (`--from`): everything up to it in the walk's order has
   * been compared, and every difference there checked (and repaired, if asked). Null: nothing yet.
   */
  at: string | null;
  differences: number;
  /** What there is to compare (a walk of the first copy without hashes, beside the comparison): null until known, or without content hashes. */
  totalEntries: number | null;
  totalBytes: number | null;
}

/** A verify stopped by its requester; `at` is where a later one resumes (`--from`). */
export class VerifyInterrupted extends Error {
  constructor(readonly at: string | null) {
    super(at === null ? 'verify interrupted before it compared anything' : `verify interrupted after ${JSON.stringify(at)}`);
  }
}

export interface VerifyDifference {
  path: string;
  /** Per copy: what it holds there ("absent", or type/mode/owner/size/hash). */
  copies: Record<string, string>;
  repairedFrom?: string;
  /** Why a difference was left as it is. */
  unresolved?: string;
}

export interface VerifyReport {
  copies: string[];
  skipped: string[];
  entries: number;
  differences: VerifyDifference[];
  repaired: number;
  unresolved: number;
  seconds: number;
  /** Where it started (a resumed verify): only what comes after it was compared. */
  from?: string;
}

/**
 * `mirrorfs verify`: compare every in-sync peer and the local copy by content
 * hash and metadata while the mount stays usable. Manifests are taken without
 * stopping changes, so each candidate difference is checked again while
 * holding the mount's ordering claim on its path (changes to it wait), and
 * only a difference that is still there is reported and, with repair, fixed
 * by making every other copy equal to the source (--source, else the
 * majority; a tie is left unresolved and says so).
 */
export async function verifyCopies(controller: MirrorController, opts: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const { mountId, epoch } = controller.identity;
  const handles: CopyHandle[] = controller.members.filter((m) => m.inStep).map((m) => peerCopy(m, mountId, epoch));
  const skipped = controller.members.filter((m) => !m.inStep).map((m) => `${m.name} (not in sync: ${m.behindReason})`);
  const local = controller.localCopy;
  if (local?.active) handles.push(localCopyHandle(local));
  else if (local) skipped.push(`local copy (disabled: ${local.reason})`);
  if (opts.source !== undefined && !handles.some((h) => h.name === sourceName(opts.source!))) {
    throw new Error(`--source ${opts.source}: not one of the copies being verified (${handles.map((h) => h.name).join(', ')})`);
  }
  const report: VerifyReport = { copies: handles.map((h) => h.name), skipped, entries: 0, differences: [], repaired: 0, unresolved: 0, seconds: 0, ...(opts.from !== undefined ? { from: opts.from } : {}) };
  if (handles.length < 2) throw new Error(`fewer than two copies to compare (${[...report.copies, ...skipped].join('; ')})`);

  const progress: VerifyProgress = { phase: 'comparing', entries: 0, bytes: 0, at: opts.from ?? null, differences: 0, totalEntries: null, totalBytes: null };
  const record = (diff: VerifyDifference | null): void => {
    if (!diff) return;
    report.differences.push(diff);
    if (diff.repairedFrom) report.repaired++;
    if (diff.unresolved) report.unresolved++;
  };
  // The root's own attributes first, in every run (a resumed one too): one stat per copy.
  if (await rootDiffers(handles)) record(await controller.withClaims([''], () => checkAndRepair(handles, '', opts)));
  const { candidates, entries, lastWalked } = await candidatePaths(handles, opts, progress);
  report.entries = entries;
  progress.phase = 'checking';
  const done: string[] = [];
  for (const { path, before } of candidates) {
    progress.at = before; // this one is not checked yet: a resume starts just before it
    if (opts.signal?.aborted) throw new VerifyInterrupted(progress.at);
    opts.onProgress?.(progress);
    if (done.some((d) => path.startsWith(`${d}/`))) continue; // inside a subtree already repaired
    const diff = await controller.withClaims([path], () => checkAndRepair(handles, path, opts));
    record(diff);
    if (diff?.repairedFrom) done.push(path);
  }
  progress.at = lastWalked;
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

function sourceName(source: string): string {
  return source === 'local' ? 'local copy' : source;
}

/**
 * Paths where the copies' manifests disagree (an entry missing from one, or different), in walk
 * order (a directory before what is under it), and the most entries one copy holds. The
 * manifests are compared as they stream in: memory holds the differences, not the trees.
 */
async function candidatePaths(handles: CopyHandle[], opts: VerifyOptions, progress: VerifyProgress): Promise<{ candidates: Array<{ path: string; before: string | null }>; entries: number; lastWalked: string | null }> {
  const content = opts.content !== false;
  /** Each with the path walked just before it: where a verify stopped before checking it resumes. */
  const candidates: Array<{ path: string; before: string | null }> = [];
  let lastWalked = progress.at;
  const counts = handles.map(() => 0);
  // With content hashes the comparison takes long enough to want a total: counted beside it, without hashes.
  const countDone = new AbortController();
  const counting = content ? countEntries(handles[0]!, opts.from, progress, countDone.signal) : Promise.resolve();
  try {
    for await (const { path, entries } of mergeManifests(handles.map((h) => h.entries('', content, opts.from, opts.signal)), handles.map((h) => h.name))) {
      if (opts.signal?.aborted) throw new VerifyInterrupted(progress.at);
      const keys = entries.map((e, i) => {
        if (e === null) return 'absent';
        counts[i]!++;
        return entryKey(e);
      });
      if (keys.some((k) => k !== keys[0])) {
        candidates.push({ path, before: lastWalked });
        progress.differences++;
      }
      const first = entries.find((e) => e !== null);
      progress.entries++;
      if (first?.type === 'file') progress.bytes += first.size;
      lastWalked = path;
      // Differences are checked once the walk is done: a resume point does not pass the first unchecked one.
      if (candidates.length === 0) progress.at = path;
      opts.onProgress?.(progress);
    }
  } catch (err) {
    // Stopped while a peer's manifest was being waited for: its read was cut short on purpose.
    if (opts.signal?.aborted) throw new VerifyInterrupted(progress.at);
    throw err;
  } finally {
    countDone.abort(); // its stream is cancelled, not waited for to the end
    await counting;
  }
  return { candidates, entries: Math.max(...counts), lastWalked };
}

/** The entries and file bytes of one copy (no hashes), for progress totals; stops once the comparison is over. A failure only leaves the totals unknown. */
async function countEntries(copy: CopyHandle, from: string | undefined, progress: VerifyProgress, over: AbortSignal): Promise<void> {
  let entries = 0;
  let bytes = 0;
  try {
    for await (const e of copy.entries('', false, from, over)) {
      if (over.aborted) return;
      entries++;
      if (e.type === 'file') bytes += e.size;
    }
    progress.totalEntries = entries;
    progress.totalBytes = bytes;
  } catch {
    // Totals stay unknown: the comparison itself reports its own failures.
  }
}

async function rootDiffers(handles: CopyHandle[]): Promise<boolean> {
  const roots = await Promise.all(handles.map((h) => h.stat('')));
  return new Set(roots.map((r) => `${r.mode & 0o7777}:${r.uid}:${r.gid}`)).size > 1;
}

/** Under the path's claim: is the difference still there? Then describe it and, if asked, repair it. */
async function checkAndRepair(all: CopyHandle[], path: string, opts: VerifyOptions): Promise<VerifyDifference | null> {
  // A copy that fell behind since the start is left to catch-up (copying to it now
  // would race the changes journaled for it).
  const handles = all.filter((h) => h.usable());
  if (handles.length < 2) return null;
  const subtrees = await Promise.all(
    handles.map(async (h) => {
      // A digest of the subtree, read as it comes: below a directory that differs there may be
      // millions of names, which must not be held at once (issue 23: flat memory).
      const digest = createHash('sha256');
      let top: ManifestEntry | undefined;
      if (path === '') {
        // The root's own attributes only: what is below it was compared path by path, and is checked (and repaired) as such.
        const root = await h.stat('');
        digest.update(`${root.mode & 0o7777}:${root.uid}:${root.gid}`);
      } else {
        for await (const e of h.entries(path, opts.content !== false)) {
          if (e.path === path) top = e;
          digest.update(JSON.stringify([entryKey(e), e.path]) + '\n');
        }
      }
      return { top, signature: digest.digest('hex') };
    }),
  );
  if (new Set(subtrees.map((s) => s.signature)).size === 1) return null; // it was a change in flight
  const diff: VerifyDifference = { path, copies: {} };
  handles.forEach((h, i) => {
    const top = subtrees[i]!.top;
    diff.copies[h.name] = path === '' ? 'tree root' : top ? describeEntry(top) : 'absent';
  });
  if (!opts.repair) return diff;
  let source: CopyHandle | undefined;
  if (opts.source !== undefined) {
    source = handles.find((h) => h.name === sourceName(opts.source!));
    if (!source) {
      diff.unresolved = `--source ${opts.source} is not in sync any more`;
      return diff;
    }
  } else {
    const votes = new Map<string, number>();
    for (const s of subtrees) votes.set(s.signature, (votes.get(s.signature) ?? 0) + 1);
    const ranked = [...votes].sort((a, b) => b[1] - a[1]);
    if (ranked.length > 1 && ranked[0]![1] === ranked[1]![1]) {
      diff.unresolved = `the copies are split evenly; run verify --repair --source NAME to choose the copy to keep`;
      return diff;
    }
    source = handles[subtrees.findIndex((s) => s.signature === ranked[0]![0])];
  }
  for (const [i, h] of handles.entries()) {
    if (h === source || subtrees[i]!.signature === subtrees[handles.indexOf(source!)]!.signature) continue;
    if (path === '') await repairRoot(source!, h);
    else await makeEqual(source!, h, path);
  }
  diff.repairedFrom = source!.name;
  return diff;
}

/** The tree root's own owner and mode, as the source's (the root is never removed or copied whole). */
async function repairRoot(source: CopyHandle, target: CopyHandle): Promise<void> {
  const [rs, rt] = await Promise.all([source.stat(''), target.stat('')]);
  if (rs.uid !== rt.uid || rs.gid !== rt.gid) await target.apply({ op: 'chown', path: '', uid: rs.uid, gid: rs.gid });
  if ((rs.mode & 0o7777) !== (rt.mode & 0o7777)) await target.apply({ op: 'chmod', path: '', mode: rs.mode & 0o7777 });
}

function describeEntry(e: ManifestEntry): string {
  const parts = [e.type, (e.mode & 0o7777).toString(8), `${e.uid}:${e.gid}`];
  if (e.type === 'file') parts.push(`${e.size} B`, `sha256 ${e.sha256?.slice(0, 12)}`);
  if (e.type === 'symlink') parts.push(`-> ${e.target}`);
  if (e.rdev !== undefined) parts.push(`device ${e.rdev}`);
  if (e.xattrs) parts.push(`xattrs ${Object.keys(e.xattrs).join(',')}`);
  return parts.join(' ');
}
