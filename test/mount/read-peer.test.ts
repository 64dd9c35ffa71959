import { createHash } from 'node:crypto';
import { readInodeId } from '../../src/store/inode-ids.js';
import { linkSync, lstatSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runNode } from '../helpers/child.js';
import { cleanupLinks, spawnLink } from '../helpers/link.js';
import { cleanupMounts, controlUrl, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { scrape, sumOf } from '../helpers/prom.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Without a local copy, reads go to the in-step peer with the lowest median
 * latency (and stay there until another is clearly faster: read-choice.ts).
 * Here one peer sits behind a real link that adds 15 ms each way.
 */
describe('where reads go without a local copy', () => {
  afterAll(async () => {
    await cleanupMounts();
    await cleanupLinks();
    await cleanupPeers();
    cleanupTmp();
  });

  it('the kernel reads ahead 1 MiB on the mount (FUSE starts at 128 KiB), and a file read back through it is whole', async () => {
    const peers = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    const mount = await startMount({ peers });
    // Set once the kernel's first request says FUSE's INIT is done (INIT resets it): any request does.
    lstatSync(mount.mountpoint);
    await waitFor(() => /"readAheadKb":1024,"msg":"kernel read-ahead for this mount"/.test(mount.stderr()), 'the mount to set its read-ahead', 15_000, 50);
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mount.mountpoint);
    expect(line, 'the mount in /proc/self/mountinfo').toBeDefined();
    const device = line!.split(' ')[2]!;
    expect(readFileSync(`/sys/class/bdi/${device}/read_ahead_kb`, 'utf8').trim()).toBe('1024');
    const data = Buffer.alloc(9 * 1024 * 1024 + 5);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) % 251;
    writeFileSync(join(mount.mountpoint, 'big'), data);
    writeFileSync('/proc/sys/vm/drop_caches', '1');
    const digest = await runNode(
      `import { readFileSync } from 'node:fs';
       import { createHash } from 'node:crypto';
       console.log(createHash('sha256').update(readFileSync(ARGS[0])).digest('hex'));`,
      [join(mount.mountpoint, 'big')],
    );
    expect(digest.trim()).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('reads from the nearer peer, not the one behind a slow link', async () => {
    const [east, far] = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    const link = await spawnLink(far.port, '15ms');
    // The far peer is listed first, so a mount that ignored latency would read from it.
    const mount = await startMount({ peers: [{ ...far, url: link.url }, east], extraArgs: ['--control-listen', '127.0.0.1:0'] });
    const url = await controlUrl(mount);
    const data = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 256;
    writeFileSync(join(mount.mountpoint, 'f'), data); // every write measures both peers
    const readsFrom = async (peer: string) => sumOf(await scrape(`${url}/metrics`), 'mirrorfs_peer_operations_total', { peer, op: 'read' });
    // Read back in another process: a new open drops the kernel's cached pages of the file
    // (no kernel_cache), and the mount dropped its read-ahead when the writes began.
    const digest = await runNode(
      `import { readFileSync } from 'node:fs';
       import { createHash } from 'node:crypto';
       console.log(createHash('sha256').update(readFileSync(ARGS[0])).digest('hex'));`,
      [join(mount.mountpoint, 'f')],
    );
    expect(digest.trim()).toBe((await import('node:crypto')).createHash('sha256').update(data).digest('hex'));
    expect(readFileSync(join(east.dataDir, 'f')).equals(data)).toBe(true);
    expect(await readsFrom('east')).toBeGreaterThan(0);
    expect(await readsFrom('west')).toBe(0);
  });

  it('attributes come from the first peer in --peers order, whichever is faster: the mirror\'s inode number for what the mount made, that peer\'s own for the rest', async () => {
    const [east, far] = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    const link = await spawnLink(far.port, '15ms');
    const mount = await startMount({ peers: [{ ...far, url: link.url }, east], extraArgs: ['--control-listen', '127.0.0.1:0'] });
    const url = await controlUrl(mount);
    const m = (p: string) => join(mount.mountpoint, p);
    writeFileSync(m('f'), Buffer.alloc(1024 * 1024, 1)); // every write measures both peers: east is the faster
    linkSync(m('f'), m('g'));
    // Made on the peers directly (each its own inode), then listed through the mount.
    for (const peer of [far, east]) writeFileSync(join(peer.dataDir, 'outside'), 'x');
    readdirSync(mount.mountpoint);
    const inodes = JSON.parse(await runNode(
      `import { statSync, readFileSync } from 'node:fs';
       readFileSync(ARGS[0] + '/f');
       console.log(JSON.stringify(['f', 'g', 'outside'].map((n) => statSync(ARGS[0] + '/' + n).ino)));`,
      [mount.mountpoint],
    )) as number[];
    const inodeOn = (dir: string, name: string) => lstatSync(join(dir, name)).ino;
    // The two names of one file show one number: the mirror's own, which both copies keep (store/inode-ids.ts).
    expect(inodes[0]).toBe(inodes[1]);
    expect([readInodeId(join(far.dataDir, 'f')), readInodeId(join(east.dataDir, 'f'))]).toEqual([inodes[0], inodes[0]]);
    // A file the mount did not make shows the first peer's own number (two copies: two numbers, only one shown).
    expect(inodes[2]).toBe(inodeOn(far.dataDir, 'outside'));
    expect(inodeOn(east.dataDir, 'outside')).not.toBe(inodeOn(far.dataDir, 'outside'));
    // while data reads went to the faster peer
    expect(sumOf(await scrape(`${url}/metrics`), 'mirrorfs_peer_operations_total', { peer: 'east', op: 'read' })).toBeGreaterThan(0);
  });
});
