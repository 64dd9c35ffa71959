import { randomBytes } from 'node:crypto';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import http2 from 'node:http2';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../src/protocol/codec.js';
import { PeerClient } from '../../src/client/peer-client.js';
import { CLEARTEXT } from '../../src/security/transport.js';
import { cleanupPeers, spawnPeer, TEST_TOKEN, type PeerProcess } from '../helpers/peer.js';
import { testMountKeyPair } from '../helpers/tls.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;

/**
 * A peer answers data reads of up to 4 MiB from reused buffers
 * (peer/reads.ts answerDataRead). Reuse must never let one answer carry another's
 * bytes, and a buffer whose answer was cut off is never reused.
 */
describe('read answers from reused buffers', () => {
  let peer: PeerProcess;
  let client: PeerClient;
  const file = randomBytes(8 * MiB + 333);
  const readBuffers = async () => (await client.status()).readBuffers!;

  beforeAll(async () => {
    peer = await spawnPeer({ name: 'reader' });
    writeFileSync(join(peer.dataDir, 'big'), file);
    client = peer.client();
    await client.handshake('m', 1);
  });

  afterAll(async () => {
    client?.close();
    await cleanupPeers();
    cleanupTmp();
  });

  /** `offsets.length` reads, `workers` at a time, each checked against the file's bytes. */
  async function readConcurrently(offsets: number[], workers: number, lengthOf: (n: number) => number): Promise<void> {
    let next = 0;
    await Promise.all(Array.from({ length: workers }, async () => {
      while (next < offsets.length) {
        const offset = offsets[next++]!;
        const length = lengthOf(next);
        const { payload } = await client.call({ op: 'read', path: 'big', offset, length });
        const expected = file.subarray(Math.min(offset, file.length), Math.min(offset + length, file.length));
        if (!payload.equals(expected)) throw new Error(`read at ${offset}+${length}: wrong bytes`);
      }
    }));
  }

  /** A pool's figures once every buffer is back. */
  async function settled(pool: 'readBuffers' | 'blockReadBuffers') {
    return waitFor(async () => {
      const b = (await client.status())[pool]!;
      return b.inUse === 0 ? b : null;
    }, `every ${pool} buffer back`);
  }

  it('answers many concurrent reads each with its own bytes, from a handful of buffers', async () => {
    const offsets = Array.from({ length: 96 }, (_, i) => (i * 1_234_567) % (file.length + MiB)); // some past the end
    await readConcurrently(offsets, 8, (n) => (n % 3 === 0 ? 4096 : MiB));
    const after = await settled('readBuffers');
    // 96 reads, 8 at a time: reuse keeps the count near the reads in flight, not the reads done.
    expect(after.allocated).toBeGreaterThan(0);
    expect(after.allocated).toBeLessThanOrEqual(12);
  });

  it('answers reads of a read-ahead block (up to 4 MiB) from buffers of their own, each with its own bytes', async () => {
    const offsets = Array.from({ length: 16 }, (_, i) => (i * 1_777_777) % (file.length + MiB));
    await readConcurrently(offsets, 2, (n) => (n % 2 === 0 ? 4 * MiB : 2 * MiB + 5));
    const after = await settled('blockReadBuffers');
    // 16 reads, 2 at a time, kept 2: reuse keeps the count at the reads in flight.
    expect(after.allocated).toBeGreaterThan(0);
    expect(after.allocated).toBeLessThanOrEqual(4);
  });

  it('never reuses the buffer of an answer that was cut off before it was written', async () => {
    const before = await readBuffers();
    expect(before.idle).toBeGreaterThan(0);
    // A client that grants only 1 KiB of flow-control window and does not read: the peer
    // cannot finish writing a 1 MiB answer; then the client cancels the stream.
    const session = http2.connect(peer.url, { ...testMountKeyPair(), rejectUnauthorized: false, settings: { initialWindowSize: 1024 } });
    try {
      const req = session.request({ ':method': 'POST', ':path': '/v1/call', authorization: `Bearer ${TEST_TOKEN}`, 'mirrorfs-protocol': String(PROTOCOL_VERSION) });
      const answered = new Promise<void>((resolve, reject) => {
        req.once('response', () => resolve());
        req.once('error', reject);
        setTimeout(() => reject(new Error('no response headers within 10 s')), 10_000).unref();
      });
      req.pause();
      req.end(encodeFrame({ op: 'read', path: 'big', offset: 0, length: MiB }));
      await answered;
      await waitFor(async () => (await readBuffers()).inUse === 1 || null, 'the cut-off answer holding its buffer');
      req.close(http2.constants.NGHTTP2_CANCEL);
      const after = await settled('readBuffers'); // the cut-off answer closed
      expect(after.idle).toBe(before.idle - 1); // taken from the free ones, and not given back
    } finally {
      session.destroy();
    }
    // Reads go on, correct, from the rest.
    const { payload } = await client.call({ op: 'read', path: 'big', offset: 5 * MiB, length: MiB });
    expect(payload.equals(file.subarray(5 * MiB, 6 * MiB))).toBe(true);
  });

  it('over cleartext gives each read a new buffer (a socket write may still read it after the stream closed)', async () => {
    const plainPeer = await spawnPeer({ name: 'plain', extraArgs: ['--insecure-cleartext'] });
    writeFileSync(join(plainPeer.dataDir, 'big'), file);
    const plain = new PeerClient(plainPeer.url.replace('https:', 'http:'), { name: 'plain', token: TEST_TOKEN, transport: CLEARTEXT });
    try {
      await plain.handshake('m', 1);
      for (let i = 0; i < 4; i++) {
        const { payload } = await plain.call({ op: 'read', path: 'big', offset: i * MiB, length: MiB });
        expect(payload.equals(file.subarray(i * MiB, (i + 1) * MiB))).toBe(true);
      }
      expect((await plain.status()).readBuffers).toEqual({ allocated: 0, inUse: 0, idle: 0 });
    } finally {
      plain.close();
    }
  });
});
