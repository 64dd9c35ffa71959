import { repairActionSchema, type ManifestEntry, type RepairAction, type RepairActionInput, type WireStat } from '../protocol/ops.js';
import type { ApplyContext } from './context.js';
import { walkManifest } from './manifest.js';
import { mergeManifests } from './manifest-merge.js';
import { serveRead } from './reads.js';
import { applyRepair } from './repair.js';

/**
 * One copy of the tree as repair sees it (a peer over HTTP/2, the mount's
 * local copy, or a peer's own store): what verify compares and what resync
 * copies from and to.
 */
export interface CopyHandle {
  name: string;
  /** False once the copy may lack changes (a peer fell behind): it is then neither a source nor compared. */
  usable(): boolean;
  /**
   * Manifest of `path` and everything under it ('' = the whole tree, root excluded), read as it
   * comes, in walk order (manifest-merge.ts); `after`: only what comes after that path. There is
   * no way to read it whole: a subtree may hold millions of names.
   */
  entries(path: string, content: boolean, after?: string, signal?: AbortSignal): AsyncIterable<ManifestEntry>;
  stat(path: string): Promise<WireStat>;
  read(path: string, offset: number, length: number): Promise<Buffer>;
  /** Several whole small files in one round trip (contents in the order asked). */
  readMany(paths: string[]): Promise<Buffer[]>;
  apply(action: RepairActionInput, payload?: Buffer): Promise<void>;
}

/** A directory this process applies to itself (the mount's local copy, a peer's own store). */
export function storeCopy(name: string, ctx: ApplyContext, opts: { usable?: () => boolean; apply?: (action: RepairAction, payload: Buffer) => Promise<unknown> } = {}): CopyHandle {
  const apply = opts.apply ?? ((action: RepairAction, payload: Buffer) => applyRepair(ctx, action, payload));
  return {
    name,
    usable: opts.usable ?? (() => true),
    entries: (path, content, after) => walkManifest(ctx.tree.fsRoot, { path, content, after }),
    stat: async (path) => serveRead(ctx, { op: 'getattr', path }).result as WireStat,
    read: async (path, offset, length) => serveRead(ctx, { op: 'read', path, offset, length }).payload ?? Buffer.alloc(0),
    readMany: async (paths) => {
      const { result, payload } = serveRead(ctx, { op: 'read-many', paths });
      return splitContents(payload ?? Buffer.alloc(0), (result as { sizes: number[] }).sizes);
    },
    apply: async (action, payload) => {
      await apply(repairActionSchema.parse(action), payload ?? Buffer.alloc(0));
    },
  };
}

/**
 * Make one copy of a subtree equal to another (verify --repair, full resync,
 * reconciliation of changes in doubt). The source must not change meanwhile:
 * callers hold the mount's ordering claims on the path, or run before the
 * mount accepts changes.
 *
 * Order: remove on the target what the source lacks (or holds as another
 * type), create directories parents first, copy files whose size or content
 * hash differ (several at once), then link further names of hard-linked files,
 * then set modes deepest first (a read-only directory must be filled before it
 * becomes read-only). Every action sets state, so an interrupted repair is
 * finished by running it again.
 */

export interface RepairProgress {
  entries: number;
  filesCopied: number;
  bytesCopied: number;
  removed: number;
  totalEntries: number;
  totalBytes: number;
}

export interface RepairOptions {
  onProgress?: (p: RepairProgress) => void;
  /**
   * Flush once at the end instead of per file (a full resync, whose target is
   * not counted as a copy until it is verified): much faster for many small files.
   */
  flushAtEnd?: boolean;
  /** Files copied at once. */
  parallel?: number;
}

const CHUNK_BYTES = 4 * 1024 * 1024;
/** Files up to this size travel in one put-file request (under the 4 MiB frame payload limit). */
const WHOLE_FILE_BYTES = 1024 * 1024;
/**
 * Files up to this size are read from the source in batches (read-many): a
 * round trip per small file, not the disk, bounded a resync of many of them.
 */
