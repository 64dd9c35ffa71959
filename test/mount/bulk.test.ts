import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runNode } from '../helpers/child.js';
import { cleanupMounts, startMount, type MountProcess } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { compareDirs } from '../helpers/tree.js';

/** Volume: a 1 GiB file and a tree of thousands of small files, through the mount. */

let east: PeerProcess;
let west: PeerProcess;
let mount: MountProcess;

beforeAll(async () => {
  [east, west] = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
  mount = await startMount({ peers: [east, west] }); // reads come from the peers: the longer path
});

afterAll(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path, { highWaterMark: 4 << 20 }).on('data', (c) => h.update(c)).on('error', reject).on('end', () => resolve(h.digest('hex')));
  });
}

describe('volume', () => {
  it('a 1 GiB file written and read back through the mount with its checksum', async () => {
    const file = join(mount.mountpoint, 'big.bin');
    // Written by a separate process: 1 MiB writes of a pattern that differs per MiB.
    const written = (await runNode(`
      import { openSync, writeSync, closeSync, fsyncSync } from 'node:fs';
      import { createHash } from 'node:crypto';
      const fd = openSync(ARGS[0], 'w');
      const h = createHash('sha256');
      import { randomFillSync } from 'node:crypto';
      const buf = randomFillSync(Buffer.alloc(1 << 20));
      for (let i = 0; i < 1024; i++) {
        buf.writeUInt32LE(i, (i * 4096) % buf.length); // every MiB differs
        writeSync(fd, buf);
        h.update(buf);
      }
      fsyncSync(fd);
      closeSync(fd);
      console.log(h.digest('hex'));
    `, [file], 300_000)).trim();
    const readBack = (await run('sha256sum', [file], 300_000)).split(' ')[0];
    expect(readBack).toBe(written);
    const [onEast, onWest] = await Promise.all([sha256File(join(east.dataDir, 'big.bin')), sha256File(join(west.dataDir, 'big.bin'))]);
    expect(onEast).toBe(written);
    expect(onWest).toBe(written);
  }, 300_000);

  it('a tree of 3,000 small files copied in with cp -r', async () => {
    const src = join(tmpDir('mirrorfs-src-'), 'project');
    for (let d = 0; d < 60; d++) {
      mkdirSync(join(src, `dir${d}`, 'nested'), { recursive: true });
      for (let f = 0; f < 25; f++) {
        writeFileSync(join(src, `dir${d}`, `file${f}.txt`), `content ${d}/${f}\n`.repeat(1 + ((d * f) % 50)));
        writeFileSync(join(src, `dir${d}`, 'nested', `n${f}`), Buffer.alloc((d + f) % 7 === 0 ? 0 : 100 * f, d));
      }
    }
    await run('cp', ['-r', src, mount.mountpoint], 300_000);
    expect(compareDirs([{ label: 'source', dir: src }, { label: 'mount', dir: join(mount.mountpoint, 'project') }])).toEqual([]);
    expect(
      compareDirs([
        { label: 'mount', dir: mount.mountpoint },
        { label: 'east', dir: east.dataDir },
        { label: 'west', dir: west.dataDir },
      ]),
    ).toEqual([]);
  }, 300_000);
});
