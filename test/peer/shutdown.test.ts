import { existsSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../src/protocol/codec.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { cleanupPeers, spawnPeer, TEST_TOKEN } from '../helpers/peer.js';
import { Stamper } from '../helpers/stamp.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { testMountKeyPair } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/** Raw connections of held calls, closed even when a test fails. */
const rawSessions: http2.ClientHttp2Session[] = [];

afterEach(async () => {
  for (const s of rawSessions.splice(0)) s.destroy();
  await cleanupPeers();
  cleanupTmp();
});

/**
 * A call whose headers are sent and whose body is not, over its own raw HTTP/2
 * connection: the peer counts it in flight (it waits for the body), so a peer
 * told to stop stays in its drain until the returned function sends the body.
 */
function heldCall(url: string): (body: Buffer) => Promise<{ status: number; body: Buffer }> {
  const session = http2.connect(url, { ...testMountKeyPair(), rejectUnauthorized: false });
  rawSessions.push(session);
  session.on('error', () => undefined); // surfaced through the stream
  const stream = session.request({ ':method': 'POST', ':path': '/v1/call', 'mirrorfs-protocol': String(PROTOCOL_VERSION), authorization: `Bearer ${TEST_TOKEN}` });
  const answer = new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
  });
  answer.catch(() => undefined); // awaited when the body is sent; a test that fails before then must not leave it unhandled
  return (body: Buffer) => {
    stream.end(body);
    return answer;
  };
}

describe('SIGTERM', () => {
  it('finishes the operations in flight, refuses new ones, and exits 0', async () => {
    const peer = await spawnPeer({ name: 'east' });
    const stamp = new Stamper();
    const client = peer.client({ timeoutMs: 5000 });
    await client.handshake(stamp.mount, 1);
    const payload = Buffer.alloc(256 * 1024, 7);
    for (let i = 0; i < 32; i++) await client.call(stamp.next({ op: 'create', path: `f${i}`, mode: 0o644 }));
    // One more call in flight that the test finishes itself, so the peer is still draining when a new client arrives.
    const finishHeld = heldCall(peer.url);
    await waitFor(async () => (await client.status()).inFlight >= 2, 'the held call to be in flight (the status request is the other)');
    // 32 large durable writes in flight; SIGTERM as soon as the first is acknowledged.
    let signalled = false;
    const writes = Promise.allSettled(
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
    await waitFor(() => peer.stderr().includes('shutting down: finishing in-flight operations'), 'the peer to start draining');
    // A fresh client while the peer drains: refused (today the listener is closed, so it cannot connect),
    // and the change it asked for is not made.
    const late = peer.client({ timeoutMs: 5000 });
    const refused = await late
      .handshake(stamp.mount, 1)
      .then(() => late.call(stamp.next({ op: 'create', path: 'late', mode: 0o644 })))
      .then(() => null, (err: unknown) => err);
    expect(refused).toMatchObject({ code: expect.stringMatching(/^(MFS_SHUTTING_DOWN|MFS_UNREACHABLE)$/) });
    const outcomes = await writes;
    // The call that was in flight before the signal is still answered, and applied.
    const answer = await finishHeld(encodeFrame(stamp.next({ op: 'create', path: 'held', mode: 0o644 })));
    expect(answer.status).toBe(200);
    expect(await peer.stop()).toBe(0);
    expect(existsSync(join(peer.dataDir, 'late'))).toBe(false);
    expect(existsSync(join(peer.dataDir, 'held'))).toBe(true);
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