const BATCH_FILE_BYTES = 64 * 1024;
const BATCH_MAX_FILES = 128;
const BATCH_MAX_BYTES = 1024 * 1024;
const DEFAULT_PARALLEL = 8;

export async function makeEqual(source: CopyHandle, target: CopyHandle, path: string, opts: RepairOptions = {}): Promise<RepairProgress> {
  const progress: RepairProgress = { entries: 0, filesCopied: 0, bytesCopied: 0, removed: 0, totalEntries: 0, totalBytes: 0 };
  const report = () => opts.onProgress?.(progress);
  // What there is to copy, for a progress bar's total: a walk without content hashes first.
  if (opts.onProgress) await countSource(source, path, progress);
  // Content hashes of the source only matter where the target has something to compare.
  const targetHolds = await holdsAny(target, path);

  // The two manifests are read side by side as they come (manifest-merge.ts): memory holds what
  // is in flight, the directories on the way to the current entry and the files with several
  // names, never a whole tree. In walk order a name's whole subtree follows it, so a removal
  // covers what comes next under it, and a directory is made before what goes in it.
  const pool = new Pool(opts.parallel ?? DEFAULT_PARALLEL);
  const flush = opts.flushAtEnd !== true;
  /** The directories of this pass from the top down to the current entry's parent, each ready once made. */
  const openDirs: Array<{ path: string; ready: Promise<void> }> = [];
  const parentReadyOf = (p: string): Promise<void> => {
    while (openDirs.length > 0 && !isUnder(p, openDirs.at(-1)!.path)) openDirs.pop();
    const top = openDirs.at(-1);
    return top && top.path === parentOf(p) ? top.ready : Promise.resolve();
  };
  /** Per inode number of a file with several names on the source: its first name, and the target's inode there. */
  const firstNameOfInode = new Map<number, { path: string; targetInode: number | undefined }>();
  /** Target names removed and created again in this pass (their old inode is gone). */
  const recreated = new Set<string>();
  const laterNames: Array<{ entry: ManifestEntry; first: string; firstTargetInode: number | undefined; d: ManifestEntry | undefined }> = [];
  const modes: ManifestEntry[] = [];
  const done = () => {
    progress.entries++;
    report();
  };
  // Small files to create or rewrite whole, read from the source together.
  let batch: Array<{ s: ManifestEntry; d: ManifestEntry | undefined; parentReady: Promise<void> }> = [];
  let batchBytes = 0;
  const submitBatch = async () => {
    if (batch.length === 0) return;
    const files = batch;
    const parentsReady = Promise.all([...new Set(files.map((f) => f.parentReady))]);
    batch = [];
    batchBytes = 0;
    await pool.run(async () => {
      await parentsReady;
      const contents = await source.readMany(files.map(({ s }) => s.path));
      for (const [i, { s, d }] of files.entries()) {
        await putWholeFile(target, s, d, contents[i]!, flush);
        progress.filesCopied++;
        progress.bytesCopied += contents[i]!.length;
        done();
      }
    });
  };
  /** The last subtree removed from the target: what follows under it there is gone. */
  let removedSubtree: string | null = null;
  let parentsEnsured = path === '';
  try {
    const merged = mergeManifests([source.entries(path, targetHolds), target.entries(path, true)], [source.name, target.name]);
    for await (const { path: name, entries: [src, dst] } of merged) {
      let d = dst ?? undefined;
      if (d && removedSubtree !== null && isUnder(name, removedSubtree)) d = undefined;
      // 1. Remove what is wrong on the target (topmost only: remove-tree takes the rest).
      if (d && (!src || src.type !== d.type || (src.type === 'symlink' && src.target !== d.target) || src.rdev !== d.rdev)) {
        await target.apply({ op: 'remove-tree', path: name });
        removedSubtree = name;
        progress.removed++;
        d = undefined;
      }
      if (!src) continue;
      const s = src;
      // 2. Create and fill, several entries at once; each waits only for its own directory.
      if (!parentsEnsured) {
        await ensureParents(source, target, path);
        parentsEnsured = true;
      }
      if (s.type === 'file' && s.inode !== undefined) {
        const first = firstNameOfInode.get(s.inode);
        if (first !== undefined) {
          laterNames.push({ entry: s, first: first.path, firstTargetInode: first.targetInode, d });
          continue;
        }
        firstNameOfInode.set(s.inode, { path: s.path, targetInode: d?.inode });
      }
      if (s.type === 'other') continue; // a type this side cannot make
      const parentReady = parentReadyOf(s.path);
      if (s.type === 'file' && s.size <= BATCH_FILE_BYTES && isPlainCopy(s, d)) {
        batch.push({ s, d, parentReady });
        batchBytes += s.size;
        if (batch.length >= BATCH_MAX_FILES || batchBytes >= BATCH_MAX_BYTES) await submitBatch();
        continue;
      }
      let finished!: () => void;
      if (s.type === 'dir') openDirs.push({ path: s.path, ready: new Promise<void>((r) => (finished = r)) });
      await pool.run(async () => {
        try {
          await parentReady;
          if (s.type === 'dir') {
            const mode = s.mode & 0o7777;
            // A directory its owner cannot write or enter gets its real mode last, once it is filled.
            const settable = (mode & 0o700) === 0o700;
            if (!d || d.uid !== s.uid || d.gid !== s.gid || (settable && (d.mode & 0o7777) !== mode)) {
              await target.apply({ op: 'put-dir', path: s.path, mode: settable ? mode : 0o700, uid: s.uid, gid: s.gid, flush });
            }
            await setAttributes(target, s, d ? { ...d, uid: s.uid, gid: s.gid } : { ...s, xattrs: {} });
            if (!settable && (!d || (d.mode & 0o7777) !== mode)) modes.push(s);
          } else if (s.type === 'symlink') {
            if (!d) await target.apply({ op: 'symlink', path: s.path, target: s.target! });
            await setAttributes(target, s, d); // a symlink's mode is not settable on Linux
          } else if (s.type !== 'file' && s.type !== 'other') {
            // A FIFO, socket or device node: made with its mode, owner and device number.
            if (!d) await target.apply({ op: 'mknod', path: s.path, kind: s.type, mode: s.mode & 0o7777, rdev: s.rdev ?? 0 });
            else if ((d.mode & 0o7777) !== (s.mode & 0o7777)) modes.push(s);
            // The source's owner exactly (a new node's group could be its directory's, set-group-ID), and its mtime.
            await setAttributes(target, s, d);
            if (!d || d.mtimeNs !== s.mtimeNs) await target.apply({ op: 'utimens', path: s.path, atimeNs: null, ...exactMtime(s) });
          } else {
            await copyFile(source, target, s, d, modes, progress, flush, recreated, opts.onProgress);
          }
          done();
        } finally {
          finished?.();
        }
      });
    }
    await submitBatch();
  } catch (err) {
    await pool.settle(); // nothing may still be writing when the caller hears of the failure
    throw err;
  }
  await pool.drain();
  for (const { entry, first, firstTargetInode, d } of laterNames) {
    // Already a further name of the same target file? (Inode numbers are only comparable within one copy.)
    if (d && d.inode !== undefined && !recreated.has(first) && firstTargetInode === d.inode) continue;
    if (d) await target.apply({ op: 'remove-tree', path: entry.path });
    await target.apply({ op: 'link', from: first, path: entry.path });
    progress.entries++;
  }

  // 3. Modes, deepest first.
  modes.sort((a, b) => depth(b.path) - depth(a.path));
  for (const s of modes) await target.apply({ op: 'chmod', path: s.path, mode: s.mode & 0o7777 });

  // The root's own attributes, when the whole tree is repaired.
  if (path === '') {
    const [rs, rd] = await Promise.all([source.stat(''), target.stat('')]);
    if (rs.uid !== rd.uid || rs.gid !== rd.gid) await target.apply({ op: 'chown', path: '', uid: rs.uid, gid: rs.gid });
    if ((rs.mode & 0o7777) !== (rd.mode & 0o7777)) await target.apply({ op: 'chmod', path: '', mode: rs.mode & 0o7777 });
  }
  if (!flush) await target.apply({ op: 'flush' });
  report();
  return progress;
}

