import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { getAttributeSync, listAttributesSync } from 'fs-xattr';

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

function walk(root: string, rel: string, out: TreeSnapshot): void {
  const abs = rel ? join(root, rel) : root;
  for (const name of readdirSync(abs).sort()) {
    if (!rel && SKIP_AT_ROOT.has(name)) continue;
    const childRel = rel ? `${rel}/${name}` : name;
    const childAbs = join(abs, name);
    const st = lstatSync(childAbs);
    const entry: EntrySnapshot = {
      type: typeOf(st),
      mode: st.mode & 0o7777,
      owner: `${st.uid}:${st.gid}`,
      size: st.isDirectory() ? 0 : st.size,
    };
    if (st.isCharacterDevice() || st.isBlockDevice()) entry.rdev = st.rdev;
    if (st.isFile()) entry.sha256 = createHash('sha256').update(readFileSync(childAbs)).digest('hex');
    if (st.isSymbolicLink()) entry.target = readlinkSync(childAbs);
    if (!st.isSymbolicLink()) {
      const names = listAttributesSync(childAbs).filter((n) => n.startsWith('user.')).sort();
      if (names.length) entry.xattrs = Object.fromEntries(names.map((n) => [n, getAttributeSync(childAbs, n).toString('base64')]));
    }
    out.set(childRel, entry);
    if (st.isDirectory()) walk(root, childRel, out);
  }
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
