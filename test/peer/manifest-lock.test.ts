import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerClient } from '../../src/client/peer-client.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { TEST_TOKEN, cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { Stamper } from '../helpers/stamp.js';
import { testMountKeyPair } from '../helpers/tls.js';
import { cleanupTmp } from '../helpers/tmp.js';

/**
 * Issue 22: any trusted reader's GET /v1/manifest held the namespace lock while
 * it hashed the whole tree, so the primary's renames and unlinks (exclusive),
 * and the writes queued behind them, waited for it. The walk now holds the lock
 * a batch of entries at a time and hashes outside it.
 */

let peer: PeerProcess;
let client: PeerClient;
const stamp = new Stamper();

beforeAll(async () => {
  peer = await spawnPeer({ name: 'east' });
  client = peer.client();
  await client.handshake(stamp.mount, stamp.epoch);
});

afterAll(async () => {
  await cleanupPeers();
  cleanupTmp();
});

describe('a manifest read while the owner changes names', () => {
  it('does not hold a rename for the time it takes to hash a large file', async () => {
    // 70 small files in the first batches, then a large (sparse) file whose hash takes a while.
    mkdirSync(join(peer.dataDir, 'd'));
    for (let i = 0; i < 70; i++) writeFileSync(join(peer.dataDir, 'd', `f${String(i).padStart(3, '0')}`), `small ${i}`);
    writeFileSync(join(peer.dataDir, 'd', 'zbig'), '');
    truncateSync(join(peer.dataDir, 'd', 'zbig'), 1024 * 1024 * 1024);
    // And entries after it, described only once its hash is done.
    for (let i = 0; i < 5; i++) writeFileSync(join(peer.dataDir, 'd', `zz${i}`), `late ${i}`);
    await client.call(stamp.next({ op: 'create', path: 'a', mode: 0o644, uid: 0, gid: 0 }));

    const order: string[] = [];
    const session = http2.connect(peer.url, { ...testMountKeyPair(), rejectUnauthorized: false });
    try {
      const req = session.request({ ':method': 'GET', ':path': '/v1/manifest?content=1', authorization: `Bearer ${TEST_TOKEN}`, 'mirrorfs-protocol': String(PROTOCOL_VERSION) });
      let renamed: Promise<void> | null = null;
      const lines: string[] = [];
      let seenAtRename = '';
      await new Promise<void>((resolve, reject) => {
        req.on('data', (chunk: Buffer) => {
          lines.push(chunk.toString());
          // The walk is under way: the owner renames a name it has already listed.
          renamed ??= client.call(stamp.next({ op: 'rename', from: 'a', to: 'b' })).then(() => {
            order.push('rename answered');
            seenAtRename = lines.join('');
          });
        });
        req.on('end', () => {
          order.push('manifest ended');
          resolve();
        });
        req.on('error', reject);
        req.end();
      });
      await renamed;
      expect(lines.join('')).toContain('"path":"d/zbig"');
      expect(order).toEqual(['rename answered', 'manifest ended']);
      // Answered while the walk was still under way: the entries after the large file came later.
      expect(seenAtRename).not.toContain('"path":"d/zz0"');
    } finally {
      session.destroy();
    }
  });
});
