import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PIECE_BYTES, boundedPieces, readNdjson } from '../../src/client/ndjson-stream.js';
import { ndjsonEndLine } from '../../src/protocol/ndjson-end.js';
import { H2_STREAM_WINDOW_BYTES } from '../../src/protocol/version.js';
import { parseFromOption, resumeForm } from '../../src/cli/verify-progress.js';

/**
 * A manifest read as it comes must never pass for a whole one when it was cut
 * short: what it lacks would look removed (a repair would remove it from the
 * target). A real HTTP/2 server stands in for a peer that resets its answer half
 * way, or ends it normally.
 */

const servers: http2.Http2Server[] = [];
const sessions: http2.ClientHttp2Session[] = [];

afterEach(async () => {
  for (const s of sessions.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function serve(answer: (stream: http2.ServerHttp2Stream) => void, windowBytes?: number): Promise<http2.ClientHttp2Session> {
  const server = http2.createServer();
  server.on('stream', (stream) => answer(stream));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  // The windows peer clients use (peer-client.ts), where a test needs the peer to run ahead as far.
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, windowBytes ? { settings: { initialWindowSize: windowBytes } } : {});
  if (windowBytes) session.on('connect', () => session.setLocalWindowSize(2 * windowBytes));
  sessions.push(session);
  return session;
}

const lines = (n: number) => Array.from({ length: n }, (_, i) => `${JSON.stringify({ path: `f${i}`, note: 'é'.repeat(i % 7) })}\n`).join('');

async function read(session: http2.ClientHttp2Session): Promise<Array<{ path: string }>> {
  const out: Array<{ path: string }> = [];
  const stream = session.request({ ':path': '/v1/manifest' }, { endStream: true });
  for await (const e of readNdjson<{ path: string }>(stream, { peer: 'east', what: 'manifest', idleMs: 10_000, refusal: () => new Error('refused') })) out.push(e);
  return out;
}

describe('reading JSON lines as they come', () => {
  it('an answer ended normally yields every line, characters split between pieces put together', async () => {
    const session = await serve((stream) => {
      stream.respond({ ':status': 200 });
      const text = Buffer.from(lines(500) + ndjsonEndLine(500));
      // Pieces that cut through the two bytes of an é.
      for (let at = 0; at < text.length; at += 333) stream.write(text.subarray(at, at + 333));
      stream.end();
    });
    const got = await read(session);
    expect(got.map((e) => e.path)).toEqual(Array.from({ length: 500 }, (_, i) => `f${i}`));
  });

  it('an answer that ends without its end line is an error, not a shorter manifest', async () => {
    const session = await serve((stream) => {
      stream.respond({ ':status': 200 });
      stream.end(lines(20));
    });
    await expect(read(session)).rejects.toMatchObject({ code: 'MFS_UNREACHABLE', message: expect.stringMatching(/cut manifest short \(no end line after 20 lines\)/) });
  });

  it('an end line with another count, or a line after it, is an error', async () => {
    const miscounted = await serve((stream) => {
      stream.respond({ ':status': 200 });
      stream.end(lines(20) + ndjsonEndLine(21));
    });
    await expect(read(miscounted)).rejects.toMatchObject({ code: 'MFS_BAD_RESPONSE', message: expect.stringMatching(/after 20 lines, saying 21/) });
    const more = await serve((stream) => {
      stream.respond({ ':status': 200 });
      stream.end(lines(20) + ndjsonEndLine(20) + lines(1));
    });
    await expect(read(more)).rejects.toMatchObject({ code: 'MFS_BAD_RESPONSE', message: expect.stringMatching(/after its end line/) });
  });

  it('an answer cut by a reset with NO_ERROR (what a session torn down sends its streams) is an error', async () => {
    const session = await serve((stream) => {
      stream.respond({ ':status': 200 });
      stream.write(lines(20), () => stream.close(http2.constants.NGHTTP2_NO_ERROR));
    });
    await expect(read(session)).rejects.toMatchObject({ code: 'MFS_UNREACHABLE', message: expect.stringMatching(/manifest/) });
  });

  it('an answer the peer resets half way is an error, not a shorter manifest', async () => {
    const session = await serve((stream) => {
      stream.respond({ ':status': 200 });
      // As a peer ends an answer that failed half way (respondError): a reset.
      stream.on('error', () => undefined);
      stream.write(lines(20), () => stream.destroy(new Error('EIO while hashing')));
    });
    await expect(read(session)).rejects.toMatchObject({ code: 'MFS_UNREACHABLE', message: expect.stringMatching(/manifest/) });
  });
});

describe('a reader slower than the peer', () => {
  it('takes what the stream buffered a piece at a time, never all of it in one Buffer', async () => {
    const total = 8 * 1024 * 1024;
    const session = await serve((stream) => {
      stream.respond({ ':status': 200 });
      const chunk = Buffer.alloc(64 * 1024, 7);
      for (let at = 0; at < total; at += chunk.length) stream.write(chunk);
      stream.end();
    }, H2_STREAM_WINDOW_BYTES);
    const stream = session.request({ ':path': '/v1/manifest' }, { endStream: true });
    stream.pause();
    // The peer runs ahead while the reader is busy elsewhere: several pieces' worth waits in the stream.
    const deadline = Date.now() + 10_000;
    while (stream.readableLength < 4 * PIECE_BYTES) {
      if (Date.now() > deadline) throw new Error(`only ${stream.readableLength} bytes buffered`);
      await new Promise((r) => setTimeout(r, 10));
    }
    let bytes = 0;
    let largest = 0;
    for await (const piece of boundedPieces(stream, PIECE_BYTES)) {
      bytes += piece.length;
      largest = Math.max(largest, piece.length);
    }
    expect(bytes).toBe(total);
    expect(largest).toBeLessThanOrEqual(PIECE_BYTES);
  });

  it('a stream reset while pieces wait is an error once they are read', async () => {
    let reset!: () => void;
    const session = await serve((stream) => {
      stream.respond({ ':status': 200 });
      stream.on('error', () => undefined);
      stream.write(Buffer.alloc(PIECE_BYTES * 4, 1));
      reset = () => stream.destroy(new Error('EIO'));
    }, H2_STREAM_WINDOW_BYTES);
    const stream = session.request({ ':path': '/v1/manifest' }, { endStream: true });
    stream.on('error', () => undefined);
    stream.pause();
    const deadline = Date.now() + 10_000;
    while (stream.readableLength < 2 * PIECE_BYTES) {
      if (Date.now() > deadline) throw new Error(`only ${stream.readableLength} bytes buffered`);
      await new Promise((r) => setTimeout(r, 10));
    }
    reset();
    await new Promise<void>((r) => stream.once('close', () => r()));
    let bytes = 0;
    await expect(
      (async () => {
        for await (const piece of boundedPieces(stream, PIECE_BYTES)) bytes += piece.length;
      })(),
    ).rejects.toThrow();
    expect(bytes).toBeLessThanOrEqual(PIECE_BYTES * 2);
  });
});

describe('--from, as an interrupted verify prints it', () => {
  it('comes back as the same wire path, odd bytes, control characters and backslashes included', () => {
    for (const wire of ['plain/name', 'caf\udce9/x', 'tab\there', 'back\\slash', 'a\\x41b', 'é/ü']) {
      const printed = resumeForm(wire);
      expect(printed).not.toMatch(/[\u0000-\u001f\u007f\udc80-\udcff]/);
      expect(parseFromOption(printed)).toBe(wire);
    }
    expect(resumeForm('caf\udce9')).toBe('caf\\xe9');
    expect(parseFromOption('m/f5')).toBe('m/f5');
  });

  it('is taken as the walk names it: relative to the mount point or absolute inside it, without . or empty parts; .., paths outside and the mount point itself are refused', () => {
    const roots = ['/data', '/srv/data']; // as given (a symlink), and resolved
    for (const given of ['m/f5', './m/f5', 'm//f5', 'm/./f5/', '/data/m/f5', '/data/./m/f5', '//data/m/f5', '/srv/data/m/f5']) expect(parseFromOption(given, roots), given).toBe('m/f5');
    expect(() => parseFromOption('/elsewhere/m', roots)).toThrow(/inside the mount point \/data/);
    expect(() => parseFromOption('/database/m', roots)).toThrow(/inside the mount point/);
    expect(() => parseFromOption('m/../n', roots)).toThrow(/"\.\." is not taken/);
    expect(() => parseFromOption('/data/', roots)).toThrow(/the mount point itself/);
    expect(() => parseFromOption('.', roots)).toThrow(/the mount point itself/);
  });
});
