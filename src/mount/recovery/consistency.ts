import type { Logger } from '../../log.js';
import type { ManifestEntry, WireStat } from '../../protocol/ops.js';
import { clientCopy } from '../../client/remote-copy.js';
import { makeEqual } from '../../store/copy-tree.js';
import { walkManifest } from '../../store/manifest.js';
import { mergeManifests } from '../../store/manifest-merge.js';
import { localCopyHandle } from '../peers/copies.js';
import type { LocalCopy } from '../peers/local-copy.js';
import type { Member } from '../peers/member.js';
import type { ProgressReporter } from './progress.js';
import { Refusal } from '../../refusal.js';

/**
 * Mount-time checks that every copy holds the same tree. The comparison is
 * structural (names, types, modes, owners, sizes, symlink targets, xattrs),
 * not by content hash, so it stays quick on large trees; `mirrorfs verify`
 * compares contents. It runs after recovery (recovery.ts), so copies that
 * still differ cannot be reconciled automatically: the mount is refused and
 * the message names `--resync-from`.
 */

/**
 * Up to `limit` human-readable differences between two manifests, in walk order, read as
 * they stream in (memory holds the differences, not the trees; reading stops at the limit).
 */
export async function diffManifests(a: AsyncIterable<ManifestEntry>, b: AsyncIterable<ManifestEntry>, labels: [string, string], limit = 10, onEntry?: (compared: number) => void): Promise<string[]> {
  const diffs: string[] = [];
  let compared = 0;
  for await (const { path, entries: [ea, eb] } of mergeManifests([a, b], labels)) {
    onEntry?.(++compared);
    const difference = describeDifference(path, ea ?? null, eb ?? null, labels);
    if (difference !== null && diffs.push(difference) >= limit) break;
  }
  return diffs;
}

/** One path's difference between two copies, or null when they agree there. */
function describeDifference(path: string, ea: ManifestEntry | null, eb: ManifestEntry | null, labels: [string, string]): string | null {
  if (!ea && !eb) return null; // held by a third copy only: its own pair reports it
  if (!eb) return `${path}: only on ${labels[0]}`;
  if (!ea) return `${path}: only on ${labels[1]}`;
  return key(ea) === key(eb) ? null : `${path}: ${labels[0]} ${key(ea)} vs ${labels[1]} ${key(eb)}`;
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
 * Compare every peer's manifest with the first's and refuse when any differs.
 * With content, file hashes are compared too (used when the peers' progress
 * differs: one missed changes, and only equal contents prove it was repaired).
 * The manifests are read side by side as they stream in.
 */
export async function checkPeersAgree(members: Member[], opts: { content: boolean; reporter?: ProgressReporter }, limit = 10): Promise<void> {
  if (members.length < 2) return;
  const names = members.map((m) => m.name);
  const found: string[][] = members.slice(1).map(() => []);
  // A tree of a million entries takes minutes: said as it goes (the background launcher takes a silent log for a stuck mount).
  const reporter = opts.reporter;
  reporter?.start(`comparing the peers' trees${opts.content ? ' by content' : ''}`, 0, 'entries');
  let compared = 0;
  try {
    for await (const { path, entries } of mergeManifests(members.map((m) => m.client.manifestStream({ content: opts.content })), names)) {
      reporter?.update(++compared);
      for (let i = 1; i < members.length; i++) {
        const difference = describeDifference(path, entries[0] ?? null, entries[i] ?? null, [names[0]!, names[i]!]);
        if (difference !== null) found[i - 1]!.push(difference);
      }
      if (found.some((d) => d.length >= limit)) break;
    }
  } finally {
    reporter?.stop();
  }
  for (let i = 0; i < found.length; i++) {
    const diffs = found[i]!;
    if (diffs.length > 0) {
      throw new Refusal(
        'COPIES_DIFFER',
        `peers ${members[0]!.name} and ${members[i + 1]!.name} hold different trees, so mirroring onto them would keep them different:\n  ${diffs.join('\n  ')}\n` +
          'They cannot be reconciled automatically (each holds what the other lacks, and no journal orders it). Choose the copy to keep and mount again with ' +
          `--resync-from NAME (for example --resync-from ${members[0]!.name}): every other peer is rebuilt from it, verified by content hash.`,
      );
    }
  }
}

/**
 * Make the local copy match the peers: fill an empty one from a peer, accept
 * an equal one, refuse one that differs.
 */
export async function prepareLocalCopy(local: LocalCopy, source: Member, log: Logger, opts: { trusted: boolean; reporter?: ProgressReporter }): Promise<void> {
  // The root's own attributes are mirrored like any directory's.
  const { result: root } = await source.client.call<WireStat>({ op: 'getattr', path: '' });
  const stamp = { mount: 'local-fill', epoch: 1, seq: 1 };
  await local.apply({ op: 'chmod', path: '', mode: root.mode & 0o7777, ...stamp }, Buffer.alloc(0));
  await local.apply({ op: 'chown', path: '', uid: root.uid, gid: root.gid, ...stamp }, Buffer.alloc(0));
  if (!local.isEmpty()) {
    // A copy left by a clean unmount is compared by structure; any other (a crash,
    // a copy switched off for disagreeing) by content too, since it is never flushed.
    const content = !opts.trusted;
    opts.reporter?.start(`comparing the local copy with ${source.name}`, 0, 'entries');
    let diffs: string[];
    try {
      diffs = await diffManifests(source.client.manifestStream({ content }), walkManifest(local.root, { content }), [source.name, 'local copy'], 10, (n) => opts.reporter?.update(n));
    } finally {
      opts.reporter?.stop();
    }
    if (diffs.length > 0) {
      throw new Refusal(
        'COPIES_DIFFER',
        `the local copy ${local.dir} differs from the peers:\n  ${diffs.join('\n  ')}\nEmpty it (it is rebuilt from a peer at mount) or drop --local-copy.`,
      );
    }
    return;
  }
  log.info({ from: source.name }, 'filling the empty local copy from a peer');
  // Started before the copy counts what there is (a silent walk of the whole tree otherwise): no total shown.
  opts.reporter?.start(`filling the local copy from ${source.name}`, 0, 'bytes');
  try {
    await makeEqual(clientCopy(source.client), localCopyHandle(local), '', { onProgress: (p) => opts.reporter?.update(p.bytesCopied) });
  } finally {
    opts.reporter?.stop();
  }
}
