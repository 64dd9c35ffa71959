import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { Stamper } from '../helpers/stamp.js';
import { cleanupTmp } from '../helpers/tmp.js';

afterEach(async () => {
  await cleanupPeers();
  cleanupTmp();
});

describe('durable before ack', () => {
  it('kill -9 right after an acknowledgement: the change is there after restart', async () => {
    const peer = await spawnPeer({ name: 'east' });
    const stamp = new Stamper();
    const client = peer.client();
    await client.handshake(stamp.mount, 1);
    await client.call(stamp.next({ op: 'mkdir', path: 'dir', mode: 0o700 }));
    await client.call(stamp.next({ op: 'create', path: 'dir/f', mode: 0o600 }));
    await client.call(stamp.next({ op: 'write', path: 'dir/f', offset: 0 }), Buffer.from('acknowledged'));
    await peer.kill9();
    const again = await peer.restart();
    expect(readFileSync(join(again.dataDir, 'dir/f'), 'utf8')).toBe('acknowledged');
    expect((await again.client().status()).epoch).toBe(1);
  });

  it('kill -9 in the middle of a stream of operations: every acknowledged one is present', async () => {
    const peer = await spawnPeer({ name: 'east' });
    const stamp = new Stamper();
    const client = peer.client({ timeoutMs: 5000 });
    await client.handshake(stamp.mount, 1);
    const acked: string[] = [];
    let killed = false;
    // A call that fails while the peer is alive is a failure of the test; after the kill, failing is expected.
    const errorsBeforeKill: unknown[] = [];
    // 8 writers, each creating and filling files until the peer dies under them.
    const writer = async (w: number) => {
      for (let i = 0; !killed && i < 500; i++) {
        const name = `w${w}-${i}`;
        try {
          await client.call(stamp.next({ op: 'create', path: name, mode: 0o644 }));
          await client.call(stamp.next({ op: 'write', path: name, offset: 0 }), Buffer.from(`content of ${name}`));
          acked.push(name);
        } catch (err) {
          if (!killed) errorsBeforeKill.push(err);
          return;
        }
        if (acked.length >= 60 && !killed) {
          killed = true;
          await peer.kill9();
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
    expect(errorsBeforeKill).toEqual([]);
    expect(killed).toBe(true);
    expect(acked.length).toBeGreaterThanOrEqual(60);
    const again = await peer.restart();
    for (const name of acked) expect(readFileSync(join(again.dataDir, name), 'utf8')).toBe(`content of ${name}`);
    expect(readdirSync(again.dataDir).length).toBeGreaterThanOrEqual(acked.length);
  });
});