/** The entries and file bytes below `path` on the source (a walk without content hashes): the totals progress is shown against. */
async function countSource(source: CopyHandle, path: string, progress: RepairProgress): Promise<void> {
  for await (const e of source.entries(path, false)) {
    progress.totalEntries++;
    if (e.type === 'file') progress.totalBytes += e.size;
  }
}

/** Whether the copy holds anything at `path` (its manifest's first entry answers it; the rest is not read). */
async function holdsAny(copy: CopyHandle, path: string): Promise<boolean> {
  for await (const _entry of copy.entries(path, false)) return true;
  return false;
}

/**
 * The directories above `path` on the target, as on the source: a repair of
 * one name may find its directory missing on the target (it was created by a
 * change the target never got, or renamed). Created owner-writable; a mode
 * that is not is left to a later repair of that directory itself.
 */
async function ensureParents(source: CopyHandle, target: CopyHandle, path: string): Promise<void> {
  const parts = path.split('/');
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    const there = await target.stat(dir).catch(() => null);
    if (there?.type === 'dir') continue;
    const want = await source.stat(dir);
    if (there) await target.apply({ op: 'remove-tree', path: dir });
    const mode = want.mode & 0o7777;
    await target.apply({ op: 'put-dir', path: dir, mode: (mode & 0o700) === 0o700 ? mode : 0o700, uid: want.uid, gid: want.gid });
  }
}

