#!/usr/bin/env node
// Catch-up and full-resync rates (not a test). Two loopback peers, a mount
// with --ack 1 so writes go on while west is down. For each data set
// (large files, small files):
//   1. west is killed; the data set is written through the mount (journaled for west);
//   2. west restarts: catch-up time and rate; meanwhile a probe process measures
//      the latency of 4 KiB writes through the mount (and before, with all in sync);
//   3. the mount is unmounted, west's data directory replaced by an empty one, and
//      the mount started again: full resync time and rate (from the mount's log);
//   4. plain copies of east's data directory for comparison: fs.cpSync then sync (in the
//      kernel: copy_file_range) right before and right after the resync (this virtual
//      disk's speed drifts by 2-3x within minutes, so a copy timed apart from the resync
//      says little), and tar through a loopback TCP socket then sync (a copy that crosses
//      a network, as a resync between two machines must).
//   node scripts/bench-recovery.mjs [--large-mib 1024] [--large-files 8] [--small-files 20000] [--only large|small] [--profile DIR] [--west-delay TIME]
// --west-delay TIME: the mount reaches west through a link emulator (mirrorfs-link) with this
// one-way delay (250us, 5ms): a far mirror, whose catch-up is bound by round trips, not CPU.
// The resync's copy is west pulling from east, which does not cross that link.
// --no-probe: no writer during the catch-up (a resync has none): the catch-up alone, as
// bench-scale times it; the latency columns are then empty.
// --profile DIR: V8 CPU profiles of the peers and the mount (written when each stops; the
// peers are stopped with SIGTERM instead of SIGKILL to write them, except the first west,
// killed by design; the mount's files are named CPU.*, beside its launcher's small ones).
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchTransport } from './lib/bench-tls.mjs';
import { startBenchPeer, tarOverTcp } from './lib/bench-peer.mjs';

const { values } = parseArgs({
  options: { 'large-mib': { type: 'string', default: '1024' }, 'large-files': { type: 'string', default: '8' }, 'small-files': { type: 'string', default: '20000' }, only: { type: 'string' }, profile: { type: 'string' }, 'west-delay': { type: 'string' }, 'no-probe': { type: 'boolean', default: false } },
});
const LARGE_MIB = Number(values['large-mib']);
const LARGE_FILES = Number(values['large-files']);
const SMALL_FILES = Number(values['small-files']);
const root = resolve(import.meta.dirname, '..');
const CLI = join(root, 'dist/cli/mirrorfs.js');
const base = mkdtempSync(join(tmpdir(), 'mirrorfs-recovery-'));
const transport = await benchTransport(base);
const token = join(base, 'token');
writeFileSync(token, 'recovery-bench-token-0123456789');
const children = new Set();
const mib = (b) => b / 1024 / 1024;

function startPeer(name, dataDir, port = 0) {
  const nodeArgs = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(values.profile)}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : [];
  return startBenchPeer({ name, dataDir, port, token, transport, children, nodeArgs });
}

async function stopPeer(peer, signal) {
  peer.proc.kill(signal);
  await new Promise((r) => (peer.proc.exitCode !== null || peer.proc.signalCode !== null ? r() : peer.proc.once('exit', r)));
}

const kill9 = (peer) => stopPeer(peer, 'SIGKILL');
/** SIGTERM, so a profiled peer writes its profile. */
const stopGently = (peer) => stopPeer(peer, 'SIGTERM');

