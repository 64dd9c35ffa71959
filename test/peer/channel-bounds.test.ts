import http2, { type ClientHttp2Stream, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { ServedChannel, type ChannelCallHandler } from '../../src/peer/channel.js';
import { EnvelopeReader, encodeEnvelope } from '../../src/protocol/envelope.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The peer's bounds on one call channel, in process over real HTTP/2 (cleartext,
 * small windows so back-pressure shows quickly): at most maxInFlight calls run
 * at once, and once maxUnsentBytes of answers wait for a client that does not
 * read them, nothing more is read (so nothing more runs) until it reads.
 */

const WINDOW = 65_535; // HTTP/2's default stream window, on both ends
let server: Http2Server | null = null;
let session: http2.ClientHttp2Session | null = null;

afterEach(async () => {
  session?.destroy();
  session = null;
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  server = null;
});

async function serve(handler: ChannelCallHandler, bounds: { maxInFlight: number; maxUnsentBytes: number }): Promise<{ channel: () => ServedChannel; served: () => ServerHttp2Stream; stream: ClientHttp2Stream }> {
  let channel: ServedChannel | undefined;
  let served: ServerHttp2Stream | undefined;
  server = http2.createServer({ settings: { initialWindowSize: WINDOW } });
  server.on('stream', (stream) => {
    served = stream;
    channel = new ServedChannel(stream, handler, { ...bounds, stallMs: 30_000, logger: silentLogger() });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { settings: { initialWindowSize: WINDOW } });
  const stream = session.request({ ':method': 'POST', ':path': '/v1/channel' }, { endStream: false });
  await waitFor(() => channel, 'the channel to open');
  return { channel: () => channel!, served: () => served!, stream };
}

/** One HTTP/2 ping round trip on the client's session. */
function ping(): Promise<void> {
  return new Promise((resolve, reject) => session!.ping((err) => (err ? reject(err) : resolve())));
}

/** Write `count` calls at once, far more bytes than the peer's window, so only the peer's reading lets them through. */
function sendCalls(stream: ClientHttp2Stream, count: number, frameBytes: number): void {
  for (let id = 1; id <= count; id++) stream.write(Buffer.concat(encodeEnvelope(id, [Buffer.alloc(frameBytes, id % 251)])));
}

describe('the bounds of a served call channel', () => {
  it('runs at most maxInFlight calls at once, reads nothing more meanwhile, and answers all once they finish', async () => {
    const started: number[] = [];
    const release: Array<() => void> = [];
    const { channel, served, stream } = await serve(
      (frame) => {
        started.push(frame[0]!);
        return new Promise((r) => release.push(() => r([Buffer.from([frame[0]!])])));
      },
      { maxInFlight: 4, maxUnsentBytes: 8 << 20 },
    );
    const answered = new Set<number>();
    const reader = new EnvelopeReader((id) => answered.add(id));
    stream.on('data', (chunk: Buffer) => reader.push(chunk));
    const sent = 40; // 640 KiB against a 64 KiB window
    sendCalls(stream, sent, 16 * 1024);
    await waitFor(() => channel().running === 4, 'four calls running');
    // More calls have arrived than run, and wait unread at the peer: still only four ran.
    await waitFor(() => served().readableLength > 0, 'calls waiting unread at the peer');
    expect(started.length).toBe(4);
    // And it stays stopped: a ping's answer comes after the peer has taken in what preceded it.
    await ping();
    expect(started.length).toBe(4);
    // Finish calls one at a time: each frees one slot, so exactly one more starts.
    for (let done = 1; done <= 3; done++) {
      release.shift()!();
      await waitFor(() => started.length === 4 + done, `call ${4 + done} to start`);
      await waitFor(() => answered.size === done, `${done} answers`);
      expect(channel().running).toBe(4);
    }
    // Let everything through: every call sent is answered under its own id.
    const drain = setInterval(() => release.splice(0).forEach((r) => r()), 5);
    try {
      stream.end();
      await waitFor(() => answered.size === sent, `all ${sent} answers`, 20_000);
    } finally {
      clearInterval(drain);
    }
    expect(started.length).toBe(sent);
    expect([...answered].sort((a, b) => a - b)).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
  });

  it('stops reading while more than maxUnsentBytes of answers wait for a client that does not read, and goes on when it reads', async () => {
    let ran = 0;
    const answerBytes = 64 * 1024;
    const { channel, served, stream } = await serve(
      async () => {
        ran++;
        return [Buffer.alloc(answerBytes, 1)];
      },
      { maxInFlight: 64, maxUnsentBytes: 256 * 1024 },
    );
    // The client reads nothing yet: its window (64 KiB) fills, then answers queue at the peer.
    stream.pause();
    const sent = 300; // 300 KiB of calls against a 64 KiB window, 19 MiB of answers
    sendCalls(stream, sent, 1024);
    await waitFor(() => channel().waitingForClient, 'the peer to stop reading for unread answers');
    await waitFor(() => served().readableLength > 0, 'calls waiting unread at the peer');
    // Ran at most: the answers that fill the client's window and pass the bound, plus the
    // calls of the last chunk read (a 16 KiB DATA frame of 1 KiB envelopes), which start
    // together before any of their answers is written.
    const bound = Math.ceil((WINDOW + 256 * 1024) / answerBytes) + 1 + Math.ceil((16 * 1024) / (1024 + 8)) + 1;
    expect(ran).toBeLessThanOrEqual(bound);
    expect(bound).toBeLessThan(sent);
    const ranWhileHeld = ran;
    await ping();
    expect(ran).toBe(ranWhileHeld);
    // Now read: the peer drains, reads on, and every call is answered.
    const answered = new Set<number>();
    const reader = new EnvelopeReader((id) => answered.add(id));
    stream.on('data', (chunk: Buffer) => reader.push(chunk));
    stream.resume();
    await waitFor(() => answered.size === sent, `all ${sent} answers`, 30_000);
    expect(ran).toBe(sent);
    expect(ranWhileHeld).toBeLessThan(ran);
    // Drained, reading again (checked before the client ends: an ending stream emits no 'drain').
    expect(channel().waitingForClient).toBe(false);
    stream.end();
  });
});
