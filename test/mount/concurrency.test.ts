import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNode } from '../helpers/child.js';
import { cleanupMounts, startMount, type MountProcess } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { compareDirs } from '../helpers/tree.js';

/**
 * Concurrency: many processes at once on one file and one directory. Whatever
 * order the calls land in, every peer must apply them in the same order, so
 * the copies end byte-identical and equal to what the mount shows.
 */

let east: PeerProcess;
let west: PeerProcess;
let mount: MountProcess;
const WRITERS = 8;

beforeAll(async () => {
  [east, west] = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
  mount = await startMount({ peers: [east, west], localCopy: true });
});

afterAll(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

const expectCopiesEqual = () =>
  expect(
    compareDirs([
      { label: 'mount', dir: mount.mountpoint },
      { label: 'east', dir: east.dataDir },
      { label: 'west', dir: west.dataDir },
      { label: 'local copy', dir: mount.localCopyDir! },
    ]),
  ).toEqual([]);

/** Writer id's 40 regions [offset, length], from a seeded generator: the test knows what each writer wrote. */
function writerRegions(id: number): Array<[number, number]> {
  let seed = id * 7919 + 1;
  const rand = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  return Array.from({ length: 40 }, () => {
    const len = 1 + Math.floor(rand() * 65536);
    const off = Math.floor(rand() * (1 << 20));
    return [off, len];
  });
}

/** Fills its regions with its own letter (writer 0 'A', 1 'B', ...). */
const overlappingWriter = `
  import { openSync, writeSync, closeSync } from 'node:fs';
  const [file, id, regions] = ARGS;
  const fd = openSync(file, 'r+');
  for (const [off, len] of JSON.parse(regions)) writeSync(fd, Buffer.alloc(len, 65 + Number(id)), 0, len, off);
  closeSync(fd);
`;

const appender = `
  import { appendFileSync } from 'node:fs';
  const [file, id] = ARGS;
  for (let i = 0; i < 100; i++) appendFileSync(file, 'writer ' + id + ' line ' + i + '\\n');
`;

const namespaceChurn = `
  import { writeFileSync, renameSync, unlinkSync, mkdirSync, rmdirSync, existsSync } from 'node:fs';
  import { join } from 'node:path';
  const [dir, id] = ARGS;
  const tolerate = (fn) => { try { fn(); } catch (e) { if (!['ENOENT', 'EEXIST', 'ENOTEMPTY'].includes(e.code)) throw e; } };
  for (let i = 0; i < 40; i++) {
    const f = join(dir, 'f-' + id + '-' + i);
    writeFileSync(f, 'data ' + id + ' ' + i);
    tolerate(() => renameSync(f, join(dir, 'shared-' + (i % 5))));   // racing renames onto shared names
    if (i % 3 === 0) tolerate(() => unlinkSync(join(dir, 'shared-' + ((i + Number(id)) % 5))));
    tolerate(() => mkdirSync(join(dir, 'sub-' + (i % 4))));
    tolerate(() => writeFileSync(join(dir, 'sub-' + (i % 4), 'g-' + id), String(i)));
    if (i % 7 === 0) tolerate(() => rmdirSync(join(dir, 'sub-' + ((i + 1) % 4))));
  }
`;

describe('concurrent writers', () => {
  it(`${WRITERS} processes writing overlapping regions of one file`, async () => {
    const file = join(mount.mountpoint, 'overlap.bin');
    await runNode(`import { writeFileSync } from 'node:fs'; writeFileSync(ARGS[0], Buffer.alloc(1 << 20));`, [file]);
    const regions = Array.from({ length: WRITERS }, (_, id) => writerRegions(id));
    await Promise.all(regions.map((r, id) => runNode(overlappingWriter, [file, String(id), JSON.stringify(r)])));
    // The file ends where the furthest write ended; each byte holds the letter of one writer
    // that wrote there (whichever landed last), and a byte no writer touched is still 0.
    const content = readFileSync(file);
    expect(content.length).toBe(Math.max(1 << 20, ...regions.flat().map(([off, len]) => off + len)));
    const wroteBy = new Uint8Array(content.length); // bit id set: writer id wrote this byte
    regions.forEach((r, id) => {
      for (const [off, len] of r) for (let i = off; i < off + len; i++) wroteBy[i]! |= 1 << id;
    });
    const wrong: string[] = [];
    for (let i = 0; i < content.length && wrong.length < 5; i++) {
      const b = content[i]!;
      const ok = wroteBy[i] === 0 ? b === 0 : b >= 65 && b < 65 + WRITERS && (wroteBy[i]! & (1 << (b - 65))) !== 0;
      if (!ok) wrong.push(`byte ${i} is ${b}; writers there: ${[...Array(WRITERS).keys()].filter((id) => wroteBy[i]! & (1 << id)).join(',') || 'none'}`);
    }
    expect(wrong).toEqual([]);
    expectCopiesEqual();
  });

  it(`${WRITERS} processes each writing its own file in 1 MiB writes (the peers reuse the buffers large calls arrive in)`, async () => {
    // Each writer's bytes depend on writer and block: a buffer handed to a second call while the
    // first still used it would leave one file with another's bytes, on one peer or both.
    const bigWriter = `
      import { openSync, writeSync, closeSync } from 'node:fs';
      const [file, id] = ARGS;
      const fd = openSync(file, 'w');
      for (let b = 0; b < 12; b++) {
        const block = Buffer.alloc(1 << 20);
        for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((Number(id) << 24) | (b << 16) | ((i >> 2) & 0xffff), i);
        writeSync(fd, block, 0, block.length, b << 20);
      }
      closeSync(fd);
    `;
    const files = Array.from({ length: WRITERS }, (_, id) => join(mount.mountpoint, `big-${id}.bin`));
    await Promise.all(files.map((f, id) => runNode(bigWriter, [f, String(id)])));
    for (const [id, f] of files.entries()) {
      for (const dir of [mount.mountpoint, east.dataDir, west.dataDir]) {
        const content = readFileSync(join(dir, `big-${id}.bin`));
        expect(content.length).toBe(12 << 20);
        for (let b = 0; b < 12; b++) for (const i of [0, 4096, (1 << 20) - 4]) expect(content.readUInt32LE((b << 20) + i), `${dir} big-${id} block ${b} at ${i}`).toBe(((id << 24) | (b << 16) | ((i >> 2) & 0xffff)) >>> 0);
      }
    }
    expectCopiesEqual();
  });

  it(`${WRITERS} processes appending to one file`, async () => {
    const file = join(mount.mountpoint, 'log.txt');
    await Promise.all(Array.from({ length: WRITERS }, (_, id) => runNode(appender, [file, String(id)])));
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(WRITERS * 100);
    for (let id = 0; id < WRITERS; id++) expect(lines.filter((l) => l.startsWith(`writer ${id} `))).toHaveLength(100);
    expectCopiesEqual();
  });

  it(`${WRITERS} processes creating, renaming, unlinking in one directory`, async () => {
    const dir = join(mount.mountpoint, 'churn');
    await runNode(`import { mkdirSync } from 'node:fs'; mkdirSync(ARGS[0]);`, [dir]);
    await Promise.all(Array.from({ length: WRITERS }, (_, id) => runNode(namespaceChurn, [dir, String(id)])));
    expectCopiesEqual();
  });
});
