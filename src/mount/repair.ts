import type { ManifestEntry } from '../protocol/ops.js';
import type { CopyHandle } from './copies.js';

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
  /** Files copied at once. */
  parallel?: number;
}

const CHUNK_BYTES = 4 * 1024 * 1024;
const DEFAULT_PARALLEL = 4;

export async function makeEqual(source: CopyHandle, target: CopyHandle, path: string, opts: RepairOptions = {}): Promise<RepairProgress> {
  const [src, dst] = await Promise.all([source.manifest(path, true), target.manifest(path, true)]);
  const progress: RepairProgress = { entries: 0, filesCopied: 0, bytesCopied: 0, removed: 0, totalEntries: src.length, totalBytes: src.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0) };
  const report = () => opts.onProgress?.(progress);
  const srcByPath = new Map(src.map((e) => [e.path, e]));
  const dstByPath = new Map(dst.map((e) => [e.path, e]));

  // 1. Remove what is wrong on the target (topmost only: remove-tree takes the rest).
  const removed: string[] = [];
  for (const d of dst) {
    if (removed.some((r) => isUnder(d.path, r))) {
      dstByPath.delete(d.path);
      continue;
    }
    const s = srcByPath.get(d.path);
    if (!s || s.type !== d.type || (s.type === 'symlink' && s.target !== d.target)) {
      await target.apply({ op: 'remove-tree', path: d.path });
      removed.push(d.path);
      dstByPath.delete(d.path);
      progress.removed++;
    }
  }

  // 2. Create and fill, parents first; file contents several at once.
  const pool = new Pool(opts.parallel ?? DEFAULT_PARALLEL);
  const firstNameOfInode = new Map<number, string>();
  const laterNames: Array<{ entry: ManifestEntry; first: string }> = [];
  const modes: ManifestEntry[] = [];
  for (const s of src) {
    const d = dstByPath.get(s.path);
    if (s.type === 'file' && s.inode !== undefined) {
      const first = firstNameOfInode.get(s.inode);
      if (first !== undefined) {
        laterNames.push({ entry: s, first });
        continue;
      }
      firstNameOfInode.set(s.inode, s.path);
    }
    if (s.type === 'dir') {
      if (!d) await target.apply({ op: 'mkdir', path: s.path, mode: 0o700 });
      await setAttributes(target, s, d);
    } else if (s.type === 'symlink') {
      if (!d) await target.apply({ op: 'symlink', path: s.path, target: s.target! });
      await setAttributes(target, s, d);
    } else if (s.type === 'file') {
      await pool.run(async () => {
        const copied = !d || d.size !== s.size || d.sha256 !== s.sha256;
        if (copied) {
          await copyContent(source, target, s);
          progress.filesCopied++;
          progress.bytesCopied += s.size;
        }
        await setAttributes(target, s, d);
        if (copied || (d.mode & 0o7777) !== (s.mode & 0o7777)) modes.push(s);
        if (!d || d.mtimeMs !== s.mtimeMs) await target.apply({ op: 'utimens', path: s.path, atimeMs: null, mtimeMs: s.mtimeMs ?? Date.now() });
        progress.entries++;
        report();
      });
      continue;
    } else {
      continue; // special files are never created through the mount
    }
    if (s.type !== 'symlink' && (!d || (d.mode & 0o7777) !== (s.mode & 0o7777))) modes.push(s);
    progress.entries++;
    report();
  }
  await pool.drain();
  for (const { entry, first } of laterNames) {
    const d = dstByPath.get(entry.path);
    // Compared by content only: inode numbers are not comparable across copies.
    if (d && d.sha256 === entry.sha256 && d.inode !== undefined) continue;
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
  report();
  return progress;
}

async function copyContent(source: CopyHandle, target: CopyHandle, s: ManifestEntry): Promise<void> {
  // Writable by its owner while it is filled (create sets the mode of an existing file too); the real mode comes last.
  await target.apply({ op: 'create', path: s.path, mode: 0o600, exclusive: false });
  await target.apply({ op: 'truncate', path: s.path, size: 0 });
  for (let offset = 0; offset < s.size; offset += CHUNK_BYTES) {
    const chunk = await source.read(s.path, offset, Math.min(CHUNK_BYTES, s.size - offset));
    if (chunk.length === 0) break; // the source shrank: the verification afterwards reports it
    await target.apply({ op: 'write', path: s.path, offset }, chunk);
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
}
