import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { PeerServer } from '../../src/peer/server.js';
import { decodeFrame, encodeFrame } from '../../src/protocol/codec.js';
import { CHANNEL_ID, EnvelopeReader, encodeEnvelope } from '../../src/protocol/envelope.js';
import { PeerClient } from '../../src/client/peer-client.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { CLEARTEXT } from '../../src/security/transport.js';
import { cleanupPeers, spawnPeer, TEST_TOKEN, type PeerProcess } from '../helpers/peer.js';
import { rawRequest } from '../helpers/raw.js';
import { testMountKeyPair } from '../helpers/tls.js';
import { Stamper } from '../helpers/stamp.js';
import { cleanupTmp, removeAtCleanup, tmpDir } from '../helpers/tmp.js';
import { snapshotTree } from '../helpers/tree.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The call channel (POST /v1/channel): changes as tagged frames on one
 * long-lived HTTP/2 stream. Real peer processes, real HTTP/2 over TLS.
 */

const headers = { 'mirrorfs-protocol': String(PROTOCOL_VERSION), authorization: `Bearer ${TEST_TOKEN}` };

/** The answers in a channel's response body, by id. */
function answersIn(body: Buffer): Map<number, { ok: boolean; error?: { code: string; message: string } }> {
  const out = new Map<number, { ok: boolean; error?: { code: string; message: string } }>();
  const reader = new EnvelopeReader((id, frame) => out.set(id, decodeFrame(frame).header as { ok: boolean }));
  reader.push(body);
  expect(reader.buffered).toBe(0);
  return out;
}

let peer: PeerProcess;
const stamp = new Stamper();

beforeAll(async () => {
  peer = await spawnPeer({ name: 'east' });
  await peer.client().handshake(stamp.mount, stamp.epoch);
});

afterAll(async () => {
  await cleanupPeers();
  cleanupTmp();
});

