import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_FRAME_BYTES, encodeError } from '../../src/protocol/codec.js';
import { CHANNEL_ID, EnvelopeReader, encodeEnvelope } from '../../src/protocol/envelope.js';
import { MirrorError } from '../../src/protocol/errors.js';
import { PeerClient } from '../../src/client/peer-client.js';
import { CLEARTEXT } from '../../src/security/transport.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The client end of the call channel against a stand-in HTTP/2 server that
 * misbehaves on purpose (real node:http2, cleartext): what the mount sees when
 * a peer ends a channel, and when a call gives up with bytes still unsent.
 */

const servers: http2.Http2Server[] = [];
const clients: PeerClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

async function standIn(onChannel: (stream: http2.ServerHttp2Stream) => void, settings?: http2.Settings): Promise<PeerClient> {
  const server = http2.createServer({ settings });
  server.on('session', (session) => session.on('error', () => undefined));
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    onChannel(stream);
    // A client done with the channel ends its side; a peer then ends its own.
    stream.on('end', () => stream.writableEnded || stream.destroyed || stream.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  servers.push(server);
  const client = new PeerClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { name: 'standin', token: 'token-0123456789abcdef', transport: CLEARTEXT, timeoutMs: 5000 });
  clients.push(client);
  return client;
}

const stamp = { mount: 'm1', epoch: 1 };

describe('the client of a call channel', () => {
  it('fails every waiting call as unreachable (in doubt, not a verdict) when the peer ends the channel, naming its reason', async () => {
    let received = 0;
    const client = await standIn((stream) => {
      stream.respond({ ':status': 200 });
      const reader = new EnvelopeReader(() => {
        if (++received < 2) return;
        // Two calls in hand and unanswered: end the channel as a peer does for a stalled frame.
        for (const part of encodeEnvelope(CHANNEL_ID, [encodeError(new MirrorError('MFS_MALFORMED', 'a frame stopped arriving part-way'))])) stream.write(part);
        stream.end();
      });
      stream.on('data', (c: Buffer) => reader.push(c));
    });
    const calls = [1, 2].map((seq) => client.call({ op: 'mkdir', path: `d${seq}`, mode: 0o755, ...stamp, seq }).then(() => null, (e: MirrorError) => e));
    for (const err of await Promise.all(calls)) {
      expect(err).toMatchObject({ code: 'MFS_UNREACHABLE', errno: 'EIO' });
      expect(err!.message).toMatch(/ended the call channel \(MFS_MALFORMED: .*stopped arriving part-way/);
    }
  });

  it('sends the calls made in one tick as one DATA frame (no envelope head alone in a TLS record)', async () => {
    const chunks: Buffer[] = [];
    const client = await standIn((stream) => {
      stream.respond({ ':status': 200 });
      const reader = new EnvelopeReader((id) => {
        for (const part of encodeEnvelope(id, [Buffer.from([0, 0, 0, 11]), Buffer.from('{"ok":true}')])) stream.write(part);
      });
      stream.on('data', (c: Buffer) => {
        chunks.push(c);
        reader.push(c);
      });
    });
    // The channel is open and idle first: writes before the stream is ready are held and merged by node:http2 anyway.
    await client.call({ op: 'mkdir', path: 'd', mode: 0o755, ...stamp, seq: 1 });
    chunks.length = 0;
    await client.call({ op: 'write', path: 'f', offset: 0, ...stamp, seq: 2 }, Buffer.alloc(100, 2));
    expect(chunks.length).toBe(1); // one call: its envelope in one frame
    chunks.length = 0;
    await Promise.all([3, 4, 5].map((seq) => client.call({ op: 'write', path: 'f', offset: seq * 100, ...stamp, seq }, Buffer.alloc(100, seq))));
    expect(chunks.length).toBe(1); // three calls in one tick: one frame
    const got: number[] = [];
    new EnvelopeReader((id) => got.push(id)).push(chunks[0]!);
    expect(got.length).toBe(3);
  });

  it('refuses a call too large for an envelope itself, and the channel serves on', async () => {
    let envelopes = 0;
    const client = await standIn((stream) => {
      stream.respond({ ':status': 200 });
      const reader = new EnvelopeReader((id) => {
        envelopes++;
        for (const part of encodeEnvelope(id, [Buffer.from([0, 0, 0, 11]), Buffer.from('{"ok":true}')])) stream.write(part);
      });
      stream.on('data', (c: Buffer) => reader.push(c));
    });
    const tooLarge = await client.call({ op: 'write', path: 'f', offset: 0, ...stamp, seq: 1 }, Buffer.alloc(MAX_FRAME_BYTES)).then(() => null, (e: MirrorError) => e);
    expect(tooLarge).toMatchObject({ code: 'MFS_TOO_LARGE' });
    expect(envelopes).toBe(0); // never sent
    await client.call({ op: 'mkdir', path: 'd', mode: 0o755, ...stamp, seq: 2 });
    expect(envelopes).toBe(1);
  });

  it('resets the channel when a call gives up while bytes are still unsent, so they are never sent later', async () => {
    let channelClosed: number | null = null;
    let bytesIn = 0;
    const client = await standIn((stream) => {
      stream.respond({ ':status': 200 });
      // Reads the first 64 KiB window's worth, then stops: flow control holds the rest at the client.
      stream.on('data', (c: Buffer) => {
        bytesIn += c.length;
        stream.pause();
      });
      stream.on('close', () => (channelClosed = stream.rstCode));
    }, { initialWindowSize: 65_535 });
    const waiting = client.call({ op: 'mkdir', path: 'first', mode: 0o755, ...stamp, seq: 1 }, undefined, 5000).then(() => null, (e: MirrorError) => e);
    const gaveUp = await client.call({ op: 'write', path: 'f', offset: 0, ...stamp, seq: 2 }, Buffer.alloc(1024 * 1024, 1), 300).then(() => null, (e: MirrorError) => e);
    expect(gaveUp).toMatchObject({ code: 'MFS_TIMEOUT' });
    // The other call on the channel fails at once (in doubt), not after its own 5 s.
    const other = await waiting;
    expect(other).toMatchObject({ code: 'MFS_UNREACHABLE' });
    expect(other!.message).toMatch(/gave up while the channel still held unsent bytes/);
    await waitFor(() => channelClosed !== null, 'the stand-in to see the channel reset');
    expect(channelClosed).toBe(http2.constants.NGHTTP2_CANCEL);
    expect(bytesIn).toBeLessThan(1024 * 1024); // the write never arrived whole
  });
});
