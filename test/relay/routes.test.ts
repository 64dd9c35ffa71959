import { afterEach, describe, expect, it } from 'vitest';
import { expectAckedEverywhere, expectConverged, expectExactlyOnce } from '../helpers/converge.js';
import { cleanupLinks, spawnLink, type LinkProcess } from '../helpers/link.js';
import { cleanupMounts, mountStatus, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { cleanupWriters, startWriter } from '../helpers/writer.js';

/** Diverse routes (para. 15): west reached over two emulated links; one fails mid-stream. */

afterEach(async () => {
  await cleanupWriters();
  await cleanupMounts();
  await cleanupPeers();
  await cleanupLinks();
  cleanupTmp();
});

async function twoRoutes(): Promise<{ east: PeerProcess; west: PeerProcess; a: LinkProcess; b: LinkProcess; routed: PeerProcess }> {
  const east = await spawnPeer({ name: 'east' });
  const west = await spawnPeer({ name: 'west' });
  const a = await spawnLink(west.port, '1ms');
  const b = await spawnLink(west.port, '1ms');
  return { east, west, a, b, routed: { ...west, url: `${a.url}|${b.url}` } };
}

describe('a peer reached over two routes', () => {
  for (const failure of ['cut', 'drop'] as const) {
    it(`the route in use ${failure === 'cut' ? 'is cut' : 'silently drops everything'} mid-stream: the other takes over, nothing lost, nothing doubled`, async () => {
      const { east, west, a, b, routed } = await twoRoutes();
      const m = await startMount({ peers: [east, routed], extraArgs: ['--peer-timeout', '2000'] });
      expect((await mountStatus(m.mountpoint)).peers.find((p) => p.name === 'west')).toMatchObject({ route: a.url });
      const w = startWriter(m.mountpoint, 'r');
      await w.waitAcked(20);
      await a.setMode(failure);
      await waitFor(async () => (await mountStatus(m.mountpoint)).peers.find((p) => p.name === 'west')?.route === b.url, 'the mount to use the second route', 20_000, 100);
      await w.waitAcked(w.log().acked.length + 20);
      const log = await w.stop();
      expect(log.errors).toEqual([]);
      expect((await b.status()).bytesForwarded).toBeGreaterThan(0);
      expectAckedEverywhere(log, [m.mountpoint, east.dataDir, west.dataDir]);
      await expectConverged(m, [east, west]);
      await expectExactlyOnce(east, west);
    });
  }

  it('routes that lead to different peers are refused at mount time', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const other = await spawnPeer({ name: 'other' });
    const err = await startMount({ peers: [east, { ...west, url: `${west.url}|${other.url}` }] }).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/routes lead to different peers/);
  });
});
