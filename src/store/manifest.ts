import { createHash } from 'node:crypto';
import { closeSync, createReadStream, constants, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fsPath, type FsPath } from '../protocol/byte-names.js';
import type { ManifestEntry } from '../protocol/ops.js';
import { entryType, listNames, readTarget, xattrNames, xattrValue } from './reads.js';
import { openNoSpecial } from './open-file.js';
import { compareWalkOrder } from './manifest-merge.js';

/**
 * A manifest of the tree for verification: every entry in path order with its
 * type, mode, owner, size, content hash (files), target (symlinks) and xattrs.
 * Generated lazily so a large tree streams instead of sitting in memory.
 * Order: depth-first, names sorted by UTF-16 code unit. With content=false the
 * hashes are left out (a cheap structural comparison).
 */
/**
 * Run one short piece of the walk while names cannot change (the peer's shared
 * namespace lock). Without one, the walk runs as it goes: fine where nothing
 * else changes the tree meanwhile (a local copy the mount alone writes).
 */
export type Hold = <T>(fn: () => T) => Promise<T>;

const NO_HOLD: Hold = (fn) => Promise.resolve(fn());

/** Entries described per hold: the lock is taken per batch, never for a whole tree (issue 22). */
const BATCH = 64;
/** Files opened per batch at most (to hash after the hold): a walk holds few descriptors. */
export const MAX_OPEN_PER_BATCH = 8;

/**
 * `after`: only the entries after this path in the walk's order (a comparison resumed where
 * it stopped): what comes before it is neither described nor hashed, and a directory above it
 * is walked into without being listed itself.
 */
export async function* walkManifest(root: string, opts: { content?: boolean; path?: string; hold?: Hold; after?: string } = {}): AsyncGenerator<ManifestEntry> {
  const content = opts.content ?? true;
  const path = opts.path ?? '';
  const hold = opts.hold ?? NO_HOLD;
  const after = opts.after ?? null;
  if (path === '') {
    yield* walk(root, '', content, hold, after);
    return;
  }
  if (after !== null) {
    // A subtree resumed: its entries after `after` (rare: no shortcut).
    for await (const e of walkManifest(root, { content, path, hold })) if (compareWalkOrder(e.path, after) > 0) yield e;
    return;
  }
  // One entry and, for a directory, everything under it. Nothing there: nothing yielded.
  const [entry] = await describeBatch(root, parentOf(path), [path], content, hold);
  if (!entry) return;
  yield entry;
  if (entry.type === 'dir') yield* walk(root, path, content, hold);
}

async function* walk(root: string, rel: string, content: boolean, hold: Hold, after: string | null = null): AsyncGenerator<ManifestEntry> {
  const abs = rel === '' ? root : fsPath(join(root, rel));
  // A directory is listed in one hold (its names, not their attributes).
  const names = await hold(() => (realDirectories(root, rel) ? listNames(abs, rel === '').sort() : []));
  let i = 0;
  if (after !== null) {
    // Names sorted: those whose whole subtree comes before `after` are skipped, the one that is
    // `after` or above it (if any) is walked into without being listed, and every name after
    // that comes after `after` too.
    for (; i < names.length; i++) {
      const name = rel === '' ? names[i]! : `${rel}/${names[i]!}`;
      if (name === after || after.startsWith(`${name}/`)) {
        i++;
        yield* walk(root, name, content, hold, after);
        break;
      }
      if (compareWalkOrder(name, after) > 0) break;
    }
  }
  while (i < names.length) {
    const rels = names.slice(i, i + BATCH).map((name) => (rel === '' ? name : `${rel}/${name}`));
    const entries = await describeBatch(root, rel, rels, content, hold);
    i += entries.length;
    for (const entry of entries) {
      if (!entry) continue; // removed while walking
      yield entry;
      if (entry.type === 'dir') yield* walk(root, entry.path, content, hold);
    }
  }
}