/** A file: whole in one put-file when small, else in chunks; then owner, xattrs, mode, mtime. */
async function copyFile(source: CopyHandle, target: CopyHandle, s: ManifestEntry, dst: ManifestEntry | undefined, modes: ManifestEntry[], progress: RepairProgress, flush: boolean, recreated: Set<string>, onProgress?: (p: RepairProgress) => void): Promise<void> {
  let d = dst;
  // A target name that shares its inode with another name must not be written in
  // place (the other name would change too), nor kept linked where the source is not.
  // (When both are linked, the content is written in place: every name of the inode takes it, as on the source.)
  if (d && d.inode !== undefined && s.inode === undefined) {
    await target.apply({ op: 'remove-tree', path: s.path });
    recreated.add(s.path);
    d = undefined;
  }
  const copied = !d || d.size !== s.size || d.sha256 !== s.sha256;
  if (copied && s.size <= WHOLE_FILE_BYTES) {
    const content = s.size === 0 ? Buffer.alloc(0) : await source.read(s.path, 0, s.size);
    await putWholeFile(target, s, d, content, flush);
  } else {
    if (copied) {
      await copyContent(source, target, s, flush, (bytes) => {
        // Progress as it goes: a large file must not look like a stall.
        progress.bytesCopied += bytes;
        onProgress?.(progress);
      });
    }
    await setAttributes(target, s, copied ? undefined : d);
    if (copied || !d || (d.mode & 0o7777) !== (s.mode & 0o7777)) modes.push(s);
    if (copied || !d || d.mtimeMs !== s.mtimeMs || d.mtimeNs !== s.mtimeNs) await target.apply({ op: 'utimens', path: s.path, atimeNs: null, ...exactMtime(s) });
  }
  if (copied) {
    progress.filesCopied++;
    if (s.size <= WHOLE_FILE_BYTES) progress.bytesCopied += s.size; // larger files counted chunk by chunk
  }
}

/**
 * True when a file is copied whole by put-file alone: its content differs (or
 * the target lacks it), and the target's name is not a further name of a
 * hard-linked file the source does not link (copyFile unlinks that first).
 */
