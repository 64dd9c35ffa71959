import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { Stamper } from '../helpers/stamp.js';
import { cleanupTmp } from '../helpers/tmp.js';

afterEach(async () => {
  await cleanupPeers();
  cleanupTmp();
});

describe('SIGTERM', () => {
  it('finishes the operations in flight, refuses new ones, and exits 0', async () => {
    const peer = await spawnPeer({ name: 'east' });
    const stamp = new Stamper();
    const client = peer.client({ timeoutMs: 5000 });
    await client.handshake(stamp.mount, 1);
    const payload = Buffer.alloc(256 * 1024, 7);
    for (let i = 0; i < 32; i++) await client.call(stamp.next({ op: 'create', path: `f${i}`, mode: 0o644 }));
    // 32 large durable writes in flight; SIGTERM as soon as the first is acknowledged.
    let signalled = false;
    const outcomes = await Promise.allSettled(
      Array.from({ length: 32 }, (_, i) =>
        client.call(stamp.next({ op: 'write', path: `f${i}`, offset: 0 }), payload).then((r) => {
          if (!signalled) {
            signalled = true;
            peer.proc.kill('SIGTERM');
          }
          return r;
        }),
      ),
    );
    expect(await peer.stop()).toBe(0);
    const acked = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
    expect(acked.length).toBeGreaterThan(0);
    for (const i of acked) expect(readFileSync(join(peer.dataDir, `f${i}`)).equals(payload)).toBe(true);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ errno: expect.stringMatching(/EIO|EAGAIN/) });
    expect(peer.stderr()).toContain('peer stopped');
  });

  it('sent the moment the peer says it is listening, still stops it cleanly (the handler is in place first)', async () => {
    // A service manager or script may signal as soon as it reads the ready line; a handler
    // installed after that line left a window where SIGTERM killed the peer silently.
    for (let i = 0; i < 8; i++) {
      const peer = await spawnPeer({ name: `quick${i}` });
      peer.proc.kill('SIGTERM');
      const [code, signal] = await new Promise<[number | null, string | null]>((r) => (peer.proc.exitCode !== null || peer.proc.signalCode !== null ? r([peer.proc.exitCode, peer.proc.signalCode]) : peer.proc.once('close', (c, s) => r([c, s]))));
      expect({ code, signal }, peer.stderr()).toEqual({ code: 0, signal: null });
      expect(peer.stderr()).toContain('peer stopped');
    }
  });
});
