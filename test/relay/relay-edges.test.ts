import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HANDSHAKE_DOWN_TIMEOUT_MS, NEXT_STATUS_TIMEOUT_MS } from '../../src/relay/forwarder.js';
import { runCollect } from '../helpers/child.js';
import { cleanupLinks, spawnLink } from '../helpers/link.js';
import { cleanupMounts, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { Stamper } from '../helpers/stamp.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/** Relays under load and at the edges: reads during a stream of writes, a relay's "queued" never outvoting a real answer, a dead far link at mount time. */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  await cleanupLinks();
  cleanupTmp();
});

describe('a pure relay', () => {
  it('answers a read once what it acknowledged before has gone on, without waiting for a queue that never empties', async () => {
    const mirror = await spawnPeer({ name: 'mirror' });
    const link = await spawnLink(mirror.port, '300ms'); // every change takes at least 0.6 s to be acknowledged downstream
    const relay = await spawnPeer({ name: 'relay', pure: true, extraArgs: ['--forward-to', link.url] });
    const client = relay.client();
    const stamp = new Stamper('m');
    await client.handshake(stamp.mount, 1);
    await client.call(stamp.next({ op: 'mkdir', path: 'd', mode: 0o755 }));
    for (let w = 0; w < 4; w++) await client.call(stamp.next({ op: 'create', path: `d/f${w}`, mode: 0o644, exclusive: false }));
    // Changes keep arriving for as long as the read waits: the queue is never empty meanwhile.
    let writing = true;
    const block = Buffer.alloc(4096, 1);
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; writing; i++) await client.call(stamp.next({ op: 'write', path: `d/f${w}`, offset: (i % 64) * 128 * 1024 }), block);
    });
    try {
      const st = await client.call<{ type: string; size: number }>({ op: 'getattr', path: 'd/f0' });
      expect(st.result.type).toBe('file');
      // Answered while changes that arrived after it were still queued.
      expect((await client.status()).relay!.queue.depth).toBeGreaterThan(0);
    } finally {
      writing = false;
      await Promise.allSettled(writers);
    }
  });

  it('does not outvote a peer that applied the change: rmdir of a full directory fails, and the far mirror refused it too', async () => {
    const east = await spawnPeer({ name: 'east' });
    const mirror = await spawnPeer({ name: 'mirror' });
    const relay = await spawnPeer({ name: 'relay', pure: true, extraArgs: ['--forward-to', mirror.url] });
    const m = await startMount({ peers: [east, { ...relay, name: 'west' }] });
    const r = await runCollect(process.execPath, ['-e', `
      const fs = require('node:fs'); const d = process.argv[1];
      fs.mkdirSync(d + '/full'); fs.writeFileSync(d + '/full/x', 'x');
      try { fs.rmdirSync(d + '/full'); process.stdout.write('removed'); } catch (e) { process.stdout.write(e.code); }`, m.mountpoint]);
    expect(r.stdout).toBe('ENOTEMPTY');
    await waitFor(async () => (await relay.client().status()).relay!.queue.depth === 0, 'the relay to forward everything');
    expect(readdirSync(join(mirror.dataDir, 'full'))).toEqual(['x']);
    expect((await relay.client().status()).relay!.diverged).toBe(0);
  });
});

describe('a relay whose next hop silently drops everything', () => {
  it('does not stop the mount from starting: its status and the handshake it passes down are bounded', async () => {
    const east = await spawnPeer({ name: 'east' });
    const mirror = await spawnPeer({ name: 'mirror' });
    const link = await spawnLink(mirror.port, '1ms');
    const relay: PeerProcess = await spawnPeer({ name: 'relay', extraArgs: ['--forward-to', link.url] }); // keeps a copy: the mount compares it
    await link.setMode('drop');
    // Bounds, not benchmarks: the slack is for a loaded machine (starting a process, mounting, TLS).
    // The mount asks each peer's status before and after its handshakes (takeover/ownership.ts): the
    // relay waits its status bound on the dead hop for each, and its handshake bound for the handshake.
    let started = performance.now();
    const m = await startMount({ peers: [east, { ...relay, name: 'west' }] });
    expect(performance.now() - started).toBeLessThanOrEqual(2 * NEXT_STATUS_TIMEOUT_MS + HANDSHAKE_DOWN_TIMEOUT_MS + 10_000);
    // A client that would wait longer than the relay's own default bound on its next hop (10 s):
    // the status bound must cut it off, well within that (the slack stays below the 9 s between them).
    started = performance.now();
    const st = await relay.client({ timeoutMs: 60_000 }).status();
    expect(performance.now() - started).toBeLessThanOrEqual(NEXT_STATUS_TIMEOUT_MS + 5_000);
    expect(st.relay!.next).toMatchObject({ error: expect.stringMatching(/did not answer|timed out|within/) });
    await m.stop();
  });
});
