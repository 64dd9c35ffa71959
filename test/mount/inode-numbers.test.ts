import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { INODE_ID_BASE, INODE_ID_XATTR, readInodeId } from '../../src/store/inode-ids.js';
import { getXattr } from '../../src/store/posix.js';
import { runCollect } from '../helpers/child.js';
import { cleanupMounts, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';

/**
 * The mirror's inode numbers (src/store/inode-ids.ts): st_ino through the mount is the
 * same whichever copy answers, across remounts and after a copy is rebuilt, and the
 * names of a hard-linked file share it. Every stat here is a separate process on the mount.
 */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

const NAMES = ['d', 'd/f', 'd/g', 'd/s', 'd/p', 'top'];

/** `stat` of each name through the mount, by a separate process: name -> st_ino (as text: exact). */
async function inodeNumbers(mountpoint: string): Promise<Record<string, string>> {
  const r = await runCollect('stat', ['-c', '%n %i', ...NAMES.map((n) => join(mountpoint, n))]);
  expect(r.code, r.stderr).toBe(0);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => {
    const [path, ino] = l.split(' ');
    return [path!.slice(mountpoint.length + 1), ino!];
  }));
}

describe('the mirror\'s inode numbers', () => {
  it('st_ino is the same whichever copy answers, across remounts and after a copy is rebuilt; links share it; the copies keep it and the mount hides it', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const first = await startMount({ peers: [east, west] });
    // (acl/plain was made before its directory got a default ACL: a rebuilt copy must not give it one)
    const made = await runCollect('sh', ['-c', 'set -e; cd "$1"; mkdir d; echo data > d/f; ln d/f d/g; ln -s f d/s; mkfifo d/p; echo top > top; mkdir acl; echo x > acl/plain; setfacl -d -m u:2002:r acl', 'make', first.mountpoint]);
    expect(made.code, made.stderr).toBe(0);
    const before = await inodeNumbers(first.mountpoint);
    expect(before['d/f']).toBe(before['d/g']); // one file, one number
    expect(new Set(Object.values(before)).size).toBe(NAMES.length - 1);
    for (const ino of Object.values(before)) expect(Number(ino)).toBeGreaterThan(INODE_ID_BASE); // the mirror's own, not a copy's

    // each copy keeps the number in the inode; the copies' own numbers differ from it
    for (const p of [east, west]) {
      for (const name of NAMES) {
        expect(readInodeId(join(p.dataDir, name)), `${p.name}: ${name}`).toBe(Number(before[name]));
        expect(String(lstatSync(join(p.dataDir, name)).ino)).not.toBe(before[name]);
      }
    }

    // hidden through the mount: not listed, not readable, not settable
    const attrs = await runCollect('sh', ['-c', `getfattr -d -m - "$1" 2>&1; getfattr -n ${INODE_ID_XATTR} "$1" 2>&1; setfattr -n ${INODE_ID_XATTR} -v 0sAAAAAAAAEAA= "$1" 2>&1; true`, 'attrs', join(first.mountpoint, 'top')]);
    expect(attrs.stdout).not.toMatch(new RegExp(`^${INODE_ID_XATTR.replace(/\./g, '\\.')}=`, 'm'));
    expect(attrs.stdout).toMatch(/No such attribute/);
    expect(attrs.stdout).toMatch(/Operation not permitted/);
    await first.stop();

    // attributes from the other copy (the first in --peers order answers them)
    const swapped = await startMount({ peers: [west, east], mountpoint: first.mountpoint, stateDir: first.stateDir });
    expect(await inodeNumbers(swapped.mountpoint)).toEqual(before);
    await swapped.stop();

    // west rebuilt from east: the copy carries the numbers like any xattr
    for (const entry of readdirSync(west.dataDir)) if (entry !== '.mirrorfs') rmSync(join(west.dataDir, entry), { recursive: true, force: true });
    const rebuilt = await startMount({ peers: [west, east], mountpoint: first.mountpoint, stateDir: first.stateDir, extraArgs: ['--resync-from', 'east'] });
    expect(rebuilt.stderr()).toContain('full resync finished and verified');
    expect(await inodeNumbers(rebuilt.mountpoint)).toEqual(before);
    expect(() => getXattr(join(west.dataDir, 'acl/plain'), 'system.posix_acl_access')).toThrow(/ENODATA/);
    expect(getXattr(join(west.dataDir, 'acl'), 'system.posix_acl_default')).toEqual(getXattr(join(east.dataDir, 'acl'), 'system.posix_acl_default'));
  }, 120_000);
});
