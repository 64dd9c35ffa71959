import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerStatus } from '../../src/protocol/ops.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 22, item 4: connections are bounded. 300 idle TCP connections against
 * a peer under a 256-descriptor limit (they never start TLS) used to exhaust
 * it and cut off a trusted client. Now those past the cap are closed at once,
 * the rest when they have not finished TLS within the admit timeout, and the
 * trusted client gets in.
 */

const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await cleanupPeers();
  cleanupTmp();
});

function idleConnection(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    sockets.push(s);
    s.on('error', () => undefined); // the peer closes them: that is the point
    s.once('connect', () => resolve());
    s.once('close', () => resolve());
  });
}

describe('connection bounds', () => {
  it('a flood of idle connections under a low descriptor limit neither exhausts the peer nor keeps a trusted client out for long', async () => {
    const peer = await spawnPeer({ name: 'east', wrapper: ['prlimit', '--nofile=256:256'], extraArgs: ['--admit-timeout', '1500'] });
    // The default cap follows the limit: half of what 256 leaves after the peer's own 128.
    expect((await peer.client().status()).connections?.max).toBe(64);
    await Promise.all(Array.from({ length: 300 }, () => idleConnection(peer.port)));
    // Past the cap, closed at once; the others once they have not finished TLS in time.
    await waitFor(async () => {
      const open = sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
      return open === 0;
    }, 'the peer to close every idle connection', 20_000, 100);
    // A trusted client gets in (its own connection may first meet the cap: it retries).
    let status: PeerStatus | null = null;
    const trusted = peer.client({ timeoutMs: 2000 });
    await waitFor(async () => {
      status = await trusted.status().catch(() => null);
      return status !== null;
    }, 'a trusted client to be served', 20_000, 200);
    const c = status!.connections!;
    expect(c.dropped).toBeGreaterThan(0);
    expect(c.unadmittedClosed).toBeGreaterThan(0);
    expect(peer.proc.exitCode).toBeNull();
  });

  it('a session whose token is wrong is closed after its refusal (not left to the admit timeout)', async () => {
    const peer = await spawnPeer({ name: 'east', extraArgs: ['--admit-timeout', '60000'] });
    const bad = peer.client({ token: 'not-the-token-0123456789' });
    await expect(bad.status()).rejects.toMatchObject({ code: 'MFS_AUTH' });
    const good = peer.client();
    await waitFor(async () => ((await good.status()).connections?.sessions ?? 99) === 1, 'only the good client session to stay open', 5_000, 100);
  });
});
