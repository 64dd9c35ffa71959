import { existsSync, readFileSync } from 'node:fs';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame } from '../../src/protocol/codec.js';
import type { PeerClient } from '../../src/client/peer-client.js';
import { cleanupPeers, spawnPeer, TEST_TOKEN, type PeerProcess } from '../helpers/peer.js';
import { rawRequest } from '../helpers/raw.js';
import { Stamper } from '../helpers/stamp.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { issuePullTicket } from '../../src/security/pull-ticket.js';
import { testMountKeyPair } from '../helpers/tls.js';

/** Authentication, protocol versions and epochs: who may change a peer, and when. */

let peer: PeerProcess;
let owner: PeerClient;
const stamp = new Stamper('mount-a');

beforeAll(async () => {
  peer = await spawnPeer({ name: 'east' });
  owner = peer.client();
});

afterAll(async () => {
  await cleanupPeers();
  cleanupTmp();
});

describe('authentication', () => {
  it('a wrong token is refused for every route, and changes nothing', async () => {
    const intruder = peer.client({ token: 'not-the-right-token-at-all' });
    await expect(intruder.handshake('intruder', 1)).rejects.toMatchObject({ code: 'MFS_AUTH', errno: 'EACCES' });
    await expect(intruder.call({ op: 'mkdir', path: 'x', mode: 0o755, mount: 'intruder', epoch: 1, seq: 1 })).rejects.toMatchObject({ code: 'MFS_AUTH' });
    await expect(intruder.call({ op: 'getattr', path: '' })).rejects.toMatchObject({ code: 'MFS_AUTH' });
    await expect(intruder.status()).rejects.toMatchObject({ code: 'MFS_AUTH' });
    await expect(intruder.manifest()).rejects.toMatchObject({ code: 'MFS_AUTH' });
    expect(existsSync(join(peer.dataDir, 'x'))).toBe(false);
    expect((await owner.status()).epoch).toBe(0);
    expect(peer.stderr()).toContain('refused request with missing or wrong token');
  });

  it('a missing or malformed Authorization header is refused', async () => {
    const body = encodeFrame({ op: 'handshake', protocol: PROTOCOL_VERSION, mount: 'm', epoch: 5 });
    for (const authorization of [undefined, '', TEST_TOKEN, `Basic ${TEST_TOKEN}`, `Bearer ${TEST_TOKEN}x`, 'Bearer ']) {
      const headers: Record<string, string> = { 'mirrorfs-protocol': String(PROTOCOL_VERSION) };
      if (authorization !== undefined) headers.authorization = authorization;
      const res = await rawRequest(peer.url, { path: '/v1/call', headers, body });
      expect(res.status, `authorization ${JSON.stringify(authorization)}`).toBe(401);
    }
    expect((await owner.status()).epoch).toBe(0);
  });
});

describe('protocol versions', () => {
  it('a client speaking another version is refused with a message that says what to do', async () => {
    const res = await rawRequest(peer.url, {
      path: '/v1/call',
      headers: { 'mirrorfs-protocol': '1', authorization: `Bearer ${TEST_TOKEN}` },
      body: encodeFrame({ op: 'handshake', protocol: 1, mount: 'm', epoch: 1 }),
    });
    expect(res.status).toBe(426);
    const { error } = decodeFrame(res.body).header as { error: { code: string; message: string } };
    expect(error.code).toBe('MFS_PROTOCOL_MISMATCH');
    expect(error.message).toMatch(new RegExp(`protocol ${PROTOCOL_VERSION}, client sent "1".*same mirrorfs version`));
  });

  it('a handshake announcing another version is refused', async () => {
    await expect(owner.call({ op: 'handshake', protocol: 99, mount: 'm', epoch: 1 })).rejects.toMatchObject({ code: 'MFS_PROTOCOL_MISMATCH', errno: 'EPROTO' });
  });
});

