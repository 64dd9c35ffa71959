import { createHash } from 'node:crypto';
import { closeSync, createReadStream, constants, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fsPath, type FsPath } from '../protocol/byte-names.js';
import type { ManifestEntry } from '../protocol/ops.js';
import { entryType, listNames, readTarget, xattrNames, xattrValue } from './reads.js';
import { openNoSpecial } from './open-file.js';

/**
 * A manifest of the tree for verification: every entry in path order with its
 * type, mode, owner, size, content hash (files), target (symlinks) and xattrs.
 * Generated lazily so a large tree streams instead of sitting in memory.
 * Order: depth-first, names sorted by UTF-16 code unit. With content=false the
 * hashes are left out (a cheap structural comparison).
 */
export async function* walkManifest(root: string, opts: { content?: boolean; path?: string } = {}): AsyncGenerator<ManifestEntry> {
  const content = opts.content ?? true;
  const path = opts.path ?? '';
  if (path === '') {
    yield* walk(root, '', content);
    return;
  }
  // One entry and, for a directory, everything under it. Nothing there: nothing yielded.
  const entry = await describeEntry(root, path, content);
  if (!entry) return;
  yield entry;
  if (entry.type === 'dir') yield* walk(root, path, content);
}

async function* walk(root: string, rel: string, content: boolean): AsyncGenerator<ManifestEntry> {
  const abs = rel === '' ? root : fsPath(join(root, rel));
  const names = listNames(abs, rel === '').sort();
  for (const name of names) {
    const childRel = rel === '' ? name : `${rel}/${name}`;
    const entry = await describeEntry(root, childRel, content);
    if (!entry) continue; // removed while walking
    yield entry;
    if (entry.type === 'dir') yield* walk(root, childRel, content);
  }
}

async function describeEntry(root: string, rel: string, content: boolean): Promise<ManifestEntry | null> {
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
  if (content && st.isFile()) entry.sha256 = await hashFile(abs, size);
  if (st.isFile() && st.nlink > 1n) entry.inode = Number(st.ino);
  if (st.isSymbolicLink()) entry.target = readTarget(abs);
  if (st.isCharacterDevice() || st.isBlockDevice()) entry.rdev = Number(st.rdev);
  const xnames = xattrNames(abs, st).sort();
  if (xnames.length > 0) {
    entry.xattrs = {};
    for (const x of xnames) entry.xattrs[x] = xattrValue(abs, x).toString('base64');
  }
  return entry;
}

/** Files up to this size are hashed with one synchronous read (a stream per small file costs more than the read). */
const SMALL_FILE_BYTES = 256 * 1024;

function hashFile(abs: FsPath, size: number): Promise<string> {
  const fd = openNoSpecial(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
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
