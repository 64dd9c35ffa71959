import { chmodSync, linkSync, lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, statSync, truncateSync, unlinkSync, utimesSync, writeFileSync, appendFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNode } from '../helpers/child.js';
import { cleanupMounts, controlUrl, startMount, type MountProcess } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { scrape, sumOf } from '../helpers/prom.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { compareDirs } from '../helpers/tree.js';

/**
 * Without a local copy, the mount answers lookups and attributes of what it
 * changed itself (src/mount/cache/name-cache.ts) instead of asking a peer: a new
 * name in a directory it made is absent without a round trip, and a file's
 * attributes come with the answer to the change. These tests check that the
 * round trips are gone, and that no answer is ever out of date.
 */
describe('metadata answered by the mount (no local copy)', () => {
  let east: PeerProcess;
  let west: PeerProcess;
  let mount: MountProcess;
  let metrics: string;
  const m = (p: string) => join(mount.mountpoint, p);
  const peerGetattrs = async () => sumOf(await scrape(`${metrics}/metrics`), 'mirrorfs_peer_operations_total', { op: 'getattr' });
  const peerXattrReads = async () => sumOf(await scrape(`${metrics}/metrics`), 'mirrorfs_peer_operations_total', { op: 'getxattr' });

  beforeAll(async () => {
    [east, west] = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    mount = await startMount({ peers: [east, west], extraArgs: ['--control-listen', '127.0.0.1:0'] });
    metrics = await controlUrl(mount);
  });

  afterAll(async () => {
    await cleanupMounts();
    await cleanupPeers();
    cleanupTmp();
  });

  it('copies a tree into a new directory with no attribute or xattr round trips', async () => {
    const getattrsBefore = await peerGetattrs();
    const xattrsBefore = await peerXattrReads();
    // A separate process creates 3 directories of 40 files, each written and looked at, as cp -r does.
    await runNode(
      `import { mkdirSync, writeFileSync, statSync } from 'node:fs';
       for (let d = 0; d < 3; d++) {
         mkdirSync(ARGS[0] + '/copy/d' + d, { recursive: true });
         for (let f = 0; f < 40; f++) {
           const p = ARGS[0] + '/copy/d' + d + '/f' + f;
           writeFileSync(p, 'content ' + f);
           if (statSync(p).size !== ('content ' + f).length) throw new Error('wrong size for ' + p);
         }
       }`,
      [mount.mountpoint],
    );
    // 120 files: each lookup of a new name, each attribute after a create or write, each
    // security.capability question used to be a round trip. A few may remain (the first
    // lookup of 'copy' in the root, which this mount did not list).
    expect((await peerGetattrs()) - getattrsBefore).toBeLessThan(10);
    expect((await peerXattrReads()) - xattrsBefore).toBe(0);
    expect(compareDirs([{ label: 'mount', dir: mount.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
  });

  it('lists a tree it wrote without asking a peer, and its listings follow later changes', async () => {
    const peerReaddirs = async () => sumOf(await scrape(`${metrics}/metrics`), 'mirrorfs_peer_operations_total', { op: 'readdir' });
    await runNode(
      `import { mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
       for (let d = 0; d < 3; d++) {
         mkdirSync(ARGS[0] + '/listed/d' + d + '/sub', { recursive: true });
         for (let f = 0; f < 20; f++) writeFileSync(ARGS[0] + '/listed/d' + d + '/f' + f, 'x'.repeat(f));
         symlinkSync('f0', ARGS[0] + '/listed/d' + d + '/link');
       }`,
      [mount.mountpoint],
    );
    const findIn = (dir: string) => {
      const out = spawnSync('find', ['.', '-printf', '%y %p\\n'], { cwd: dir, encoding: 'utf8' });
      expect(out.status, out.stderr).toBe(0);
      return out.stdout.trim().split('\n').sort();
    };
    const before = await peerReaddirs();
    const seen = findIn(m('listed')); // find, in its own process
    expect(seen).toEqual(findIn(join(east.dataDir, 'listed')));
    expect(seen.length).toBe(1 + 3 * 23);
    expect((await peerReaddirs()) - before).toBe(0);
    // Changes of every kind; each listing afterwards is the peers' (a second link makes d2's come from a peer).
    renameSync(m('listed/d0/f1'), m('listed/d1/moved'));
    unlinkSync(m('listed/d0/f2'));
    writeFileSync(m('listed/d0/new'), 'new');
    rmdirSync(m('listed/d1/sub'));
    renameSync(m('listed/d1'), m('listed/d9'));
    linkSync(m('listed/d2/f3'), m('listed/d2/f3-again'));
    for (const dir of ['listed', 'listed/d0', 'listed/d9', 'listed/d2', 'listed/d0/sub']) {
      expect(readdirSync(m(dir)).sort(), dir).toEqual(readdirSync(join(east.dataDir, dir)).sort());
    }
    expect(findIn(m('listed'))).toEqual(findIn(join(east.dataDir, 'listed')));
    expect(compareDirs([{ label: 'mount', dir: mount.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
  });

  it('never answers with attributes or absences that a later change made wrong', () => {
    const sameAsPeer = (p: string) => {
      const mine = lstatSync(m(p));
      const theirs = lstatSync(join(east.dataDir, p));
      expect({ size: mine.size, mode: mine.mode, nlink: mine.nlink }, p).toEqual({ size: theirs.size, mode: theirs.mode, nlink: theirs.nlink });
    };
    mkdirSync(m('s'));
    expect(() => statSync(m('s/f'))).toThrow(/ENOENT/);
    writeFileSync(m('s/f'), 'abc');
    sameAsPeer('s/f');
    appendFileSync(m('s/f'), 'defgh');
    expect(statSync(m('s/f')).size).toBe(8);
    truncateSync(m('s/f'), 2);
    sameAsPeer('s/f');
    chmodSync(m('s/f'), 0o600);
    sameAsPeer('s/f');
    // A second name: the mount keeps nothing about a file with two links. (The kernel's own
    // attribute cache, one entry per name under libfuse 2, can still show the old size through
    // the other name for up to 60 s: docs/ARCHITECTURE.md, "Hard links".)
    writeFileSync(m('s/h1'), 'ab');
    linkSync(m('s/h1'), m('s/h2'));
    appendFileSync(m('s/h2'), 'xyz');
    expect(statSync(m('s/h2')).size).toBe(5);
    sameAsPeer('s/h2');
    unlinkSync(m('s/h2'));
    expect(lstatSync(join(east.dataDir, 's/h1')).size).toBe(5);
    unlinkSync(m('s/h1'));
    expect(() => statSync(m('s/h1'))).toThrow(/ENOENT/);
    expect(() => statSync(m('s/g'))).toThrow(/ENOENT/);
    // rename(2) onto another link of the same file does nothing, on ext4 and on the peers: both names stay.
    writeFileSync(m('s/same1'), 'same');
    linkSync(m('s/same1'), m('s/same2'));
    renameSync(m('s/same1'), m('s/same2'));
    expect(lstatSync(join(east.dataDir, 's/same1')).nlink).toBe(2);
    expect(statSync(m('s/same1')).nlink).toBe(2);
    unlinkSync(m('s/same1'));
    unlinkSync(m('s/same2'));
    // A renamed directory: old names gone, new ones there with their attributes.
    mkdirSync(m('s/sub'));
    writeFileSync(m('s/sub/x'), '12345');
    renameSync(m('s'), m('t'));
    expect(() => statSync(m('s/sub/x'))).toThrow(/ENOENT/);
    expect(statSync(m('t/sub/x')).size).toBe(5);
    sameAsPeer('t/sub/x');
    sameAsPeer('t');
    // A name removed and made again as another type.
    unlinkSync(m('t/sub/x'));
    mkdirSync(m('t/sub/x'));
    expect(statSync(m('t/sub/x')).isDirectory()).toBe(true);
    rmdirSync(m('t/sub/x'));
    expect(() => statSync(m('t/sub/x'))).toThrow(/ENOENT/);
    expect(compareDirs([{ label: 'mount', dir: mount.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
  });
});

describe('a large directory without a local copy', () => {
  afterAll(async () => {
    await cleanupMounts();
    await cleanupPeers();
    cleanupTmp();
  });

  it('lists 3,000 entries (a listing larger than a frame header), then answers their lookups itself', async () => {
    const [east, west] = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    // The same tree on both peers before the mount greets them (writing 3,000 files through it would take a while).
    for (const peer of [east, west]) {
      mkdirSync(join(peer.dataDir, 'big'), { mode: 0o755 });
      for (let i = 0; i < 3000; i++) writeFileSync(join(peer.dataDir, 'big', `entry-with-a-longish-name-${i}`), `${i}`, { mode: 0o644 });
    }
    const mount = await startMount({ peers: [east, west], extraArgs: ['--control-listen', '127.0.0.1:0'] });
    const url = await controlUrl(mount);
    const names = readdirSync(join(mount.mountpoint, 'big'));
    expect(names.length).toBe(3000);
    expect(new Set(names)).toEqual(new Set(readdirSync(join(east.dataDir, 'big'))));
    const before = sumOf(await scrape(`${url}/metrics`), 'mirrorfs_peer_operations_total', { op: 'getattr' });
    // In a separate process, so that the kernel's lookups of these names reach the mount for the first time.
    await runNode(
      `import { statSync } from 'node:fs';
       for (let i = 0; i < 3000; i++) if (statSync(ARGS[0] + '/big/entry-with-a-longish-name-' + i).size !== String(i).length) throw new Error('size of ' + i);
       try { statSync(ARGS[0] + '/big/not-there'); throw new Error('found a name that is not there'); } catch (e) { if (e.code !== 'ENOENT') throw e; }`,
      [mount.mountpoint],
    );
    expect(sumOf(await scrape(`${url}/metrics`), 'mirrorfs_peer_operations_total', { op: 'getattr' }) - before).toBeLessThan(10);
  });

  it('ls -l of a tree made before the mount asks no peer for an xattr per entry, and shows what ext4 shows (an ACL\'s +, a user xattr)', async () => {
    const [east, west] = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    for (const peer of [east, west]) {
      mkdirSync(join(peer.dataDir, 'plain'), { mode: 0o755 });
      for (let i = 0; i < 200; i++) writeFileSync(join(peer.dataDir, 'plain', `f${i}`), `${i}`, { mode: 0o644 });
      expect(spawnSync('setfacl', ['-m', 'u:1234:r', join(peer.dataDir, 'plain', 'f7')]).status).toBe(0);
      expect(spawnSync('setfattr', ['-n', 'user.note', '-v', 'kept', join(peer.dataDir, 'plain', 'f9')]).status).toBe(0);
      for (let i = 0; i < 200; i++) utimesSync(join(peer.dataDir, 'plain', `f${i}`), 1_700_000_000, 1_700_000_000);
    }
    const mount = await startMount({ peers: [east, west], extraArgs: ['--control-listen', '127.0.0.1:0'] });
    const url = await controlUrl(mount);
    const xattrReads = async () => sumOf(await scrape(`${url}/metrics`), 'mirrorfs_peer_operations_total', { op: 'getxattr' });
    const before = await xattrReads();
    // In its own process: ls asks each entry for security.selinux and system.posix_acl_access.
    const ls = (dir: string) => {
      const out = spawnSync('ls', ['-ln', '--time-style=+%s', dir], { encoding: 'utf8' });
      expect(out.status, out.stderr).toBe(0);
      return out.stdout.split('\n').filter((l) => !l.startsWith('total'));
    };
    const onMount = ls(join(mount.mountpoint, 'plain'));
    // The only xattr a peer was asked for is the one the listing said f7 has (its ACL, for the +).
    expect((await xattrReads()) - before).toBeLessThan(5);
    expect(onMount).toEqual(ls(join(east.dataDir, 'plain')));
    expect(onMount.find((l) => l.endsWith(' f7'))).toMatch(/^-rw-r--r--\+ /);
    const note = spawnSync('getfattr', ['-n', 'user.note', '--only-values', join(mount.mountpoint, 'plain', 'f9')], { encoding: 'utf8' });
    expect(note.stdout).toBe('kept');
  });
});