/**
 * Describe entries of one directory: their metadata under one hold, their
 * contents hashed after it, from descriptors opened under it (a rename
 * meanwhile cannot make a hash read another file, and waits for no hash).
 * Stops after MAX_OPEN_PER_BATCH opened files: the answer may describe fewer
 * entries than asked (the first ones), never none.
 */
async function describeBatch(root: string, dirRel: string, rels: string[], content: boolean, hold: Hold): Promise<Array<ManifestEntry | null>> {
  const described = await hold(() => {
    // Between holds a directory on the way may have been replaced (by a symlink, say): its
    // entries are then not read through it (the tree that moved is walked where it is now).
    if (!realDirectories(root, dirRel)) return rels.map(() => null);
    const out: Array<{ entry: ManifestEntry; fd: number | null } | null> = [];
    let opened = 0;
    try {
      for (const rel of rels) {
        const d = describeEntry(root, rel, content);
        out.push(d);
        if (d?.fd !== null && d?.fd !== undefined && ++opened >= MAX_OPEN_PER_BATCH) break;
      }
    } catch (err) {
      for (const d of out) if (d?.fd !== null && d?.fd !== undefined) closeSync(d.fd);
      throw err;
    }
    return out;
  });
  try {
    for (const d of described) {
      if (d?.fd === null || d?.fd === undefined) continue;
      const fd = d.fd;
      d.fd = null;
      d.entry.sha256 = await hashFd(fd, d.entry.size);
    }
  } finally {
    for (const d of described) if (d?.fd !== null && d?.fd !== undefined) closeSync(d.fd);
  }
  return described.map((d) => d?.entry ?? null);
}

/** Every directory from the root down to `rel` is a directory, not a symlink to one. */
function realDirectories(root: string, rel: string): boolean {
  if (rel === '') return true;
  const parts = rel.split('/');
  for (let i = 1; i <= parts.length; i++) {
    try {
      if (!lstatSync(fsPath(join(root, parts.slice(0, i).join('/')))).isDirectory()) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** An entry's metadata, and for a regular file whose content is asked for, a descriptor to hash it from (the caller closes it). */
function describeEntry(root: string, rel: string, content: boolean): { entry: ManifestEntry; fd: number | null } | null {
  const abs = fsPath(join(root, rel));
  let st;
  try {
    st = lstatSync(abs, { bigint: true }); // the only stat that holds nanoseconds
  } catch {
    return null;
  }
  const size = Number(st.size);
  const entry: ManifestEntry = {
    path: rel,
    type: entryType(st),
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: st.isDirectory() ? 0 : size,
    mtimeMs: Number(st.mtimeNs / 1_000_000n),
    mtimeNs: st.mtimeNs.toString(),
  };
  if (st.isFile() && st.nlink > 1n) entry.inode = Number(st.ino);
  if (st.isSymbolicLink()) entry.target = readTarget(abs);
  if (st.isCharacterDevice() || st.isBlockDevice()) entry.rdev = Number(st.rdev);
  const xnames = xattrNames(abs, st).sort();
  if (xnames.length > 0) {
    entry.xattrs = {};
    for (const x of xnames) entry.xattrs[x] = xattrValue(abs, x).toString('base64');
  }
  const fd = content && st.isFile() ? openNoSpecial(abs, constants.O_RDONLY | constants.O_NOFOLLOW) : null;
  return { entry, fd };
}

/** Files up to this size are hashed with one synchronous read (a stream per small file costs more than the read). */
const SMALL_FILE_BYTES = 256 * 1024;

/** The SHA-256 of what an open file holds; the descriptor is closed once read. */
function hashFd(fd: number, size: number): Promise<string> {
  if (size <= SMALL_FILE_BYTES) {
    try {
      return Promise.resolve(createHash('sha256').update(readFileSync(fd)).digest('hex'));
    } finally {
      closeSync(fd);
    }
  }
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream('', { fd, highWaterMark: 1024 * 1024 })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