describe('epochs: one writer', () => {
  it('changes before any handshake are refused', async () => {
    await expect(owner.call(stamp.next({ op: 'mkdir', path: 'early', mode: 0o755 }))).rejects.toMatchObject({ code: 'MFS_NO_HANDSHAKE' });
    expect(existsSync(join(peer.dataDir, 'early'))).toBe(false);
  });

  it('the owner of an epoch writes; another mount at the same epoch is refused', async () => {
    expect(await owner.handshake('mount-a', 1)).toMatchObject({ epoch: 1, owner: 'mount-a', peer: { name: 'east' } });
    await owner.call(stamp.next({ op: 'mkdir', path: 'by-a', mode: 0o755 }));
    const other = peer.client();
    await expect(other.handshake('mount-b', 1)).rejects.toMatchObject({ code: 'MFS_NOT_OWNER', message: expect.stringContaining('mount-a') });
    await expect(other.call({ op: 'mkdir', path: 'by-b', mode: 0o755, mount: 'mount-b', epoch: 1, seq: 1 })).rejects.toMatchObject({ code: 'MFS_NOT_OWNER' });
    expect(existsSync(join(peer.dataDir, 'by-b'))).toBe(false);
  });

  it('a higher epoch takes over, and the old epoch is fenced out', async () => {
    const other = peer.client();
    expect(await other.handshake('mount-b', 2)).toMatchObject({ epoch: 2, owner: 'mount-b' });
    await expect(owner.call(stamp.next({ op: 'mkdir', path: 'late-a', mode: 0o755 }))).rejects.toMatchObject({ code: 'MFS_FENCED', errno: 'EROFS' });
    await expect(owner.handshake('mount-a', 1)).rejects.toMatchObject({ code: 'MFS_FENCED' });
    expect(existsSync(join(peer.dataDir, 'late-a'))).toBe(false);
    // the epoch survives a restart
    const again = await peer.restart();
    peer = again;
    owner = again.client();
    expect((await owner.status()).epoch).toBe(2);
    await expect(owner.call(stamp.next({ op: 'mkdir', path: 'late-a', mode: 0o755 }))).rejects.toMatchObject({ code: 'MFS_FENCED' });
  });
});

describe('repair, adopt, settle and pull', () => {
  it('are refused unless they come from the owner at its epoch, and change nothing then', async () => {
    const p = await spawnPeer({ name: 'south' });
    const src = await spawnPeer({ name: 'north' });
    const c = p.client();
    const s = src.client();
    await c.handshake('owner-mount', 3);
    await s.handshake('owner-mount', 3);
    // Over TLS a pull reads with a ticket the owner signs (security/pull-ticket.ts), never with the source's token.
    const ticket = issuePullTicket({ source: (await s.status()).id, mount: 'owner-mount', epoch: 3, target: (await c.status()).certificate! }, testMountKeyPair().key);
    const from = { url: src.url, ticket };
    for (const [mount, epoch, code] of [['other-mount', 3, 'MFS_NOT_OWNER'], ['owner-mount', 2, 'MFS_FENCED']] as const) {
      await expect(c.repair(mount, epoch, { op: 'mkdir', path: 'r', mode: 0o755 })).rejects.toMatchObject({ code });
      await expect(c.adopt(mount, epoch, 1, '{"op":"mkdir"}', '{"ok":true}')).rejects.toMatchObject({ code });
      await expect(c.settle(mount, epoch, 5)).rejects.toMatchObject({ code });
      await expect(c.pull(mount, epoch, from, 10_000)).rejects.toMatchObject({ code });
    }
    expect(existsSync(join(p.dataDir, 'r'))).toBe(false);
    expect((await c.progress('owner-mount')).settledThrough).toBe(0);
    // the owner may: a pull makes this tree equal to the source's
    await s.repair('owner-mount', 3, { op: 'put-file', path: 'copied', mode: 0o640, uid: 0, gid: 0, mtimeMs: 1_000_000 }, Buffer.from('from north'));
    const done = await c.pull('owner-mount', 3, from, 10_000);
    expect(done).toMatchObject({ filesCopied: 1, bytesCopied: 10 });
    expect(readFileSync(join(p.dataDir, 'copied'), 'utf8')).toBe('from north');
    expect((await c.status()).pull).toBeNull();
  });
});
