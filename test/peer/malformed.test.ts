import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { encodeFrame } from '../../src/protocol/codec.js';
import type { PeerClient } from '../../src/client/peer-client.js';
import { cleanupPeers, spawnPeer, TEST_TOKEN, type PeerProcess } from '../helpers/peer.js';
import { rawRequest } from '../helpers/raw.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { snapshotTree, type TreeSnapshot } from '../helpers/tree.js';

/** Malformed and oversized requests: a clear error, nothing changed, the peer stays up. */

let peer: PeerProcess;
let client: PeerClient;
let before: TreeSnapshot;
const headers = { 'mirrorfs-protocol': String(PROTOCOL_VERSION), authorization: `Bearer ${TEST_TOKEN}` };
const stamp = { mount: 'm1', epoch: 1 };

beforeAll(async () => {
  peer = await spawnPeer({ name: 'east' });
  client = peer.client();
  await client.handshake('m1', 1);
  await client.call({ op: 'mkdir', path: 'keep', mode: 0o755, ...stamp, seq: 1 });
  before = snapshotTree(peer.dataDir);
});

afterAll(async () => {
  await cleanupPeers();
  cleanupTmp();
});

function frameWithHeaderLength(length: number, rest: Buffer): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(length);
  return Buffer.concat([b, rest]);
}

const cases: [string, Buffer, RegExp][] = [
  ['an empty body', Buffer.alloc(0), /MFS_MALFORMED.*shorter than its length prefix/],
  ['a body shorter than the length prefix', Buffer.from([0, 1]), /MFS_MALFORMED/],
  ['a header length past the body', frameWithHeaderLength(100, Buffer.from('{}')), /MFS_MALFORMED.*runs past the body/],
  ['a huge header length', frameWithHeaderLength(0xffffffff, Buffer.from('{}')), /MFS_TOO_LARGE/],
  ['a header that is not JSON', frameWithHeaderLength(5, Buffer.from('{nope')), /MFS_MALFORMED.*not JSON/],
  ['a JSON array header', encodeFrame([1, 2]), /MFS_MALFORMED.*JSON object/],
  ['a JSON null header', encodeFrame(null), /MFS_MALFORMED/],
  ['an unknown operation', encodeFrame({ op: 'format-disk', ...stamp, seq: 2 }), /MFS_MALFORMED/],
  ['no op at all', encodeFrame({ path: 'x' }), /MFS_MALFORMED/],
  ['a missing field', encodeFrame({ op: 'write', ...stamp, seq: 2 }), /MFS_MALFORMED.*path/],
  ['a wrong type', encodeFrame({ op: 'mkdir', path: 'x', mode: '0755', ...stamp, seq: 2 }), /MFS_MALFORMED.*mode/],
  ['a negative offset', encodeFrame({ op: 'write', path: 'keep/f', offset: -1, ...stamp, seq: 2 }), /MFS_MALFORMED.*offset/],
  ['a fractional seq', encodeFrame({ op: 'mkdir', path: 'x', mode: 0o755, ...stamp, seq: 2.5 }), /MFS_MALFORMED.*seq/],
  ['a mode beyond 07777', encodeFrame({ op: 'chmod', path: 'keep', mode: 0o170777, ...stamp, seq: 2 }), /MFS_MALFORMED.*mode/],
  ['a bad mount id', encodeFrame({ op: 'mkdir', path: 'x', mode: 0o755, mount: '../../etc', epoch: 1, seq: 2 }), /MFS_MALFORMED.*mount/],
  ['a huge read', encodeFrame({ op: 'read', path: 'keep', offset: 0, length: 1e12 }), /MFS_MALFORMED.*length/],
];

describe('malformed requests', () => {
  it.each(cases)('%s gets HTTP 400/413 with a clear error', async (_label, body, message) => {
    const res = await rawRequest(peer.url, { path: '/v1/call', headers, body });
    expect([400, 413]).toContain(res.status);
    expect(res.body.toString()).toMatch(message);
  });

  it('a body over the size limit is refused without being buffered', async () => {
    const res = await rawRequest(peer.url, { path: '/v1/call', headers, body: Buffer.alloc(5 * 1024 * 1024) });
    expect(res.status === 413 || res.reset !== undefined).toBe(true);
  });

  it('unknown routes and methods get 404', async () => {
    expect((await rawRequest(peer.url, { method: 'GET', path: '/v1/call', headers })).status).toBe(404);
    expect((await rawRequest(peer.url, { method: 'POST', path: '/../../etc/passwd', headers })).status).toBe(404);
    expect((await rawRequest(peer.url, { method: 'DELETE', path: '/v1/status', headers })).status).toBe(404);
  });

  it('nothing changed and the peer still serves', async () => {
    expect(snapshotTree(peer.dataDir)).toEqual(before);
    expect((await client.status()).name).toBe('east');
    await client.call({ op: 'mkdir', path: 'still-works', mode: 0o755, ...stamp, seq: 3 });
    expect(peer.proc.exitCode).toBeNull();
  });
});
