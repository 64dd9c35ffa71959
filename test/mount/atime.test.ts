import { lstatSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCollect } from '../helpers/child.js';
import { cleanupMounts, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';

/**
 * `mirrorfs mount --atime`: what a read does to atime on the mount and on every
 * copy (relatime, the default, is the posix times case "atime"). Reads are made
 * by a separate process (cat).
 */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

const OLD = new Date('2020-01-02T03:04:05Z');

async function readThrough(path: string): Promise<void> {
  const r = await runCollect('cat', [path]);
  expect(r.code, r.stderr).toBe(0);
}

describe('mount --atime', () => {
  it('noatime: reads leave atime alone on the mount and every copy; relatime: the first read after a change stamps it everywhere', async () => {
    const peers = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    const atimes = (m: { mountpoint: string }) => [m.mountpoint, ...peers.map((p) => p.dataDir)].map((d) => lstatSync(join(d, 'f')).atimeMs);

    const never = await startMount({ peers, extraArgs: ['--atime', 'noatime'] });
    writeFileSync(join(never.mountpoint, 'f'), 'to read');
    utimesSync(join(never.mountpoint, 'f'), OLD, new Date()); // atime before mtime: relatime would stamp it
    await readThrough(join(never.mountpoint, 'f'));
    expect(atimes(never)).toEqual([OLD.getTime(), OLD.getTime(), OLD.getTime()]);
    await never.stop();

    const relatime = await startMount({ peers, mountpoint: never.mountpoint, stateDir: never.stateDir, extraArgs: ['--atime', 'relatime'] });
    await readThrough(join(relatime.mountpoint, 'f'));
    const stamped = atimes(relatime);
    expect(stamped.every((t) => t > OLD.getTime()), `stamped everywhere: ${stamped.join(', ')}`).toBe(true);
  });

  it('refuses strictatime, which the copies\' own mount options would not honour', async () => {
    const r = await runCollect(process.execPath, [join(import.meta.dirname, '../../dist/cli/mirrorfs.js'), 'mount', '/nonexistent', '--peers', 'east', '--atime', 'strictatime']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--atime.*strictatime.*(invalid|Allowed choices)/is);
  });
});
