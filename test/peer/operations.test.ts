import { existsSync, lstatSync, readFileSync, readlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { join } from 'node:path';
import { getAttributeSync, listAttributesSync } from 'fs-xattr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerClient } from '../../src/client/peer-client.js';
import type { WireStat } from '../../src/protocol/ops.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { Stamper } from '../helpers/stamp.js';
import { makedev } from '../../src/store/posix.js';
import { cleanupTmp } from '../helpers/tmp.js';

let peer: PeerProcess;
let client: PeerClient;
const stamp = new Stamper();
const at = (p: string) => join(peer.dataDir, p);

beforeAll(async () => {
  // No background flush in the test's time (the fsync test counts flushes: a timer's would race it).
  peer = await spawnPeer({ name: 'east', extraArgs: ['--flush-interval', '60000'] });
  client = peer.client();
  const hs = await client.handshake(stamp.mount, stamp.epoch);
  expect(hs).toMatchObject({ protocol: PROTOCOL_VERSION, epoch: 1, owner: stamp.mount });
});

afterAll(async () => {
  await cleanupPeers();
  cleanupTmp();
});

describe('every changing operation over real HTTP/2 lands in the data directory', () => {
  it('new entries belong to the owner the request names; a setgid directory gives its group (and to a directory, the bit)', async () => {
    await client.call(stamp.next({ op: 'mkdir', path: 'own', mode: 0o755, uid: 2001, gid: 2001 }));
    await client.call(stamp.next({ op: 'create', path: 'own/f', mode: 0o4755, uid: 2001, gid: 2001 }));
    await client.call(stamp.next({ op: 'symlink', path: 'own/l', target: 'f', uid: 2001, gid: 2001 }));
    expect(lstatSync(at('own'))).toMatchObject({ uid: 2001, gid: 2001 });
    // chown clears set-ID bits: the mode is set after the owner
    expect(lstatSync(at('own/f'))).toMatchObject({ uid: 2001, gid: 2001, mode: 0o104755 });
    expect(lstatSync(at('own/l'))).toMatchObject({ uid: 2001, gid: 2001 });
    await client.call(stamp.next({ op: 'chown', path: 'own', uid: 2001, gid: 2100 }));
    await client.call(stamp.next({ op: 'chmod', path: 'own', mode: 0o2775 }));
    await client.call(stamp.next({ op: 'create', path: 'own/g', mode: 0o644, uid: 2002, gid: 2002 }));
    await client.call(stamp.next({ op: 'mkdir', path: 'own/d', mode: 0o755, uid: 2002, gid: 2002 }));
    expect(lstatSync(at('own/g'))).toMatchObject({ uid: 2002, gid: 2100 });
    expect(lstatSync(at('own/d'))).toMatchObject({ uid: 2002, gid: 2100, mode: 0o42755 });
    // without an owner (an older mount) an entry stays the peer process's
    await client.call(stamp.next({ op: 'create', path: 'own/root', mode: 0o644 }));
    expect(lstatSync(at('own/root'))).toMatchObject({ uid: process.getuid!(), gid: 2100 });
  });

  it('mknod makes FIFOs, sockets and device nodes; fallocate reserves, punches and zeroes; utimens keeps nanoseconds', async () => {
    await client.call(stamp.next({ op: 'mknod', path: 'fifo', kind: 'fifo', mode: 0o640, uid: 2001, gid: 2001 }));
    await client.call(stamp.next({ op: 'mknod', path: 'dev', kind: 'char', mode: 0o600, rdev: makedev(1, 3) }));
    const sock = stamp.next({ op: 'mknod', path: 'sock', kind: 'socket', mode: 0o755 });
    await client.call(sock);
    expect(lstatSync(at('fifo'))).toMatchObject({ uid: 2001, mode: 0o010640 });
    expect(lstatSync(at('dev')).isCharacterDevice()).toBe(true);
    expect(lstatSync(at('dev')).rdev).toBe(makedev(1, 3));
    expect(lstatSync(at('sock')).isSocket()).toBe(true);
    // a re-send is answered from the record; a second mknod of the name is EEXIST
    await expect(client.call(sock)).resolves.toBeDefined();
    await expect(client.call(stamp.next({ op: 'mknod', path: 'sock', kind: 'fifo', mode: 0o644 }))).rejects.toMatchObject({ errno: 'EEXIST' });

    // A special file is changed by path and never opened: opening a FIFO would block the
    // peer for ever, and opening a device acts on it. Data operations on one are refused.
    for (const path of ['fifo', 'dev']) {
      await client.call(stamp.next({ op: 'chmod', path, mode: 0o620 }));
      await client.call(stamp.next({ op: 'chown', path, uid: 2005, gid: 2006 }));
      await client.call(stamp.next({ op: 'utimens', path, atimeNs: '1000000000000000000', mtimeNs: '1000000000000000001' }));
      expect(lstatSync(at(path), { bigint: true })).toMatchObject({ uid: 2005n, gid: 2006n, mtimeNs: 1000000000000000001n });
      expect(lstatSync(at(path)).mode & 0o7777).toBe(0o620);
      await expect(client.call(stamp.next({ op: 'write', path, offset: 0 }), Buffer.from('x'))).rejects.toMatchObject({ errno: 'EINVAL' });
      await expect(client.call({ op: 'read', path, offset: 0, length: 10 })).rejects.toMatchObject({ errno: 'EINVAL' });
    }
    await client.call(stamp.next({ op: 'create', path: 'alloc', mode: 0o644 }));
    await client.call(stamp.next({ op: 'write', path: 'alloc', offset: 0 }), Buffer.alloc(8192, 0x61));
    await client.call(stamp.next({ op: 'fallocate', path: 'alloc', mode: 0, offset: 0, length: 65536 }));
    expect(lstatSync(at('alloc')).size).toBe(65536);
    await client.call(stamp.next({ op: 'fallocate', path: 'alloc', mode: 1, offset: 0, length: 1 << 20 })); // KEEP_SIZE
    expect(lstatSync(at('alloc')).size).toBe(65536);
    expect(lstatSync(at('alloc')).blocks * 512).toBeGreaterThanOrEqual(1 << 20);
    await client.call(stamp.next({ op: 'fallocate', path: 'alloc', mode: 3, offset: 0, length: 4096 })); // PUNCH_HOLE | KEEP_SIZE
    expect(readFileSync(at('alloc')).subarray(0, 8192)).toEqual(Buffer.concat([Buffer.alloc(4096), Buffer.alloc(4096, 0x61)]));
    // a mode the FUSE kernel never passes on is malformed, and changes nothing
    await expect(client.call(stamp.next({ op: 'fallocate', path: 'alloc', mode: 8, offset: 0, length: 4096 }))).rejects.toMatchObject({ code: 'MFS_MALFORMED' });

    await client.call(stamp.next({ op: 'utimens', path: 'alloc', atimeNs: null, mtimeNs: '1000000000123456789' }));
    await client.call(stamp.next({ op: 'utimens', path: 'fifo', atimeNs: '-1500000000', mtimeNs: '4102444800000000001' }));
    expect(lstatSync(at('alloc'), { bigint: true }).mtimeNs).toBe(1000000000123456789n);
    expect(lstatSync(at('fifo'), { bigint: true })).toMatchObject({ atimeNs: -1500000000n, mtimeNs: 4102444800000000001n });
    // the attributes in the answer carry the nanoseconds too
    const st = await client.call(stamp.next({ op: 'chmod', path: 'alloc', mode: 0o600 }));
    expect((st.result as { stats: Record<string, WireStat> }).stats.alloc!.mtimeNs).toBe('1000000000123456789');
  });

  it('create, write, truncate', async () => {
    const c = await client.call(stamp.next({ op: 'create', path: 'a.txt', mode: 0o640 }));
    expect(lstatSync(at('a.txt')).mode & 0o7777).toBe(0o640);
    // The answer tells whether the file is new, and the attributes of what the change touched.
    expect(c.result).toMatchObject({ created: true, stats: { 'a.txt': { type: 'file', size: 0, nlink: 1, mode: 0o100640 }, '': { type: 'dir', ino: lstatSync(at('')).ino } } });
    const writeReq = stamp.next({ op: 'write', path: 'a.txt', offset: 0 });
    const w = await client.call(writeReq, Buffer.from('hello world'));
    expect(w.result).toEqual({ written: 11, stats: { 'a.txt': expect.objectContaining({ size: 11, ino: lstatSync(at('a.txt')).ino }) } });
    // A re-send is answered from the record, which keeps the outcome but not the attributes.
    expect((await client.call(writeReq, Buffer.from('hello world'))).result).toEqual({ written: 11 });
    await client.call(stamp.next({ op: 'write', path: 'a.txt', offset: 6 }), Buffer.from('WORLD!'));
    expect(readFileSync(at('a.txt'), 'utf8')).toBe('hello WORLD!');
    await client.call(stamp.next({ op: 'truncate', path: 'a.txt', size: 5 }));
    expect(readFileSync(at('a.txt'), 'utf8')).toBe('hello');
    await client.call(stamp.next({ op: 'truncate', path: 'a.txt', size: 8 }));
    expect(readFileSync(at('a.txt'))).toEqual(Buffer.from('hello\0\0\0'));
    // a write far past EOF leaves a hole, as on ext4
    await client.call(stamp.next({ op: 'write', path: 'a.txt', offset: 1 << 20 }), Buffer.from('x'));
    expect(lstatSync(at('a.txt')).size).toBe((1 << 20) + 1);
  });

  it('create exclusive on an existing name fails with EEXIST; non-exclusive succeeds', async () => {
    await expect(client.call(stamp.next({ op: 'create', path: 'a.txt', mode: 0o644 }))).rejects.toMatchObject({ errno: 'EEXIST' });
    const again = await client.call(stamp.next({ op: 'create', path: 'a.txt', mode: 0o600, exclusive: false }));
    expect(again.result).toMatchObject({ created: false });
    expect(lstatSync(at('a.txt')).mode & 0o7777).toBe(0o600);
  });

  it('mkdir, rmdir, and their errors', async () => {
    await client.call(stamp.next({ op: 'mkdir', path: 'd', mode: 0o750 }));
    expect(lstatSync(at('d')).isDirectory()).toBe(true);
    expect(lstatSync(at('d')).mode & 0o7777).toBe(0o750);
    await client.call(stamp.next({ op: 'mkdir', path: 'd/e', mode: 0o755 }));
    await expect(client.call(stamp.next({ op: 'mkdir', path: 'd', mode: 0o755 }))).rejects.toMatchObject({ errno: 'EEXIST' });
    await expect(client.call(stamp.next({ op: 'rmdir', path: 'd' }))).rejects.toMatchObject({ errno: 'ENOTEMPTY' });
    await client.call(stamp.next({ op: 'rmdir', path: 'd/e' }));
    expect(existsSync(at('d/e'))).toBe(false);
    await expect(client.call(stamp.next({ op: 'mkdir', path: 'nope/x', mode: 0o755 }))).rejects.toMatchObject({ errno: 'ENOENT' });
    // exact modes whatever the peer's umask (022 here)
    await client.call(stamp.next({ op: 'mkdir', path: 'open', mode: 0o777 }));
    expect(lstatSync(at('open')).mode & 0o7777).toBe(0o777);
    await client.call(stamp.next({ op: 'create', path: 'open/f', mode: 0o666 }));
    expect(lstatSync(at('open/f')).mode & 0o7777).toBe(0o666);
  });

  it('rename files and directories, replacing a target', async () => {
    await client.call(stamp.next({ op: 'create', path: 'd/r1', mode: 0o644 }));
    await client.call(stamp.next({ op: 'write', path: 'd/r1', offset: 0 }), Buffer.from('one'));
    await client.call(stamp.next({ op: 'create', path: 'd/r2', mode: 0o644 }));
    await client.call(stamp.next({ op: 'rename', from: 'd/r1', to: 'd/r2' }));
    expect(existsSync(at('d/r1'))).toBe(false);
    expect(readFileSync(at('d/r2'), 'utf8')).toBe('one');
    await client.call(stamp.next({ op: 'rename', from: 'd', to: 'd2' }));
    expect(readFileSync(at('d2/r2'), 'utf8')).toBe('one');
    await expect(client.call(stamp.next({ op: 'rename', from: 'missing', to: 'x' }))).rejects.toMatchObject({ errno: 'ENOENT' });
  });

  it('unlink', async () => {
    await client.call(stamp.next({ op: 'unlink', path: 'd2/r2' }));
    expect(existsSync(at('d2/r2'))).toBe(false);
    await expect(client.call(stamp.next({ op: 'unlink', path: 'd2/r2' }))).rejects.toMatchObject({ errno: 'ENOENT' });
    await expect(client.call(stamp.next({ op: 'unlink', path: 'd2' }))).rejects.toMatchObject({ errno: expect.stringMatching(/EISDIR|EPERM/) });
  });

  it('symlink (target stored verbatim, even pointing outside) and link', async () => {
    await client.call(stamp.next({ op: 'symlink', target: '/etc/passwd', path: 'ln' }));
    expect(readlinkSync(at('ln'))).toBe('/etc/passwd');
    await client.call(stamp.next({ op: 'create', path: 'orig', mode: 0o644 }));
    await client.call(stamp.next({ op: 'write', path: 'orig', offset: 0 }), Buffer.from('shared'));
    await client.call(stamp.next({ op: 'link', from: 'orig', path: 'hard' }));
    expect(lstatSync(at('hard')).ino).toBe(lstatSync(at('orig')).ino);
    expect(lstatSync(at('orig')).nlink).toBe(2);
  });

  it('chmod, chown, utimens', async () => {
    await client.call(stamp.next({ op: 'chmod', path: 'orig', mode: 0o4711 }));
    expect(lstatSync(at('orig')).mode & 0o7777).toBe(0o4711);
    await client.call(stamp.next({ op: 'chown', path: 'orig', uid: 1234, gid: 5678 }));
    expect(lstatSync(at('orig'))).toMatchObject({ uid: 1234, gid: 5678 });
    await client.call(stamp.next({ op: 'chown', path: 'ln', uid: 42, gid: -1 }));
    expect(lstatSync(at('ln')).uid).toBe(42);
    await client.call(stamp.next({ op: 'utimens', path: 'orig', atimeMs: 1_000_000_000_000, mtimeMs: 1_500_000_000_500 }));
    const st = lstatSync(at('orig'));
    expect(Math.round(st.mtimeMs)).toBe(1_500_000_000_500);
    expect(Math.round(st.atimeMs)).toBe(1_000_000_000_000);
  });

  it('setxattr (any/create/replace), removexattr', async () => {
    await client.call(stamp.next({ op: 'setxattr', path: 'orig', name: 'user.color' }), Buffer.from('blue'));
    expect(getAttributeSync(at('orig'), 'user.color').toString()).toBe('blue');
    await expect(client.call(stamp.next({ op: 'setxattr', path: 'orig', name: 'user.color', flags: 'create' }), Buffer.from('x'))).rejects.toMatchObject({ errno: 'EEXIST' });
    await expect(client.call(stamp.next({ op: 'setxattr', path: 'orig', name: 'user.none', flags: 'replace' }), Buffer.from('x'))).rejects.toMatchObject({ errno: 'ENODATA' });
    await client.call(stamp.next({ op: 'setxattr', path: 'orig', name: 'user.bin', flags: 'create' }), Buffer.from([0, 1, 2, 255]));
    expect(getAttributeSync(at('orig'), 'user.bin')).toEqual(Buffer.from([0, 1, 2, 255]));
    await client.call(stamp.next({ op: 'removexattr', path: 'orig', name: 'user.color' }));
    expect(listAttributesSync(at('orig'))).not.toContain('user.color');
    await expect(client.call(stamp.next({ op: 'removexattr', path: 'orig', name: 'user.color' }))).rejects.toMatchObject({ errno: 'ENODATA' });
  });

  it('fsync is a barrier: it answers once everything applied is durable, with the mount\'s applied and durable points', async () => {
    // Earlier tests here left seqs that were refused before they were recorded (gaps, which hold the
    // applied point back, as a change still on its way would): settle the history, as a mount does.
    await client.settle(stamp.mount, stamp.epoch, stamp.seq);
    await client.call(stamp.next({ op: 'create', path: 'barrier', mode: 0o644 }));
    const applied = stamp.seq;
    const report = await client.fsync(stamp.mount);
    expect(report.appliedThrough).toBe(applied);
    expect(report.durableThrough).toBe(applied);
    expect(report.oldestUndurableAgeMs).toBeNull();
    // One entry: flushed by itself (the durable point does not move); one that is gone: everything.
    const status = async () => (await client.status()).flush;
    const was = await status();
    await client.call(stamp.next({ op: 'write', path: 'barrier', offset: 0 }), Buffer.from('x'));
    await client.fsync(stamp.mount, { path: 'barrier', datasync: true });
    expect((await status()).changeFlushes.data).toBe(was.changeFlushes.data + 1);
    expect((await status()).flushes).toBe(was.flushes);
    await client.fsync(stamp.mount, { path: 'no/such/file' });
    expect((await status()).flushes).toBe(was.flushes + 1);
    expect((await status()).mounts[stamp.mount]!.durableThrough).toBe(stamp.seq);
    // A re-send with another commit level is the same change (durable is not part of what it is recorded under).
    const again = { ...stamp.next({ op: 'create', path: 'barrier2', mode: 0o644 }) };
    await client.call(again);
    await client.call({ ...again, durable: true });
  });
});

describe('every read the mount needs', () => {
  it('getattr, readdir, read, readlink, getxattr, listxattr, statfs', async () => {
    mkdirSync(at('r'));
    writeFileSync(at('r/f'), 'abcdefghij');
    const st = (await client.call<WireStat>({ op: 'getattr', path: 'r/f' })).result;
    expect(st).toMatchObject({ type: 'file', size: 10 });
    const root = (await client.call<{ names: string[] }>({ op: 'readdir', path: '' })).result;
    expect(root.names).toContain('r');
    expect(root.names).not.toContain('.mirrorfs');
    const withAttrs = (await client.call<{ entries: { name: string; stat: WireStat; xattrs?: string[] }[] }>({ op: 'readdir', path: 'r', withAttrs: true })).result;
    // Each entry's xattr names come too: the mount answers the absent ones itself (ls -l).
    expect(withAttrs.entries).toEqual([{ name: 'f', stat: expect.objectContaining({ size: 10, type: 'file' }), xattrs: [] }]);
    const read = await client.call({ op: 'read', path: 'r/f', offset: 2, length: 100 });
    expect(read.payload.toString()).toBe('cdefghij');
    expect((await client.call({ op: 'readlink', path: 'ln' })).result).toEqual({ target: '/etc/passwd' });
    expect((await client.call({ op: 'getxattr', path: 'orig', name: 'user.bin' })).payload).toEqual(Buffer.from([0, 1, 2, 255]));
    expect((await client.call<{ names: string[] }>({ op: 'listxattr', path: 'orig' })).result.names).toContain('user.bin');
    const fs = (await client.call<{ bsize: number; blocks: number }>({ op: 'statfs' })).result;
    expect(fs.bsize).toBeGreaterThan(0);
    expect(fs.blocks).toBeGreaterThan(0);
    await expect(client.call({ op: 'getattr', path: 'r/missing' })).rejects.toMatchObject({ errno: 'ENOENT', context: { peer: 'east' } });
    await expect(client.call({ op: 'readdir', path: 'r/f' })).rejects.toMatchObject({ errno: 'ENOTDIR' });
  });

  it('read-many: whole files in one answer, in the order asked; refused as a whole for a missing name, a directory, or too many bytes', async () => {
    mkdirSync(at('many'));
    writeFileSync(at('many/a'), 'first');
    writeFileSync(at('many/empty'), '');
    writeFileSync(at('many/b'), Buffer.from([0, 1, 2, 255]));
    const got = await client.call<{ sizes: number[] }>({ op: 'read-many', paths: ['many/b', 'many/empty', 'many/a'] });
    expect(got.result.sizes).toEqual([4, 0, 5]);
    expect(got.payload).toEqual(Buffer.concat([Buffer.from([0, 1, 2, 255]), Buffer.from('first')]));
    await expect(client.call({ op: 'read-many', paths: ['many/a', 'many/missing'] })).rejects.toMatchObject({ errno: 'ENOENT', message: expect.stringContaining('many/missing') });
    await expect(client.call({ op: 'read-many', paths: ['many'] })).rejects.toMatchObject({ errno: 'EINVAL' });
    writeFileSync(at('many/big1'), Buffer.alloc(3 * 1024 * 1024, 1));
    writeFileSync(at('many/big2'), Buffer.alloc(2 * 1024 * 1024, 2));
    await expect(client.call({ op: 'read-many', paths: ['many/big1', 'many/big2'] })).rejects.toMatchObject({ errno: 'E2BIG' });
    await expect(client.call({ op: 'read-many', paths: [] })).rejects.toMatchObject({ errno: 'EINVAL' });
  });

  it('status and manifest describe the tree', async () => {
    const status = await client.status();
    expect(status).toMatchObject({ name: 'east', epoch: 1, owner: stamp.mount, durability: 'applied-then-flushed', unclean: null });
    expect(status.flush).toMatchObject({ intervalMs: 60_000, failures: 0, lastError: null });
    expect(status.flush.mounts[stamp.mount]!.appliedThrough).toBeGreaterThan(0);
    expect(status.applied).toBeGreaterThan(10);
    const manifest = await client.manifest();
    const f = manifest.find((e) => e.path === 'r/f');
    expect(f).toMatchObject({ type: 'file', size: 10, sha256: '72399361da6a7754fec986dca5b7cbaf1c810a28ded4abaf56b2106d06cb78b0' });
    expect(manifest.find((e) => e.path === 'ln')).toMatchObject({ type: 'symlink', target: '/etc/passwd' });
    expect(manifest.find((e) => e.path === 'orig')?.xattrs).toEqual({ 'user.bin': Buffer.from([0, 1, 2, 255]).toString('base64') });
    expect(manifest.some((e) => e.path.startsWith('.mirrorfs'))).toBe(false);
  });
});
