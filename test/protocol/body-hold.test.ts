import { afterEach, describe, expect, it } from 'vitest';
import { BufferPool, PooledBytes } from '../../src/protocol/buffer-pool.js';
import { PeerClient, type BodyHold } from '../../src/client/peer-client.js';
import { cleanupLinks, spawnLink } from '../helpers/link.js';
import { cleanupPeers, spawnPeer, TEST_TOKEN } from '../helpers/peer.js';
import { Stamper } from '../helpers/stamp.js';
import { testTransport } from '../helpers/tls.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A write's payload may sit in a reused buffer (the mount's write pool): the
 * client must hold it from before it is sent until every stream that carried
 * it is closed, even when the call itself was answered earlier (a timeout, a
 * switch of route). Real peer, real links, real HTTP/2.
 */
function countingHold() {
  const h = { held: 0, holds: 0, releases: 0, lowest: 0, spoiled: 0 };
  const hold: BodyHold = {
    hold: () => {
      h.held++;
      h.holds++;
    },
    release: () => {
      h.held--;
      h.releases++;
      h.lowest = Math.min(h.lowest, h.held);
    },
    spoil: () => {
      h.spoiled++;
    },
  };
  return { h, hold };
}

afterEach(async () => {
  await cleanupLinks();
  await cleanupPeers();
  cleanupTmp();
});

describe('a hold on a request payload', () => {
  it('is taken before the call sends and let go when its stream closes, before the answer', async () => {
    const peer = await spawnPeer({ name: 'east' });
    const client = peer.client();
    const stamp = new Stamper();
    await client.handshake(stamp.mount, stamp.epoch);
    await client.call(stamp.next({ op: 'create', path: 'f', mode: 0o644, exclusive: false }));
    const { h, hold } = countingHold();
    const call = client.call(stamp.next({ op: 'write', path: 'f', offset: 0 }), Buffer.alloc(128 * 1024, 1), undefined, 0, { hold });
    expect(h.held).toBe(1); // taken synchronously: the caller may let go of its own reference right after
    await call;
    expect(h).toMatchObject({ held: 0, holds: 1, releases: 1, lowest: 0, spoiled: 0 }); // answered in full: reusable
  });

  it('outlives a timed-out call until the stream is closed, and is let go exactly once', async () => {
    const peer = await spawnPeer({ name: 'east' });
    const link = await spawnLink(peer.port);
    const client = new PeerClient(link.url, { name: 'east', token: TEST_TOKEN, transport: testTransport(), timeoutMs: 2000 });
    try {
      const stamp = new Stamper();
      await client.handshake(stamp.mount, stamp.epoch);
      await client.call(stamp.next({ op: 'create', path: 'f', mode: 0o644, exclusive: false }));
      await link.setMode('drop'); // silent: nothing forwarded, nothing closed
      const { h, hold } = countingHold();
      const err = await client.call(stamp.next({ op: 'write', path: 'f', offset: 0 }), Buffer.alloc(128 * 1024, 2), 300, 0, { hold }).then(() => null, (e: Error & { code?: string }) => e);
      expect(err?.code).toBe('MFS_TIMEOUT');
      await waitFor(() => h.held === 0, 'the cancelled stream to close and let go of the payload');
      // Not answered: a write of that connection may still read the bytes, so they are never reused.
      expect(h).toMatchObject({ holds: 1, releases: 1, lowest: 0, spoiled: 1 });
    } finally {
      await client.close();
    }
  });

  it('spans a switch of route: held while the second route is tried, let go once per attempt', async () => {
    const peer = await spawnPeer({ name: 'east' });
    const dead = await spawnLink(peer.port);
    const live = await spawnLink(peer.port);
    const client = new PeerClient(`${dead.url}|${live.url}`, { name: 'east', token: TEST_TOKEN, transport: testTransport(), timeoutMs: 2000 });
    try {
      const stamp = new Stamper();
      await client.handshake(stamp.mount, stamp.epoch);
      await client.call(stamp.next({ op: 'create', path: 'f', mode: 0o644, exclusive: false }));
      await dead.setMode('drop');
      const { h, hold } = countingHold();
      const call = client.call(stamp.next({ op: 'write', path: 'f', offset: 0 }), Buffer.alloc(128 * 1024, 3), undefined, 0, { hold });
      await call; // answered over the second route
      expect(client.currentRoute).toBe(live.url);
      await waitFor(() => h.held === 0, 'every attempt to let go of the payload');
      expect(h.holds).toBe(h.releases);
      expect(h.holds).toBeGreaterThanOrEqual(3); // the call, and one per attempt
      expect(h.lowest).toBe(0);
      expect(h.spoiled).toBe(1); // the attempt on the dead route
    } finally {
      await client.close();
    }
  });
});

describe('pooled bytes', () => {
  it('go back to the pool when the last holder lets go, unless a send spoiled them', () => {
    const pool = new BufferPool(1024, 4);
    const a = PooledBytes.copyOf(pool, Buffer.from('abc'))!;
    expect(a.bytes.toString()).toBe('abc');
    a.hold();
    a.release();
    expect(pool.idle).toBe(0); // still held by its creator
    a.release();
    expect(pool.idle).toBe(1);
    const b = PooledBytes.copyOf(pool, Buffer.from('def'))!;
    expect(pool.idle).toBe(0); // a's buffer, reused
    b.spoil();
    b.release();
    expect(pool.idle).toBe(0);
    expect(pool.inUse).toBe(0);
    expect(() => b.release()).toThrow(/more often/);
    expect(PooledBytes.copyOf(pool, Buffer.alloc(2048))).toBeNull(); // larger than a pool buffer
  });
});
