import { chmodSync, chownSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { testTlsDir } from '../helpers/tls.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 22, finding 3: the running peer re-read its trust file by path without
 * looking at its owner or mode, so whoever could replace or write it decided
 * who got in. Now a trust file (or token, or key) that another user owns, or
 * that the group or others can write, is refused at start and on re-read: the
 * peer then lets nobody in (it fails closed) until it is fixed.
 */

afterEach(async () => {
  await cleanupPeers();
  cleanupTmp();
});

/** A private copy of the shared test trust file (tests run in parallel: the shared one is not touched). */
function ownTrustFile(): string {
  const file = join(tmpDir('mirrorfs-trust-'), 'trust');
  copyFileSync(join(testTlsDir(), 'trust'), file);
  chmodSync(file, 0o644);
  return file;
}

describe('credential files', () => {
  it('a trust file that others can write is refused on re-read (nobody gets in) and trusted again once fixed', async () => {
    const trust = ownTrustFile();
    const peer = await spawnPeer({ name: 'east', extraArgs: ['--trust', trust] });
    await peer.client().status();
    chmodSync(trust, 0o666);
    await waitFor(async () => {
      const err = await peer.client().status().then(() => null, (e: { code?: string }) => e);
      return err?.code === 'MFS_AUTH_CERT';
    }, 'the peer to refuse everyone once its trust file is writable by others', 20_000, 200);
    expect(peer.stderr()).toMatch(/trust file cannot be read/);
    chmodSync(trust, 0o644);
    await waitFor(async () => (await peer.client().status().then(() => true, () => false)), 'the peer to let its clients in again', 20_000, 200);
  });

  it('a peer does not start with a trust file of another user, saying why', async () => {
    const trust = ownTrustFile();
    chownSync(trust, 2100, 2100);
    await expect(spawnPeer({ name: 'east', extraArgs: ['--trust', trust] })).rejects.toThrow(/belongs to uid 2100, not to this user/);
  });
});