/** The mount re-runs itself in the background with the same node flags: it writes its profile when it unmounts. */
function mountProfiling() {
  return values.profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(values.profile)}`] : [];
}

/** A link emulator in front of west (--west-delay): what the mount dials instead of west itself. */
async function startLink(target) {
  const p = spawn(process.execPath, [join(root, 'dist/cli/mirrorfs-link.js'), 'run', '--to', `127.0.0.1:${target.port}`, '--delay', values['west-delay']], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(p);
  const port = await new Promise((resolvePort, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on [\d.]+:(\d+)/.exec(out);
      if (m) resolvePort(Number(m[1]));
    });
    p.once('exit', (code) => reject(new Error(`mirrorfs-link exited (${code}) before it listened`)));
  });
  return { name: target.name, url: target.url.replace(`:${target.port}`, `:${port}`) };
}

function mountArgs(mnt, peers, state) {
  return ['mount', mnt, '--peers', peers.map((p) => `${p.name}=${p.url}`).join(','), '--token-file', token, '--state-dir', state, '--ack', '1', '--peer-timeout', '2000', ...transport.mountArgs];
}

function status(mnt) {
  return JSON.parse(execFileSync(process.execPath, [CLI, 'status', mnt, '--json'], { encoding: 'utf8' }));
}

async function waitInSync(mnt, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (status(mnt).peers.every((p) => p.state === 'in-sync')) return;
    if (Date.now() > deadline) throw new Error('catch-up did not finish in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A separate process writing 4 KiB at a time through the mount until told to stop; prints p50/p99 µs. */
function startProbe(file) {
  const stop = `${file}.stop-${Date.now()}`;
  const program = `
    const fs = require('node:fs');
    const [file, stop] = process.argv.slice(1);
    const fd = fs.openSync(file, 'w');
    const buf = Buffer.alloc(4096, 1);
    const lat = [];
    let i = 0;
    while (!fs.existsSync(stop)) { const t = process.hrtime.bigint(); fs.writeSync(fd, buf, 0, 4096, (i++ % 256) * 4096); lat.push(Number(process.hrtime.bigint() - t) / 1000); }
    lat.sort((a, b) => a - b);
    console.log(JSON.stringify({ n: lat.length, p50: lat[lat.length >> 1] ?? 0, p99: lat[Math.floor(lat.length * 0.99)] ?? 0 }));`;
  const p = spawn(process.execPath, ['-e', program, file, stop], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  const done = new Promise((r) => p.once('exit', r));
  return async () => {
    writeFileSync(stop, '');
    await done;
    rmSync(stop, { force: true });
    return JSON.parse(out);
  };
}

function writeLarge(dir) {
  const each = Math.round((LARGE_MIB * 1024 * 1024) / LARGE_FILES);
  execFileSync(process.execPath, ['-e', `
    const fs = require('node:fs'); const [dir, n, each] = process.argv.slice(1);
    const chunk = Buffer.alloc(1024 * 1024); for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 255;
    for (let f = 0; f < Number(n); f++) { const fd = fs.openSync(dir + '/large-' + f, 'w'); for (let off = 0; off < Number(each); off += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, Number(each) - off)); fs.closeSync(fd); }`, dir, String(LARGE_FILES), String(each)]);
  return { bytes: each * LARGE_FILES, files: LARGE_FILES };
}

function writeSmall(dir) {
  execFileSync(process.execPath, ['-e', `
    const fs = require('node:fs'); const [dir, n] = process.argv.slice(1);
    for (let i = 0; i < Number(n); i++) { const d = dir + '/d' + (i % 200); if (i < 200) fs.mkdirSync(d); fs.writeFileSync(d + '/f' + i, 'small file ' + i + '\\n'.repeat(64)); }`, dir, String(SMALL_FILES)]);
  return { bytes: SMALL_FILES * (('small file ' + 0).length + 64), files: SMALL_FILES };
}

async function round(label, write) {
  const dir = join(base, label);
  let east = await startPeer('east', join(dir, 'east'));
  let west = await startPeer('west', join(dir, 'west'));
  // west restarts on the same port, so one link serves every round trip of the round.
  const westAsDialled = values['west-delay'] ? await startLink(west) : west;
  const mnt = join(dir, 'mnt');
  const state = join(dir, 'state');
  mkdirSync(mnt);
  execFileSync(process.execPath, [...mountProfiling(), CLI, ...mountArgs(mnt, [east, westAsDialled], state)]);
  const row = { label };
  try {
    let probe = startProbe(join(mnt, 'probe'));
    await new Promise((r) => setTimeout(r, 3000));
    row.latencyInSync = await probe();
    await kill9(west);
    const t0 = Date.now();
    const size = write(mnt);
    row.writeSeconds = (Date.now() - t0) / 1000;
    row.journal = status(mnt).peers.find((p) => p.name === 'west').behind;
    probe = values['no-probe'] ? async () => null : startProbe(join(mnt, 'probe'));
    west = await startPeer('west', west.dataDir, west.port);
    const t1 = Date.now();
    await waitInSync(mnt, 30 * 60_000);
    row.catchUpSeconds = (Date.now() - t1) / 1000;
    row.latencyDuringCatchUp = await probe();
    row.catchUpMBps = mib(size.bytes) / row.catchUpSeconds;
    row.catchUpOpsPerS = row.journal.ops / row.catchUpSeconds;
    row.catchUpFilesPerS = size.files / row.catchUpSeconds;
    execFileSync(process.execPath, [CLI, 'unmount', mnt]);
    const plainBefore = plainCopySeconds(east.dataDir, join(dir, 'plain-copy-before'));
    // full resync: west's data replaced by an empty directory (a profiled west is stopped gently, to write its profile of the catch-up)
    await (values.profile ? stopGently(west) : kill9(west));
    // Moved aside, not deleted: this disk is mounted with online discard, and creating
    // files right after deleting thousands is several times slower here (measured: ~600 us
    // against ~50 us per file), which would bill the resync for the benchmark's own rm.
    // Everything is deleted at the end of the round, after every timed copy.
    renameSync(west.dataDir, `${west.dataDir}.replaced`);
    // A new disk means a new peer: its state (beside the tree) goes too, or the peer refuses the empty tree.
    renameSync(`${west.dataDir}.state`, `${west.dataDir}.state.replaced`);
    west = await startPeer('west', west.dataDir, west.port);
    // As before each plain copy: the resync ends with a flush of west's file system, which
    // must not be billed for writing out the removal of the old tree.
    execFileSync('sync');
    const t2 = Date.now();
    execFileSync(process.execPath, [...mountProfiling(), CLI, ...mountArgs(mnt, [east, westAsDialled], state)]);
    row.resyncWallSeconds = (Date.now() - t2) / 1000;
    const line = readFileSync(join(state, 'mount.log'), 'utf8').split('\n').filter((l) => l.includes('full resync finished')).pop();
    const r = JSON.parse(line);
    row.resync = { seconds: r.seconds, copySeconds: r.copySeconds, verifySeconds: r.verifySeconds, mbPerS: mib(r.bytes) / r.copySeconds, filesPerS: r.files / r.copySeconds };
    execFileSync(process.execPath, [CLI, 'unmount', mnt]);
    const plainAfter = plainCopySeconds(east.dataDir, join(dir, 'plain-copy-after'));
    row.plainCopy = [plainBefore, plainAfter].map((seconds) => ({ mbPerS: mib(size.bytes) / seconds, filesPerS: size.files / seconds }));
    // a plain copy over the network: tar through a loopback TCP socket, flushed (what any copy between two machines pays)
    const netSeconds = await tarOverTcp(east.dataDir, join(dir, 'tar-copy'));
    row.tarCopy = { mbPerS: mib(size.bytes) / netSeconds, filesPerS: size.files / netSeconds };
    row.size = size;
  } finally {
    if (existsSync(mnt)) try { execFileSync(process.execPath, [CLI, 'unmount', mnt], { stdio: 'ignore' }); } catch { /* not mounted */ }
    await (values.profile ? stopGently : kill9)(east);
    await (values.profile ? stopGently : kill9)(west);
    rmSync(dir, { recursive: true, force: true });
  }
  return row;
}

/** fs.cpSync of a peer's tree (without its state), then sync; seconds. The copy stays until the round ends (see the resync's note on deleting). */
function plainCopySeconds(src, dst) {
  execFileSync('sync');
  const started = Date.now();
  cpSync(src, dst, { recursive: true, filter: (path) => !path.endsWith('/.mirrorfs') });
  execFileSync('sync');
  return (Date.now() - started) / 1000;
}

const rows = [];
try {
  if (values.only !== 'small') rows.push(await round(`large (${LARGE_FILES} files, ${LARGE_MIB} MiB)`, writeLarge));
  if (values.only !== 'large') rows.push(await round(`small (${SMALL_FILES} files)`, writeSmall));
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(base, { recursive: true, force: true });
}
const f1 = (n) => n.toFixed(1);
console.log('\ncatch-up: from the restart of west (detection <= 1 s included) to every peer in sync; resync: copy, then both manifests hashed and compared (verify)\n');
console.log('| data set | journaled for west | catch-up | catch-up rate | full resync copy + verify | resync copy rate | plain copy (fs.cpSync + sync) just before / just after the resync | plain copy over TCP (tar to tar through a socket, + sync) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(`| ${r.label} | ${r.journal.ops} ops, ${f1(mib(r.journal.bytes))} MiB | ${f1(r.catchUpSeconds)} s | ${f1(r.catchUpMBps)} MiB/s, ${Math.round(r.catchUpFilesPerS)} files/s | ${f1(r.resync.copySeconds)} + ${f1(r.resync.verifySeconds)} s | ${f1(r.resync.mbPerS)} MiB/s, ${Math.round(r.resync.filesPerS)} files/s | ${r.plainCopy.map((c) => `${f1(c.mbPerS)} MiB/s, ${Math.round(c.filesPerS)} files/s`).join(' / ')} | ${f1(r.tarCopy.mbPerS)} MiB/s, ${Math.round(r.tarCopy.filesPerS)} files/s |`);
}
console.log('\nwrite latency of 4 KiB writes through the mount (separate process):\n');
console.log('| data set | all in sync p50 / p99 µs | during catch-up p50 / p99 µs |');
console.log('| --- | ---: | ---: |');
for (const r of rows) console.log(`| ${r.label} | ${Math.round(r.latencyInSync.p50)} / ${Math.round(r.latencyInSync.p99)} | ${r.latencyDuringCatchUp ? `${Math.round(r.latencyDuringCatchUp.p50)} / ${Math.round(r.latencyDuringCatchUp.p99)}` : '- (--no-probe)'} |`);