describe('the call channel', () => {
  it('carries every change of a client on one stream, many in flight, each answered under its own id', async () => {
    const client = peer.client();
    const before = (await client.status()).channels!;
    const n = 150; // more than the 64 streams a connection may have open at once
    await Promise.all(Array.from({ length: n }, (_, i) => client.call(stamp.next({ op: 'create', path: `c${i}`, mode: 0o644, exclusive: true }))));
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => client.call<{ written: number }>(stamp.next({ op: 'write', path: `c${i}`, offset: 0 }), Buffer.alloc(1000 + i, i % 251))),
    );
    results.forEach((r, i) => expect(r.result.written).toBe(1000 + i));
    for (let i = 0; i < n; i++) expect(readFileSync(join(peer.dataDir, `c${i}`)).equals(Buffer.alloc(1000 + i, i % 251)), `c${i}`).toBe(true);
    const after = (await client.status()).channels!;
    expect(after.calls - before.calls).toBe(2 * n);
    expect(after.open).toBe(before.open + 1);
    // A change that fails comes back as its errno, on the channel like any other answer.
    await expect(client.call(stamp.next({ op: 'mkdir', path: 'c0', mode: 0o755 }))).rejects.toMatchObject({ errno: 'EEXIST' });
    await client.close();
  });

  it('answers pipelined envelopes by id, and refuses a call that is not a change', async () => {
    const base = stamp.next({ op: 'mkdir', path: 'p1', mode: 0o755 });
    const body = Buffer.concat([
      ...encodeEnvelope(7, [encodeFrame(base)]),
      ...encodeEnvelope(9, [encodeFrame(stamp.next({ op: 'mkdir', path: 'p2', mode: 0o755 }))]),
      ...encodeEnvelope(11, [encodeFrame({ op: 'getattr', path: 'p1' })]),
      ...encodeEnvelope(13, [Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('{nope')])]),
    ]);
    const res = await rawRequest(peer.url, { path: '/v1/channel', headers, body });
    expect(res.status).toBe(200);
    const answers = answersIn(res.body);
    expect(answers.get(7)?.ok).toBe(true);
    expect(answers.get(9)?.ok).toBe(true);
    expect(answers.get(11)).toMatchObject({ ok: false, error: { code: 'MFS_MALFORMED', message: expect.stringMatching(/only changes, resend and fsync travel on the call channel, not getattr/) } });
    expect(answers.get(13)).toMatchObject({ ok: false, error: { code: 'MFS_MALFORMED', message: expect.stringMatching(/not JSON/) } });
    expect(snapshotTree(peer.dataDir).has('p1') && snapshotTree(peer.dataDir).has('p2')).toBe(true);
  });

  it('ends on an envelope over the limit with a reason under id 0, changing nothing, and the peer serves on', async () => {
    const before = snapshotTree(peer.dataDir);
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(0xffff_fff0, 0);
    const res = await rawRequest(peer.url, { path: '/v1/channel', headers, body: Buffer.concat([huge, Buffer.alloc(64)]) });
    expect(res.status).toBe(200);
    expect(answersIn(res.body).get(CHANNEL_ID)).toMatchObject({ ok: false, error: { code: 'MFS_TOO_LARGE' } });
    expect(snapshotTree(peer.dataDir)).toEqual(before);
    await peer.client().call(stamp.next({ op: 'mkdir', path: 'after-huge', mode: 0o755 }));
  });

  it('is refused as a whole for a wrong token or protocol version, and a client sees why', async () => {
    const wrongToken = await rawRequest(peer.url, { path: '/v1/channel', headers: { ...headers, authorization: 'Bearer nope' }, body: Buffer.alloc(0) });
    expect(wrongToken.status).toBe(401);
    expect(wrongToken.body.toString()).toMatch(/missing or wrong token/);
    const oldVersion = await rawRequest(peer.url, { path: '/v1/channel', headers: { ...headers, 'mirrorfs-protocol': '2' }, body: Buffer.alloc(0) });
    expect(decodeFrame(oldVersion.body).header).toMatchObject({ error: { code: 'MFS_PROTOCOL_MISMATCH', message: expect.stringMatching(/client sent "2".*same mirrorfs version/) } });
    const client = peer.client({ token: 'wrong-token-0123456789abcdef' });
    await expect(client.call(stamp.next({ op: 'mkdir', path: 'never', mode: 0o755 }))).rejects.toMatchObject({ code: 'MFS_AUTH' });
    expect(snapshotTree(peer.dataDir).has('never')).toBe(false);
    await client.close();
  });

  it('is one per connection: a second channel on the same session replaces the first', async () => {
    const session = http2.connect(peer.url, { ...testMountKeyPair(), rejectUnauthorized: false });
    session.on('error', () => undefined);
    try {
      const first = session.request({ ':method': 'POST', ':path': '/v1/channel', ...headers });
      first.on('error', () => undefined);
      const firstClosed = new Promise<number>((resolve) => first.on('close', () => resolve(first.rstCode ?? -1)));
      await new Promise((resolve) => first.once('response', resolve));
      const second = session.request({ ':method': 'POST', ':path': '/v1/channel', ...headers });
      const chunks: Buffer[] = [];
      second.on('data', (c: Buffer) => chunks.push(c));
      expect(await firstClosed).toBe(http2.constants.NGHTTP2_CANCEL);
      second.end(Buffer.concat(encodeEnvelope(3, [encodeFrame(stamp.next({ op: 'mkdir', path: 'second-channel', mode: 0o755 }))])));
      await new Promise((resolve) => second.on('end', resolve));
      expect(answersIn(Buffer.concat(chunks)).get(3)?.ok).toBe(true);
    } finally {
      session.destroy();
    }
  });

  it('survives a client that gave up on a call: the next change on the same channel is answered', async () => {
    const client = peer.client();
    await client.call(stamp.next({ op: 'create', path: 'slow', mode: 0o644, exclusive: false }));
    // 1 ms is shorter than any durable 4 MiB write: the call gives up, the peer still applies and answers it (dropped).
    const gaveUp = await client.call(stamp.next({ op: 'write', path: 'slow', offset: 0 }), Buffer.alloc(4 * 1024 * 1024, 5), 1).then(() => null, (e: { code?: string }) => e.code);
    expect(gaveUp).toBe('MFS_TIMEOUT');
    await client.call(stamp.next({ op: 'mkdir', path: 'after-timeout', mode: 0o755 }));
    expect(snapshotTree(peer.dataDir).has('after-timeout')).toBe(true);
    await client.close();
  });
});

describe('a call channel stalled inside a frame', () => {
  it('is ended after the request timeout, with the reason under id 0', async () => {
    const dataDir = tmpDir('mirrorfs-channel-stall-');
    removeAtCleanup(`${dataDir}.state`); // where the peer keeps its state
    const server = await PeerServer.start({ dataDir, host: '127.0.0.1', port: 0, name: 'stall', token: TEST_TOKEN, transport: CLEARTEXT, logger: silentLogger(), requestTimeoutMs: 300 });
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/v1/channel', ...headers });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      const ended = new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('error', reject);
        setTimeout(() => reject(new Error('the stalled channel was not ended within 5 s')), 5000);
      });
      const head = Buffer.alloc(8);
      head.writeUInt32BE(1000, 0); // promises 1,000 bytes, sends 10
      head.writeUInt32BE(1, 4);
      stream.write(Buffer.concat([head, Buffer.alloc(6)]));
      await ended;
      expect(answersIn(Buffer.concat(chunks)).get(CHANNEL_ID)).toMatchObject({ ok: false, error: { message: expect.stringMatching(/stopped arriving part-way for 300 ms/) } });
      const client = new PeerClient(`http://127.0.0.1:${server.port}`, { token: TEST_TOKEN, transport: CLEARTEXT });
      await waitFor(async () => (await client.status()).channels?.open === 0, 'the peer to forget the ended channel');
      await client.close();
    } finally {
      session.destroy();
      await server.shutdown(0);
    }
  });
});
