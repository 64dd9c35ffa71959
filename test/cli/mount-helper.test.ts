import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseHelperArgs } from '../../src/cli/mount-options.js';
import { runCollect, runNode } from '../helpers/child.js';
import { MIRRORFS_BIN, isMounted, lazyUnmount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { mountTlsArgs } from '../helpers/tls.js';
import { compareDirs } from '../helpers/tree.js';
import { waitFor } from '../helpers/wait.js';

/** mount(8) conventions through the real mount and umount commands, with the helper installed by `mirrorfs install-helpers`. */

const mounted: string[] = [];

afterEach(async () => {
  for (const mp of mounted.splice(0)) if (isMounted(mp)) lazyUnmount(mp);
  await cleanupPeers();
  cleanupTmp();
});

describe('mount helper options', () => {
  it('maps -o options to mirrorfs mount flags and drops what belongs to mount(8) and fstab', () => {
    const inv = parseHelperArgs(['east,west', '/data', '-o', 'rw,noauto,_netdev,nofail,x-systemd.requires=network-online.target,local_copy=/var/lib/copy,ack=quorum,ack-mode=end-to-end,insecure_cleartext', '-n']);
    expect(inv).toEqual({
      spec: 'east,west',
      mountpoint: '/data',
      fake: false,
      ignored: [],
      args: ['--peers', 'east,west', '--local-copy', '/var/lib/copy', '--ack', 'quorum', '--ack-mode', 'end-to-end', '--insecure-cleartext'],
    });
  });

  it('takes the generic options every mirrorfs mount honours, quoted values, and -s (sloppy)', () => {
    const inv = parseHelperArgs(['e,w', '/d', '-o', 'lazytime,nosuid,nodev,local_copy="/var/lib/a,b"', '-s', '-o', 'cache_size=9']);
    expect(inv.args).toEqual(['--peers', 'e,w', '--local-copy', '/var/lib/a,b']);
    expect(inv.ignored).toEqual(['cache_size=9']);
  });

  it('maps sync, dirsync and async to the commit level (the last one given wins, as mount(8) reads them)', () => {
    expect(parseHelperArgs(['e,w', '/d', '-o', 'sync']).args).toEqual(['--peers', 'e,w', '--sync']);
    expect(parseHelperArgs(['e,w', '/d', '-o', 'dirsync']).args).toEqual(['--peers', 'e,w', '--dirsync']);
    expect(parseHelperArgs(['e,w', '/d', '-o', 'sync,async']).args).toEqual(['--peers', 'e,w']);
    expect(parseHelperArgs(['e,w', '/d', '-o', 'dirsync,sync']).args).toEqual(['--peers', 'e,w', '--sync']);
  });

  it('maps the atime options to --atime (the last one given wins, as mount(8) reads them)', () => {
    expect(parseHelperArgs(['e,w', '/d', '-o', 'noatime']).args).toEqual(['--peers', 'e,w', '--atime', 'noatime']);
    expect(parseHelperArgs(['e,w', '/d', '-o', 'noatime,relatime']).args).toEqual(['--peers', 'e,w', '--atime', 'noatime', '--atime', 'relatime']);
    expect(() => parseHelperArgs(['e,w', '/d', '-o', 'strictatime'])).toThrow(/strictatime cannot be honoured/);
    expect(parseHelperArgs(['e,w', '/d', '-o', 'atime']).args).toEqual(['--peers', 'e,w', '--atime', 'relatime']);
    expect(parseHelperArgs(['e,w', '/d', '-o', 'nodiratime']).args).toEqual(['--peers', 'e,w', '--nodiratime']);
  });

  it('refuses options it cannot honour rather than ignoring them', () => {
    expect(() => parseHelperArgs(['e,w', '/d', '-o', 'noexec'])).toThrow(/noexec is not supported/);
    expect(() => parseHelperArgs(['e,w', '/d', '-o', 'user'])).toThrow(/need root/);
    expect(() => parseHelperArgs(['e,w', '/d', '-o', 'remount,local_copy=/x'])).toThrow(/cannot be remounted/);
    expect(() => parseHelperArgs(['e,w', '/d', '-o', 'suid'])).toThrow(/always nosuid/);
  });

  it('refuses what it does not know, a missing value, ro, and a wrong shape, saying why', () => {
    expect(() => parseHelperArgs(['e,w', '/d', '-o', 'frobnicate=1'])).toThrow(/unknown option frobnicate; mirrorfs takes local_copy, .*token_file/);
    expect(() => parseHelperArgs(['e,w', '/d', '-o', 'local_copy'])).toThrow(/local_copy needs a value/);
    expect(() => parseHelperArgs(['e,w', '/d', '-o', 'takeover=yes'])).toThrow(/takeover takes no value/);
    expect(() => parseHelperArgs(['e,w', '/d', '-o', 'ro'])).toThrow(/cannot be read-only/);
    expect(() => parseHelperArgs(['/d'])).toThrow(/expected SPEC MOUNTPOINT/);
  });
});

describe('mount -t fuse.mirrorfs, /etc/fstab, umount', () => {
  async function setUp(): Promise<{ east: PeerProcess; west: PeerProcess; base: string; mountpoint: string; options: string }> {
    const bin = tmpDir('mirrorfs-bin-');
    const installed = await runCollect(process.execPath, [MIRRORFS_BIN, 'install-helpers', '--bin', bin]);
    expect(installed.code, installed.stderr).toBe(0);
    expect(readFileSync('/sbin/mount.fuse.mirrorfs', 'utf8')).toContain(MIRRORFS_BIN.replace('mirrorfs.js', 'mount-helper.js'));
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const base = tmpDir('mirrorfs-fstab-');
    const mountpoint = join(base, 'data');
    mkdirSync(mountpoint);
    const [, identity, , trust] = mountTlsArgs();
    const options = `token_file=${east.tokenFile},state_dir=${join(base, 'state')},local_copy=${join(base, 'copy')},tls_identity=${identity},trust=${trust},_netdev,noauto`;
    return { east, west, base, mountpoint, options };
  }

  /** The mount process stops by itself after umount(8) (which calls no helper for FUSE). */
  async function umountAndWait(mountpoint: string, stateDir: string): Promise<void> {
    const r = await runCollect('umount', [mountpoint]);
    expect(r.code, r.stderr).toBe(0);
    // Other lines may come between (a slow settle under load logs a warning), and stopping waits for the peers: 30 s.
    await waitFor(() => /"reason":"unmounted by umount\(8\)"[\s\S]*"msg":"unmounted"/.test(readFileSync(join(stateDir, 'mount.log'), 'utf8')), 'the mount process noticing umount and stopping', 30_000);
    await waitFor(() => !execFileSync('ps', ['-eo', 'args']).toString().includes(`mount ${mountpoint} `), 'the mount process gone');
  }

  it('mount -t fuse.mirrorfs with -o options mirrors like mirrorfs mount, and umount stops it cleanly', async () => {
    const { east, west, base, mountpoint, options } = await setUp();
    const spec = `east=${east.url},west=${west.url}`;
    const r = await runCollect('mount', ['-t', 'fuse.mirrorfs', spec, mountpoint, '-o', options]);
    mounted.push(mountpoint);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(isMounted(mountpoint)).toBe(true);
    await runNode(`import { mkdirSync, writeFileSync } from 'node:fs'; mkdirSync(ARGS[0] + '/dir'); writeFileSync(ARGS[0] + '/dir/file', 'via mount -t');`, [mountpoint]);
    expect(readFileSync(join(west.dataDir, 'dir', 'file'), 'utf8')).toBe('via mount -t');
    await umountAndWait(mountpoint, join(base, 'state'));
    expect(isMounted(mountpoint)).toBe(false);
    expect(compareDirs([{ label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }, { label: 'local copy', dir: join(base, 'copy') }])).toEqual([]);
    expect(readFileSync(join(base, 'copy', 'dir', 'file'), 'utf8')).toBe('via mount -t');
    expect(existsSync(join(base, 'state', 'mount-id'))).toBe(true);
  });

  it('an fstab line mounts with `mount MOUNTPOINT`; a bad option refuses, naming it', async () => {
    const { east, west, base, mountpoint, options } = await setUp();
    const fstab = join(base, 'fstab');
    writeFileSync(fstab, `# a test fstab\neast=${east.url},west=${west.url}  ${mountpoint}  fuse.mirrorfs  ${options}  0 0\n`);
    const r = await runCollect('mount', ['-T', fstab, mountpoint]);
    mounted.push(mountpoint);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    await runNode(`import { writeFileSync } from 'node:fs'; writeFileSync(ARGS[0] + '/from-fstab', 'yes');`, [mountpoint]);
    expect(readFileSync(join(east.dataDir, 'from-fstab'), 'utf8')).toBe('yes');
    await umountAndWait(mountpoint, join(base, 'state'));
    writeFileSync(fstab, `east=${east.url},west=${west.url}  ${mountpoint}  fuse.mirrorfs  ${options},cache_size=9  0 0\n`);
    const bad = await runCollect('mount', ['-T', fstab, mountpoint]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/mount\.fuse\.mirrorfs: unknown option cache_size/);
    expect(isMounted(mountpoint)).toBe(false);
  });
});
