import { createHash } from 'node:crypto';
import { createReadStream, constants, lstatSync, openSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { getAttributeSync } from 'fs-xattr';
import type { ManifestEntry } from '../protocol/ops.js';
import { entryType, listNames, xattrNames } from './reads.js';

/**
 * A manifest of the tree for verification: every entry in path order with its
 * type, mode, owner, size, content hash (files), target (symlinks) and xattrs.
 * Generated lazily so a large tree streams instead of sitting in memory.
 * Order: depth-first, names sorted by UTF-16 code unit. With content=false the
 * hashes are left out (a cheap structural comparison).
 */
export async function* walkManifest(root: string, opts: { content?: boolean } = {}): AsyncGenerator<ManifestEntry> {
  yield* walk(root, '', opts.content ?? true);
}

async function* walk(root: string, rel: string, content: boolean): AsyncGenerator<ManifestEntry> {
  const abs = rel === '' ? root : join(root, rel);
  const names = listNames(abs, rel === '').sort();
  for (const name of names) {
    const childRel = rel === '' ? name : `${rel}/${name}`;
    const childAbs = join(abs, name);
    let st;
    try {
      st = lstatSync(childAbs);
    } catch {
      continue; // removed while walking
    }
    const entry: ManifestEntry = {
      path: childRel,
      type: entryType(st),
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      size: st.isDirectory() ? 0 : st.size,
    };
    if (content && st.isFile()) entry.sha256 = await hashFile(childAbs);
    if (st.isFile() && st.nlink > 1) entry.inode = st.ino;
    if (st.isSymbolicLink()) entry.target = readlinkSync(childAbs);
    const xnames = xattrNames(childAbs, st).sort();
    if (xnames.length > 0) {
      entry.xattrs = {};
      for (const x of xnames) entry.xattrs[x] = getAttributeSync(childAbs, x).toString('base64');
    }
    yield entry;
    if (st.isDirectory()) yield* walk(root, childRel, content);
  }
}

function hashFile(abs: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream('', { fd: openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW), highWaterMark: 1024 * 1024 })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
