#!/usr/bin/env node
// Where the time of one 4 KiB write goes (not a test): the same loop of
// sequential 4 KiB pwrite() calls, from a separate process, on
//   (1) a plain directory, (2) a mirrorfs mount with one peer, (3) with two peers,
//   (4) with two peers, to a file with a second name the kernel holds attributes for
//       (each write refreshes that name: src/mount/fuse/linked-names.ts),
//   (5) with two peers, each write followed by open + 4 KiB pread() + close of what it
//       wrote (the time of the three): with relatime each read after a write stamps atime
//       on every copy (src/mount/fuse/access-times.ts), with --atime noatime none does,
// plus the peers' own view (latency of the write RPC, from `mirrorfs status`).
//   node scripts/write-latency.mjs [--writes N]
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchTransport } from './lib/bench-tls.mjs';

const { values } = parseArgs({ options: { writes: { type: 'string', default: '3000' } } });
const N = Number(values.writes);
const root = resolve(import.meta.dirname, '..');
const base = mkdtempSync(join(tmpdir(), 'mirrorfs-latency-'));
const transport = await benchTransport(base);
const token = join(base, 'token');
writeFileSync(token, 'latency-token-0123456789abcdef');
const children = [];

const loop = `
  const fs = require('node:fs');
  const readBack = process.argv[2] === 'read-back';
  const fd = fs.openSync(process.argv[1], readBack ? 'w+' : 'w');
  const buf = Buffer.alloc(4096, 7);
  const back = Buffer.alloc(4096);
  const lat = [];
  for (let i = 0; i < ${N}; i++) {
    const t = process.hrtime.bigint();
    fs.writeSync(fd, buf, 0, 4096, i * 4096);
    if (readBack) {
      // A new descriptor, as another reader would open it: the read reaches the mount (a FUSE
      // open drops the file's cached pages), where a read of pages still cached would not.
      const r = fs.openSync(process.argv[1], 'r');
      fs.readSync(r, back, 0, 4096, i * 4096);
      fs.closeSync(r);
    }
    lat.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  fs.closeSync(fd);
  lat.sort((a, b) => a - b);
  console.log(JSON.stringify({ p50: lat[lat.length >> 1], p99: lat[Math.floor(lat.length * 0.99)] }));
`;
const measure = (file, how = 'write') => JSON.parse(execFileSync(process.execPath, ['-e', loop, file, how], { encoding: 'utf8' }));

async function startPeer(name, port) {
  const data = join(base, name);
  mkdirSync(data);
  const p = spawn(process.execPath, [join(root, 'dist/cli/mirrorfs-peer.js'), '--data', data, '--listen', `127.0.0.1:${port}`, '--name', name, '--token-file', token, ...transport.peerArgs, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(p);
  await new Promise((r) => p.stdout.once('data', r));
  return `${name}=${transport.scheme}://127.0.0.1:${port}`;
}

/** Mount at mnt-LABEL; the state directory of `stateOf` (the same mount again: the peers know its identity). */
function mount(peers, label, extra = [], stateOf = label) {
  const mnt = join(base, `mnt-${label}`);
  mkdirSync(mnt);
  execFileSync(process.execPath, [join(root, 'dist/cli/mirrorfs.js'), 'mount', mnt, '--peers', peers.join(','), '--token-file', token, '--state-dir', join(base, `state-${stateOf}`), '--log-level', 'warn', ...transport.mountArgs, ...extra]);
  return mnt;
}

const rows = [];
try {
  mkdirSync(join(base, 'plain'));
  rows.push(['plain directory (page cache)', measure(join(base, 'plain/f'))]);
  const east = await startPeer('east', 37071);
  const m1 = mount([east], 'one');
  rows.push(['mirrorfs, 1 peer', measure(join(m1, 'f'))]);
  const status1 = JSON.parse(execFileSync(process.execPath, [join(root, 'dist/cli/mirrorfs.js'), 'status', m1, '--json'], { encoding: 'utf8' }));
  execFileSync(process.execPath, [join(root, 'dist/cli/mirrorfs.js'), 'unmount', m1]);
  const west = await startPeer('west', 37072);
  const south = await startPeer('south', 37073);
  const m2 = mount([west, south], 'two');
  rows.push(['mirrorfs, 2 peers (same disk)', measure(join(m2, 'f'))]);
  // A second name, stat'ed from another process (so the kernel caches it and the mount notes it).
  writeFileSync(join(m2, 'linked'), '');
  execFileSync('ln', [join(m2, 'linked'), join(m2, 'second-name')]);
  execFileSync('stat', [join(m2, 'second-name')], { stdio: 'ignore' });
  rows.push(['mirrorfs, 2 peers, a hard-linked file', measure(join(m2, 'linked'))]);
  rows.push(['mirrorfs, 2 peers, write + read back (relatime)', measure(join(m2, 'rw'), 'read-back')]);
  const status2 = JSON.parse(execFileSync(process.execPath, [join(root, 'dist/cli/mirrorfs.js'), 'status', m2, '--json'], { encoding: 'utf8' }));
  execFileSync(process.execPath, [join(root, 'dist/cli/mirrorfs.js'), 'unmount', m2]);
  const m3 = mount([west, south], 'noatime', ['--atime', 'noatime'], 'two');
  rows.push(['mirrorfs, 2 peers, write + read back (--atime noatime)', measure(join(m3, 'rw'), 'read-back')]);
  execFileSync(process.execPath, [join(root, 'dist/cli/mirrorfs.js'), 'unmount', m3]);
  console.log(`\nsequential 4 KiB pwrite() (with read back: then open, pread() of it, close), ${N} times, from a separate process\n`);
  console.log('| target | p50 µs | p99 µs |');
  console.log('| --- | ---: | ---: |');
  for (const [label, r] of rows) console.log(`| ${label} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} |`);
  console.log('\nthe mount\'s view of each peer call (all calls, from mirrorfs status):\n');
  for (const p of [...status1.peers, ...status2.peers]) console.log(`- ${p.name}: p50 ${p.latencyUsP50} µs, p99 ${p.latencyUsP99} µs over ${p.operations} calls`);
} finally {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((r) => c.once('exit', r))));
  rmSync(base, { recursive: true, force: true });
}
