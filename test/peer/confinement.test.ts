import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MutationInput, RequestInput } from '../../src/protocol/ops.js';
import type { PeerClient } from '../../src/client/peer-client.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { Stamper } from '../helpers/stamp.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { snapshotTree, type TreeSnapshot } from '../helpers/tree.js';

/**
 * Escape attempts: every request here tries to read or change something outside
 * the data directory. Each must fail with a clear error, change nothing outside
 * (checked by snapshot, including modes and times) and leave the peer serving.
 */

let peer: PeerProcess;
let client: PeerClient;
let outside: string;
let before: TreeSnapshot;
let beforeTimes: string;
const stamp = new Stamper();

function outsideTimes(): string {
  return ['secret', 'sub', 'sub/inner'].map((p) => {
    const st = statSync(join(outside, p));
    return `${p}:${st.mtimeMs}:${st.ctimeMs}:${st.uid}:${st.mode}`;
  }).join(',');
}

beforeAll(async () => {
  outside = tmpDir('mirrorfs-outside-');
  writeFileSync(join(outside, 'secret'), 'do not touch');
  mkdirSync(join(outside, 'sub'));
  writeFileSync(join(outside, 'sub/inner'), 'inner');
  peer = await spawnPeer({ name: 'east' });
  client = peer.client();
  await client.handshake(stamp.mount, 1);
  // Planted by someone with shell access to the filer (or by a mirrored symlink): the
  // peer must never follow them.
  symlinkSync(outside, join(peer.dataDir, 'outdir'));
  symlinkSync(join(outside, 'secret'), join(peer.dataDir, 'outfile'));
  mkdirSync(join(peer.dataDir, 'inside'));
  writeFileSync(join(peer.dataDir, 'inside/ok'), 'ok');
  before = snapshotTree(outside);
  beforeTimes = outsideTimes();
});

afterAll(async () => {
  await cleanupPeers();
  cleanupTmp();
});

const badPaths = [
  '../escape', 'inside/../../escape', '/etc/passwd', '/tmp/x', 'a\0b', '.', './x', 'inside//ok', 'inside/', '',
  'x'.repeat(256), `${'d/'.repeat(2100)}x`, '.mirrorfs/peer.db', '.mirrorfs', 'outdir/secret', 'outdir/sub/inner', 'outdir/new',
];

const mutationsFor = (p: string): MutationInput[] => [
  stamp.next({ op: 'create', path: p, mode: 0o644 }),
  stamp.next({ op: 'write', path: p, offset: 0 }),
  stamp.next({ op: 'truncate', path: p, size: 0 }),
  stamp.next({ op: 'unlink', path: p }),
  stamp.next({ op: 'mkdir', path: p, mode: 0o755 }),
  stamp.next({ op: 'rmdir', path: p }),
  stamp.next({ op: 'rename', from: p, to: 'inside/stolen' }),
  stamp.next({ op: 'rename', from: 'inside/ok', to: p }),
  stamp.next({ op: 'symlink', target: '/etc', path: p }),
  stamp.next({ op: 'link', from: p, path: 'inside/hard' }),
  stamp.next({ op: 'link', from: 'inside/ok', path: p }),
  stamp.next({ op: 'chmod', path: p, mode: 0o777 }),
  stamp.next({ op: 'chown', path: p, uid: 1, gid: 1 }),
  stamp.next({ op: 'utimens', path: p, atimeMs: 0, mtimeMs: 0 }),
  stamp.next({ op: 'setxattr', path: p, name: 'user.x' }),
  stamp.next({ op: 'removexattr', path: p, name: 'user.x' }),
];

const readsFor = (p: string): RequestInput[] => [
  { op: 'getattr', path: p }, { op: 'readdir', path: p }, { op: 'read', path: p, offset: 0, length: 100 },
  { op: 'readlink', path: p }, { op: 'getxattr', path: p, name: 'user.x' }, { op: 'listxattr', path: p },
  { op: 'read-many', paths: ['inside/ok', p] },
];

