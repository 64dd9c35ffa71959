import type { Logger } from '../../log.js';
import type { ManifestEntry, WireStat } from '../../protocol/ops.js';
import { clientCopy } from '../../client/remote-copy.js';
import { makeEqual } from '../../store/copy-tree.js';
import { walkManifest } from '../../store/manifest.js';
import { localCopyHandle } from '../peers/copies.js';
import type { LocalCopy } from '../peers/local-copy.js';
import type { Member } from '../peers/member.js';
import { Refusal } from '../../refusal.js';

/**
 * Mount-time checks that every copy holds the same tree. The comparison is
 * structural (names, types, modes, owners, sizes, symlink targets, xattrs),
 * not by content hash, so it stays quick on large trees; `mirrorfs verify`
 * compares contents. It runs after recovery (recovery.ts), so copies that
 * still differ cannot be reconciled automatically: the mount is refused and
 * the message names `--resync-from`.
 */

/** Up to `limit` human-readable differences between two manifests. */
export function diffManifests(a: ManifestEntry[], b: ManifestEntry[], labels: [string, string], limit = 10): string[] {
  const diffs: string[] = [];
  const mb = new Map(b.map((e) => [e.path, e]));
  const ma = new Map(a.map((e) => [e.path, e]));
  for (const ea of a) {
    if (diffs.length >= limit) return diffs;
    const eb = mb.get(ea.path);
    if (!eb) diffs.push(`${ea.path}: only on ${labels[0]}`);
    else if (key(ea) !== key(eb)) diffs.push(`${ea.path}: ${labels[0]} ${key(ea)} vs ${labels[1]} ${key(eb)}`);
  }
  for (const eb of b) {
    if (diffs.length >= limit) return diffs;
    if (!ma.has(eb.path)) diffs.push(`${eb.path}: only on ${labels[1]}`);
  }
  return diffs;
}

/** What two copies of an entry must agree on (times and inode numbers excluded). */
export function entryKey(e: ManifestEntry): string {
  return key(e);
}

function key(e: ManifestEntry): string {
  const size = e.type === 'dir' ? 0 : e.size;
  return JSON.stringify([e.type, (e.mode & 0o7777).toString(8), e.uid, e.gid, size, e.target ?? null, e.xattrs ?? null, e.sha256 ?? null, e.rdev ?? null]);
}

/**
 * Fetch every peer's manifest and refuse when any differs from the first.
 * With content, file hashes are compared too (used when the peers' progress
 * differs: one missed changes, and only equal contents prove it was repaired).
 * Returns the common manifest.
 */
export async function checkPeersAgree(members: Member[], opts: { content: boolean }): Promise<ManifestEntry[]> {
  const manifests = await Promise.all(members.map((m) => m.client.manifest({ content: opts.content })));
  const [first, ...rest] = manifests;
  for (let i = 0; i < rest.length; i++) {
    const diffs = diffManifests(first!, rest[i]!, [members[0]!.name, members[i + 1]!.name]);
    if (diffs.length > 0) {
      throw new Refusal(
        'COPIES_DIFFER',
        `peers ${members[0]!.name} and ${members[i + 1]!.name} hold different trees, so mirroring onto them would keep them different:\n  ${diffs.join('\n  ')}\n` +
          'They cannot be reconciled automatically (each holds what the other lacks, and no journal orders it). Choose the copy to keep and mount again with ' +
          `--resync-from NAME (for example --resync-from ${members[0]!.name}): every other peer is rebuilt from it, verified by content hash.`,
      );
    }
  }
  return first!;
}

/**
 * Make the local copy match the peers: fill an empty one from a peer, accept
 * an equal one, refuse one that differs.
 */
export async function prepareLocalCopy(local: LocalCopy, manifest: ManifestEntry[], source: Member, log: Logger, opts: { trusted: boolean }): Promise<void> {
  // The root's own attributes are mirrored like any directory's.
  const { result: root } = await source.client.call<WireStat>({ op: 'getattr', path: '' });
  const stamp = { mount: 'local-fill', epoch: 1, seq: 1 };
  await local.apply({ op: 'chmod', path: '', mode: root.mode & 0o7777, ...stamp }, Buffer.alloc(0));
  await local.apply({ op: 'chown', path: '', uid: root.uid, gid: root.gid, ...stamp }, Buffer.alloc(0));
  if (!local.isEmpty()) {
    // A copy left by a clean unmount is compared by structure; any other (a crash,
    // a copy switched off for disagreeing) by content too, since it is never flushed.
    const content = !opts.trusted;
    const theirs = content ? await source.client.manifest({ content: true }) : manifest;
    const mine: ManifestEntry[] = [];
    for await (const e of walkManifest(local.root, { content })) mine.push(e);
    const diffs = diffManifests(theirs, mine, [source.name, 'local copy']);
    if (diffs.length > 0) {
      throw new Refusal(
        'COPIES_DIFFER',
        `the local copy ${local.dir} differs from the peers:\n  ${diffs.join('\n  ')}\nEmpty it (it is rebuilt from a peer at mount) or drop --local-copy.`,
      );
    }
    return;
  }
  if (manifest.length === 0) return;
  log.info({ entries: manifest.length, from: source.name }, 'filling the empty local copy from a peer');
  await makeEqual(clientCopy(source.client), localCopyHandle(local), '');
}
