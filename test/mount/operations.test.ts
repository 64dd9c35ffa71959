import { accessSync, constants, ftruncateSync, appendFileSync, chmodSync, chownSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmdirSync, statSync, symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync, openSync, writeSync, closeSync, fsyncSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { getAttributeSync, listAttributesSync, removeAttributeSync, setAttributeSync } from 'fs-xattr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runNode } from '../helpers/child.js';
import { cleanupMounts, startMount, type MountProcess } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { compareDirs } from '../helpers/tree.js';

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
  return undefined;
}

/**
 * Every FUSE operation through a real mount served by a child process, with
 * syscalls from this (separate) process, then a tree comparison of the mount
 * against both peers' data directories and the local copy. Run in both read
 * modes: from a local copy, and from the peers.
 */
describe.each([
  { mode: 'reads from peers', localCopy: false },
  { mode: 'reads from a local copy', localCopy: true },
])('every operation through the mount ($mode)', ({ localCopy }) => {
  let east: PeerProcess;
  let west: PeerProcess;
  let mount: MountProcess;
  const m = (p: string) => join(mount.mountpoint, p);

  const expectCopiesEqual = () => {
    const dirs = [
      { label: 'mount', dir: mount.mountpoint },
      { label: 'east', dir: east.dataDir },
      { label: 'west', dir: west.dataDir },
      ...(mount.localCopyDir ? [{ label: 'local copy', dir: mount.localCopyDir }] : []),
    ];
    expect(compareDirs(dirs)).toEqual([]);
  };

  beforeAll(async () => {
    [east, west] = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    mount = await startMount({ peers: [east, west], localCopy });
  });

  afterAll(async () => {
    await cleanupMounts();
    await cleanupPeers();
    cleanupTmp();
  });

  it('create, write, read back, overwrite, append, truncate', () => {
    writeFileSync(m('a.txt'), 'hello world');
    expect(readFileSync(m('a.txt'), 'utf8')).toBe('hello world');
    expect(readFileSync(join(east.dataDir, 'a.txt'), 'utf8')).toBe('hello world');
    const fd = openSync(m('a.txt'), 'r+');
    writeSync(fd, 'HELLO', 0, 'utf8');
    fsyncSync(fd);
    closeSync(fd);
    appendFileSync(m('a.txt'), '!!');
    expect(readFileSync(m('a.txt'), 'utf8')).toBe('HELLO world!!');
    truncateSync(m('a.txt'), 5);
    expect(statSync(m('a.txt')).size).toBe(5);
    truncateSync(m('a.txt'), 4096);
    expect(readFileSync(m('a.txt')).subarray(5).every((b) => b === 0)).toBe(true);
    expectCopiesEqual();
  });

  it('mkdir, nested trees, readdir, rmdir', () => {
    mkdirSync(m('d1/d2/d3'), { recursive: true });
    writeFileSync(m('d1/d2/d3/f'), 'deep');
    expect(readdirSync(m('d1/d2')).sort()).toEqual(['d3']);
    mkdirSync(m('gone'));
    rmdirSync(m('gone'));
    expect(readdirSync(mount.mountpoint)).not.toContain('gone');
    expectCopiesEqual();
  });

  it('readdir gives each entry its type, as the directory entry itself (d_type)', async () => {
    mkdirSync(m('typed/sub'), { recursive: true });
    writeFileSync(m('typed/file'), 'x');
    symlinkSync('file', m('typed/link'));
    symlinkSync('nowhere', m('typed/dangling'));
    // Node trusts d_type and lstats only entries whose type is unknown: a wrong type shows here.
    const types = (dir: string) => runNode(
      `import { readdirSync } from 'node:fs';
       const out = readdirSync(ARGS[0], { withFileTypes: true }).map((e) => e.name + ':' + (e.isFile() ? 'f' : e.isDirectory() ? 'd' : e.isSymbolicLink() ? 'l' : '?'));
       console.log(JSON.stringify(out.sort()));`,
      [dir],
    );
    const seen = JSON.parse(await types(m('typed')));
    expect(seen).toEqual(['dangling:l', 'file:f', 'link:l', 'sub:d']);
    expect(seen).toEqual(JSON.parse(await types(join(east.dataDir, 'typed'))));
    expect(readdirSync(m('typed/sub'))).toEqual([]);
    expect(() => readdirSync(m('typed/file'))).toThrow(/ENOTDIR/);
  });

  it('rename files and directories, over an existing target', () => {
    writeFileSync(m('r1'), 'one');
    writeFileSync(m('r2'), 'two');
    renameSync(m('r1'), m('r2'));
    expect(readFileSync(m('r2'), 'utf8')).toBe('one');
    renameSync(m('d1'), m('moved'));
    expect(readFileSync(m('moved/d2/d3/f'), 'utf8')).toBe('deep');
    expectCopiesEqual();
  });

  it('unlink, symlink, readlink, hard link', () => {
    unlinkSync(m('r2'));
    symlinkSync('moved/d2/d3/f', m('ln'));
    expect(readlinkSync(m('ln'))).toBe('moved/d2/d3/f');
    expect(readFileSync(m('ln'), 'utf8')).toBe('deep');
    symlinkSync('/etc/hostname', m('abs-link'));
    expect(readlinkSync(join(west.dataDir, 'abs-link'))).toBe('/etc/hostname');
    writeFileSync(m('orig'), 'linked');
    linkSync(m('orig'), m('hard'));
    expect(statSync(m('orig')).nlink).toBe(2);
    expect(statSync(join(east.dataDir, 'hard')).ino).toBe(statSync(join(east.dataDir, 'orig')).ino);
    expectCopiesEqual();
  });

  it('chmod, chown, utimens', () => {
    chmodSync(m('orig'), 0o640);
    expect(lstatSync(m('orig')).mode & 0o7777).toBe(0o640);
    chmodSync(m('moved'), 0o711);
    chownSync(m('orig'), 1234, 4321);
    expect(lstatSync(m('orig'))).toMatchObject({ uid: 1234, gid: 4321 });
    expect(lstatSync(join(west.dataDir, 'orig'))).toMatchObject({ uid: 1234, gid: 4321 });
    utimesSync(m('orig'), 1_000_000, 2_000_000);
    expect(Math.round(statSync(m('orig')).mtimeMs)).toBe(2_000_000_000);
    expect(Math.round(statSync(join(east.dataDir, 'orig')).mtimeMs)).toBe(2_000_000_000);
    expect(Math.round(statSync(join(east.dataDir, 'orig')).atimeMs)).toBe(1_000_000_000);
    expectCopiesEqual();
  });

  it('touch -m and touch -a change one time and leave the other', async () => {
    writeFileSync(m('times'), 'x');
    utimesSync(m('times'), 1_000_000, 1_000_000);
    await run('touch', ['-m', '-d', '@2000000', m('times')]);
    let st = statSync(join(west.dataDir, 'times'));
    expect([Math.round(st.atimeMs), Math.round(st.mtimeMs)]).toEqual([1_000_000_000, 2_000_000_000]);
    await run('touch', ['-a', '-d', '@3000000', m('times')]);
    st = statSync(join(west.dataDir, 'times'));
    expect([Math.round(st.atimeMs), Math.round(st.mtimeMs)]).toEqual([3_000_000_000, 2_000_000_000]);
    const before = Date.now() - 60_000;
    await run('touch', ['-m', m('times')]); // UTIME_NOW
    expect(statSync(join(east.dataDir, 'times')).mtimeMs).toBeGreaterThan(before);
    expectCopiesEqual();
  });

  it('setxattr, getxattr, listxattr, removexattr', () => {
    setAttributeSync(m('orig'), 'user.color', 'blue');
    setAttributeSync(m('orig'), 'user.bin', Buffer.from([0, 1, 255]));
    expect(getAttributeSync(m('orig'), 'user.color').toString()).toBe('blue');
    expect(listAttributesSync(m('orig')).sort()).toEqual(['user.bin', 'user.color']);
    expect(getAttributeSync(join(west.dataDir, 'orig'), 'user.bin')).toEqual(Buffer.from([0, 1, 255]));
    removeAttributeSync(m('orig'), 'user.color');
    expect(listAttributesSync(m('orig'))).toEqual(['user.bin']);
    expect(errnoOf(() => getAttributeSync(m('orig'), 'user.color'))).toBe('ENODATA');
    // an absence learned through one name is forgotten when the attribute appears through another (hard link)
    expect(errnoOf(() => getAttributeSync(m('hard'), 'user.late'))).toBe('ENODATA');
    setAttributeSync(m('orig'), 'user.late', 'here');
    expect(getAttributeSync(m('hard'), 'user.late').toString()).toBe('here');
    removeAttributeSync(m('hard'), 'user.late');
    expectCopiesEqual();
  });

  it('errors come back with the errno ext4 would give', () => {
    expect(() => readFileSync(m('missing'))).toThrow(/ENOENT/);
    expect(() => mkdirSync(m('moved'))).toThrow(/EEXIST/);
    expect(() => rmdirSync(m('moved'))).toThrow(/ENOTEMPTY/);
    expect(() => unlinkSync(m('moved'))).toThrow(/EISDIR|EPERM/);
    expect(() => writeFileSync(m('nodir/x'), 'x')).toThrow(/ENOENT/);
    expect(() => renameSync(m('missing'), m('x'))).toThrow(/ENOENT/);
    expect(() => readdirSync(m('orig'))).toThrow(/ENOTDIR/);
    expectCopiesEqual();
  });

  it('ftruncate, access, fsync of a directory', () => {
    writeFileSync(m('ft'), 'abcdef');
    const fd = openSync(m('ft'), 'r+');
    ftruncateSync(fd, 2);
    closeSync(fd);
    expect(readFileSync(join(east.dataDir, 'ft'), 'utf8')).toBe('ab');
    accessSync(m('ft'), constants.R_OK | constants.W_OK);
    expect(errnoOf(() => accessSync(m('nothing')))).toBe('ENOENT');
    const dfd = openSync(m('moved'), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
    expectCopiesEqual();
  });

  it('special files (FIFOs, sockets, devices) are mirrored with their modes and device numbers', async () => {
    await run('mkfifo', ['-m', '0640', m('fifo')]);
    await run('mknod', ['-m', '0600', m('null'), 'c', '1', '3']);
    await run('mknod', [m('loop'), 'b', '7', '9']);
    await run('/usr/bin/python3', ['-c', 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', m('sock')]);
    for (const dir of [mount.mountpoint, east.dataDir, west.dataDir]) {
      expect(lstatSync(join(dir, 'fifo')).isFIFO()).toBe(true);
      expect(lstatSync(join(dir, 'fifo')).mode & 0o7777).toBe(0o640);
      expect(lstatSync(join(dir, 'null')).isCharacterDevice()).toBe(true);
      expect(lstatSync(join(dir, 'null')).rdev).toBe(statSync('/dev/null').rdev);
      expect(lstatSync(join(dir, 'loop')).isBlockDevice()).toBe(true);
      expect(lstatSync(join(dir, 'sock')).isSocket()).toBe(true);
    }
    expectCopiesEqual();
  });

  it('names are bytes: a Latin-1 name, its UTF-8 spelling and U+FFFD are three files, on the mount and on every copy', async () => {
    // From a shell, as an old archive's names arrive: bytes, not text.
    const script = [
      `cd "${mount.mountpoint}"`,
      `printf latin1 > "$(printf 'caf\\351')"`,
      `printf utf8 > "$(printf 'caf\\303\\251')"`,
      `printf fffd > "$(printf 'caf\\357\\277\\275')"`,
      `mkdir "$(printf 'd\\377')" && ln -s "$(printf '../caf\\351')" "$(printf 'd\\377/l\\351')"`,
      `cat "$(printf 'd\\377/l\\351')"`,
    ].join(' && ');
    expect(await run('sh', ['-c', script])).toBe('latin1');
    const names = (dir: string) => readdirSync(dir, { encoding: 'buffer' }).map((n) => n.toString('hex')).filter((n) => n !== Buffer.from('.mirrorfs').toString('hex')).sort();
    const cafes = ['636166e9', '636166c3a9', '636166efbfbd'];
    for (const dir of [mount.mountpoint, east.dataDir, west.dataDir, ...(mount.localCopyDir ? [mount.localCopyDir] : [])]) {
      expect(names(dir).filter((n) => n.startsWith('636166')), dir).toEqual([...cafes].sort());
      expect(readFileSync(Buffer.from(`${dir}/caf\xe9`, 'latin1'), 'utf8'), dir).toBe('latin1');
      expect(readlinkSync(Buffer.from(`${dir}/d\xff/l\xe9`, 'latin1'), { encoding: 'buffer' }).toString('hex'), dir).toBe('2e2e2f636166e9');
    }
    expectCopiesEqual();
  });

  it('statfs reports real figures', () => {
    const s = statfsSync(mount.mountpoint);
    expect(s.blocks).toBeGreaterThan(0);
    expect(s.bsize).toBeGreaterThan(0);
  });

  it('the reserved name .mirrorfs cannot be created at the root', () => {
    expect(() => mkdirSync(m('.mirrorfs'))).toThrow(/EPERM/);
    expectCopiesEqual();
  });
});