describe('requests that try to leave the data directory', () => {
  it.each(badPaths.filter((p) => p !== ''))('changing operations on %j are refused and change nothing', async (p) => {
    for (const req of mutationsFor(p)) {
      const err = await client.call(req, Buffer.from('evil')).then(() => null, (e: unknown) => e);
      expect(err, `${req.op} ${JSON.stringify(p)} must fail`).toMatchObject({ errno: expect.stringMatching(/^E[A-Z]+$/) });
      expect((err as Error).message).toMatch(/MFS_|E[A-Z]+/);
    }
    expect(snapshotTree(outside)).toEqual(before);
    expect(outsideTimes()).toBe(beforeTimes);
  });

  it.each(badPaths.filter((p) => p !== ''))('reads of %j reveal nothing from outside', async (p) => {
    for (const req of readsFor(p)) {
      const out = await client.call(req).then((r) => r, (e: unknown) => e as Error);
      if (!(out instanceof Error)) {
        // Only reads of the symlink itself may succeed; they show the link, never the target's data.
        expect(String(JSON.stringify(out.result)) + out.payload.toString()).not.toContain('do not touch');
        expect(String(JSON.stringify(out.result))).not.toContain('inner');
      }
    }
  });

  it('operations on a symlink that points outside act on the link or are refused, never on the target', async () => {
    const outfile = stamp;
    await expect(client.call(outfile.next({ op: 'write', path: 'outfile', offset: 0 }), Buffer.from('pwned'))).rejects.toMatchObject({ errno: 'ELOOP' });
    await expect(client.call(outfile.next({ op: 'truncate', path: 'outfile', size: 0 }))).rejects.toMatchObject({ errno: 'ELOOP' });
    await expect(client.call(outfile.next({ op: 'chmod', path: 'outfile', mode: 0o777 }))).rejects.toMatchObject({ errno: 'ELOOP' });
    await expect(client.call(outfile.next({ op: 'setxattr', path: 'outfile', name: 'user.x' }), Buffer.from('v'))).rejects.toMatchObject({ errno: 'ELOOP' });
    await expect(client.call(outfile.next({ op: 'create', path: 'outfile', mode: 0o644, exclusive: false }))).rejects.toMatchObject({ errno: 'ELOOP' });
    await expect(client.call({ op: 'read', path: 'outfile', offset: 0, length: 10 })).rejects.toMatchObject({ errno: 'ELOOP' });
    await expect(client.call({ op: 'read-many', paths: ['outfile'] })).rejects.toMatchObject({ errno: 'ELOOP' });
    await expect(client.call({ op: 'readdir', path: 'outdir' })).rejects.toMatchObject({ errno: 'ENOTDIR' });
    // chown, utimens and getattr act on the link itself
    await client.call(outfile.next({ op: 'chown', path: 'outfile', uid: 7, gid: 7 }));
    await client.call(outfile.next({ op: 'utimens', path: 'outfile', atimeMs: 0, mtimeMs: 0 }));
    expect((await client.call<{ type: string }>({ op: 'getattr', path: 'outfile' })).result.type).toBe('symlink');
    expect(snapshotTree(outside)).toEqual(before);
    expect(outsideTimes()).toBe(beforeTimes);
  });

  it('the root of the tree cannot be removed or renamed', async () => {
    await expect(client.call(stamp.next({ op: 'rmdir', path: '' }))).rejects.toMatchObject({ errno: 'EBUSY' });
    await expect(client.call(stamp.next({ op: 'rename', from: '', to: 'x' }))).rejects.toMatchObject({ errno: 'EBUSY' });
  });

  it('the peer is still serving and the legitimate tree is intact', async () => {
    expect(readFileSync(join(peer.dataDir, 'inside/ok'), 'utf8')).toBe('ok');
    expect((await client.status()).name).toBe('east');
    expect(peer.proc.exitCode).toBeNull();
  });
});