function isPlainCopy(s: ManifestEntry, d: ManifestEntry | undefined): boolean {
  if (!d) return true;
  if (d.inode !== undefined && s.inode === undefined) return false;
  return d.size !== s.size || d.sha256 !== s.sha256;
}

/** One round trip: content, mode, owner and mtime together; then xattrs. */
async function putWholeFile(target: CopyHandle, s: ManifestEntry, d: ManifestEntry | undefined, content: Buffer, flush: boolean): Promise<void> {
  await target.apply({ op: 'put-file', path: s.path, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, mtimeMs: s.mtimeMs ?? Date.now(), ...(s.mtimeNs ? { mtimeNs: s.mtimeNs } : {}), flush }, content);
  await setAttributes(target, s, { ...s, xattrs: d?.xattrs ?? {} });
}

/** Split the contents of a read-many answer by the sizes it names. */
export function splitContents(payload: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    out.push(payload.subarray(at, at + size));
    at += size;
  }
  if (at !== payload.length) throw new Error(`read-many: ${payload.length} bytes of content for sizes totalling ${at}`);
  return out;
}

async function copyContent(source: CopyHandle, target: CopyHandle, s: ManifestEntry, flush: boolean, onChunk: (bytes: number) => void): Promise<void> {
  // Writable by its owner while it is filled (create sets the mode of an existing file too); the real mode comes last.
  await target.apply({ op: 'create', path: s.path, mode: 0o600, exclusive: false });
  await target.apply({ op: 'truncate', path: s.path, size: 0 });
  // The next chunk is read while this one is written: the two sides overlap.
  const readAt = (offset: number) => {
    const p = source.read(s.path, offset, Math.min(CHUNK_BYTES, s.size - offset));
    p.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    return p;
  };
  let next = readAt(0);
  for (let offset = 0; offset < s.size; offset += CHUNK_BYTES) {
    const chunk = await next;
    if (chunk.length === 0) break; // the source shrank: the verification afterwards reports it
    if (offset + CHUNK_BYTES < s.size) next = readAt(offset + CHUNK_BYTES);
    await target.apply({ op: 'put-range', path: s.path, offset, flush }, chunk);
    onChunk(chunk.length);
  }
}

/** Owner and xattrs (modes come last, deepest first). */
async function setAttributes(target: CopyHandle, s: ManifestEntry, d: ManifestEntry | undefined): Promise<void> {
  const want = s.xattrs ?? {};
  const have = d?.xattrs ?? {};
  for (const [name, value] of Object.entries(want)) {
    if (have[name] !== value) await target.apply({ op: 'setxattr', path: s.path, name, flags: 'any' }, Buffer.from(value, 'base64'));
  }
  for (const name of Object.keys(have)) if (!(name in want)) await target.apply({ op: 'removexattr', path: s.path, name });
  if (!d || d.uid !== s.uid || d.gid !== s.gid) await target.apply({ op: 'chown', path: s.path, uid: s.uid, gid: s.gid });
}

/** The source's mtime for a utimens: to the nanosecond where its manifest says it (peers of protocol 4), else in ms. */
function exactMtime(s: ManifestEntry): { mtimeNs: string } | { mtimeMs: number } {
  return s.mtimeNs ? { mtimeNs: s.mtimeNs } : { mtimeMs: s.mtimeMs ?? Date.now() };
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

function isUnder(path: string, ancestor: string): boolean {
  return ancestor === '' || path.startsWith(`${ancestor}/`);
}

function depth(path: string): number {
  return path === '' ? 0 : path.split('/').length;
}

/** At most `limit` tasks at once; the first failure is thrown by run() or drain(). */
class Pool {
  private running = new Set<Promise<void>>();
  private failure: unknown = null;

  constructor(private readonly limit: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.running.size >= this.limit) await Promise.race(this.running);
    if (this.failure) throw this.failure;
    const p: Promise<void> = task()
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.failure) throw this.failure;
  }

  /** Wait for every running task, whatever its outcome. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.running);
  }
}
