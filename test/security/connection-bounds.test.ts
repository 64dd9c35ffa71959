import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 22, item 4: connections are bounded. Idle TCP connections (that never
 * start TLS) against a peer under a 256-descriptor limit used to exhaust it and
 * cut off a trusted client. Now each must be admitted within the admit timeout,
 * only a few from one address wait at once (a newer one takes an older one's
 * place), and at the cap a new connection takes the place of the oldest one not
 * admitted: a trusted client gets in while the flood goes on.
 */

const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await cleanupPeers();
  cleanupTmp();
});

/** An idle connection from another loopback address than the trusted client's (127.0.0.1). */
function idleConnection(port: number): void {
  const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
  sockets.push(s);
  s.on('error', () => undefined); // the peer closes them: that is the point
}

describe('connection bounds', () => {
  it('a trusted client is served while idle connections keep arriving against a low descriptor limit; the idle ones are closed', async () => {
    const peer = await spawnPeer({ name: 'east', wrapper: ['prlimit', '--nofile=256:256'], extraArgs: ['--admit-timeout', '1500'] });
    const trusted = peer.client({ timeoutMs: 5000 });
    // The default cap follows the descriptor limit (its floor, 16, under 256).
    expect((await trusted.status()).connections?.max).toBe(16);
    await trusted.close();
    // A flood that keeps reconnecting: 20 new idle connections every 10 ms.
    const flood = setInterval(() => {
      for (let i = 0; i < 20; i++) idleConnection(peer.port);
    }, 10);
    try {
      await waitFor(() => sockets.length >= 300, 'the flood to open 300 connections', 20_000, 10);
      // Served now, with the flood still arriving (a new client: a new connection to be admitted).
      const status = await peer.client({ timeoutMs: 5000 }).status();
      expect(status.connections!.evicted).toBeGreaterThan(0);
    } finally {
      clearInterval(flood);
    }
    expect(peer.proc.exitCode).toBeNull();
    // Those still waiting are closed once the admit timeout passes.
    await waitFor(() => sockets.every((s) => s.destroyed || s.readyState !== 'open'), 'the peer to close every idle connection', 20_000, 100);
    const after = (await peer.client().status()).connections!;
    expect(after.unadmittedClosed).toBeGreaterThan(0);
  });

  it('a session whose token is wrong is closed after its refusal (not left to the admit timeout)', async () => {
    const peer = await spawnPeer({ name: 'east', extraArgs: ['--admit-timeout', '60000'] });
    const bad = peer.client({ token: 'not-the-token-0123456789' });
    await expect(bad.status()).rejects.toMatchObject({ code: 'MFS_AUTH' });
    const good = peer.client();
    await waitFor(async () => ((await good.status()).connections?.sessions ?? 99) === 1, 'only the good client session to stay open', 5_000, 100);
  });
});
