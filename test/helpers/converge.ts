import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { MountProcess } from './mount.js';
import type { PeerProcess } from './peer.js';
import { compareDirs } from './tree.js';
import { waitFor } from './wait.js';
import type { WriterLog } from './writer.js';

/**
 * Wait (bounded) until every copy compares equal. A call that failed but was
 * rolled forward leaves the kernel's cached view of that name as it was before
 * the call (libfuse 2's high-level API cannot invalidate it; docs/OPERATIONS.md),
 * so the kernel's dentry and inode caches are dropped first.
 */
export async function expectConverged(m: MountProcess, peers: Array<Pick<PeerProcess, 'name' | 'dataDir'>>): Promise<void> {
  writeFileSync('/proc/sys/vm/drop_caches', '2');
  const dirs = [{ label: 'mount', dir: m.mountpoint }, ...(m.localCopyDir ? [{ label: 'local copy', dir: m.localCopyDir }] : []), ...peers.map((p) => ({ label: p.name, dir: p.dataDir }))];
  let last: string[] = [];
  try {
    await waitFor(() => (last = compareDirs(dirs)).length === 0, 'every copy to compare equal', 15_000, 100);
  } catch {
    expect(last).toEqual([]);
  }
}

/** Every write the writer was told succeeded is in every copy, whole. */
export function expectAckedEverywhere(log: WriterLog, dirs: string[]): void {
  expect(log.acked.length).toBeGreaterThan(0);
  for (const name of log.acked) {
    const want = `content of ${name}\n`.repeat(64);
    for (const dir of dirs) expect(readFileSync(join(dir, name), 'utf8'), `${name} in ${dir}`).toBe(want);
  }
}

/** Every copy saw each change once: each other peer applied exactly as many changes as the reference one. */
export async function expectExactlyOnce(reference: PeerProcess, ...others: PeerProcess[]): Promise<void> {
  const want = (await reference.client().status()).applied;
  expect(want).toBeGreaterThan(0);
  for (const p of others) expect((await p.client().status()).applied, `changes applied by ${p.name}`).toBe(want);
}
