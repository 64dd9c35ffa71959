import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { getAttributeSync } from 'fs-xattr';
import { fsPath, hasLoneSurrogate, wireFromBytes } from '../../src/protocol/byte-names.js';
import { getXattr, listXattrs } from '../../src/store/posix.js';

/**
 * Snapshot and compare directory trees: the check behind promise 2 ("exact
 * copies"). Compares names, types (special files too), permission bits,
 * owners, sizes, contents (SHA-256), symlink targets, device numbers and user
 * xattrs; ignores times and inode numbers.
 */

export interface EntrySnapshot {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';
  mode: number;
  owner: string;
  size: number;
  rdev?: number;
  sha256?: string;
  target?: string;
  xattrs?: Record<string, string>;
}

export type TreeSnapshot = Map<string, EntrySnapshot>;

/** Names skipped at a tree's root: a peer's own state directory. */
const SKIP_AT_ROOT = new Set(['.mirrorfs']);

export function snapshotTree(root: string): TreeSnapshot {
  const out: TreeSnapshot = new Map();
  const st = lstatSync(root);
  out.set('', { type: 'dir', mode: st.mode & 0o7777, owner: `${st.uid}:${st.gid}`, size: 0 }); // the root's own mode and owner are mirrored too
  walk(root, '', out);
  return out;
}

/**
 * Names are bytes: each directory is read as bytes and keyed by the name's wire
 * form (src/protocol/byte-names.ts), so names that are not UTF-8 are compared
 * as themselves, not as U+FFFD.
 */
function walk(root: string, rel: string, out: TreeSnapshot): void {
  const abs = rel ? fsPath(join(root, rel)) : root;
  for (const raw of readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare)) {
    const name = wireFromBytes(raw);
    if (!rel && SKIP_AT_ROOT.has(name)) continue;
    const childRel = rel ? `${rel}/${name}` : name;
    const childAbs = fsPath(join(root, childRel));
    const st = lstatSync(childAbs);
    const entry: EntrySnapshot = {
      type: typeOf(st),
      mode: st.mode & 0o7777,
      owner: `${st.uid}:${st.gid}`,
      size: st.isDirectory() ? 0 : st.size,
    };
    if (st.isCharacterDevice() || st.isBlockDevice()) entry.rdev = st.rdev;
    if (st.isFile()) entry.sha256 = createHash('sha256').update(readFileSync(childAbs)).digest('hex');
    if (st.isSymbolicLink()) entry.target = wireFromBytes(readlinkSync(childAbs, { encoding: 'buffer' }));
    if (!st.isSymbolicLink()) entry.xattrs = userXattrs(childAbs);
    if (entry.xattrs === undefined) delete entry.xattrs;
    out.set(childRel, entry);
    if (st.isDirectory()) walk(root, childRel, out);
  }
}

/**
 * user.* xattrs, values base64. Listed with the posix addon's llistxattr (names as
 * bytes); values read with fs-xattr where path and name are text, else the addon.
 */
function userXattrs(abs: string | Buffer): Record<string, string> | undefined {
  const names = listXattrs(abs).map(wireFromBytes);
  const user = names.filter((n) => n.startsWith('user.')).sort();
  if (!user.length) return undefined;
  return Object.fromEntries(user.map((n) => [n, (typeof abs === 'string' && !hasLoneSurrogate(n) ? getAttributeSync(abs, n) : getXattr(abs, fsPath(n))).toString('base64')]));
}

function typeOf(st: Stats): EntrySnapshot['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return st.isCharacterDevice() ? 'char' : 'block';
}

/** Human-readable differences between two snapshots (empty when equal). */
export function diffTrees(a: TreeSnapshot, b: TreeSnapshot, labels: [string, string] = ['a', 'b']): string[] {
  const diffs: string[] = [];
  for (const [path, ea] of a) {
    const eb = b.get(path);
    if (!eb) {
      diffs.push(`${path}: only in ${labels[0]}`);
      continue;
    }
    const ja = JSON.stringify(ea);
    const jb = JSON.stringify(eb);
    if (ja !== jb) diffs.push(`${path}: ${labels[0]} ${ja} != ${labels[1]} ${jb}`);
  }
  for (const path of b.keys()) if (!a.has(path)) diffs.push(`${path}: only in ${labels[1]}`);
  return diffs;
}

/** Compare several directories against the first; returns all differences. */
export function compareDirs(dirs: { label: string; dir: string }[]): string[] {
  const [first, ...rest] = dirs;
  if (!first) return [];
  const base = snapshotTree(first.dir);
  return rest.flatMap((d) => diffTrees(base, snapshotTree(d.dir), [first.label, d.label]));
}
