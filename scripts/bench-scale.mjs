#!/usr/bin/env node
// Scale (issue 23; not a test): how each step grows with the size of the tree, and how much
// memory each process holds while it runs. For each size, a tree of that many files (mixed
// sizes, deep and wide directories, a few large files) is made on east, copied to west
// (cp -a, then tar through a loopback socket: the plain copies to compare with), and then,
// on two loopback peers over mutual TLS and a mount with --ack 1:
//   mount          the mount's start when the peers agree (their trees compared by structure)
//   find, ls-lR    through the mount, page cache dropped first
//   verify         mirrorfs verify --metadata-only; verify-content: mirrorfs verify
//   catch-up       west killed, --changes small files written, west back: until in sync
//   mount-compare  a mount whose peers' histories differ (west missed a change): reconciled
//                  and compared by content hash
//   resync         west's data and state replaced by empty ones: the mount's full resync
// Peak resident memory of the mount and of each peer per step (VmHWM, reset before each step
// through /proc/PID/clear_refs). Prints a table, writes docs/scale.json and docs/scale.svg
// (log-log: seconds against files, one line per step).
// After each step the mount's own account of its memory (status --json: the JavaScript heap,
// buffers outside it) and its malloc arena are kept too, to tell what holds the peak.
//   node scripts/bench-scale.mjs [--sizes 10000,100000] [--changes 10000] [--large-mib 256] [--out docs/scale.json] [--keep] [--skip-tar] [--replot]
// --replot: no run; the table and the chart again from --out.
// --skip-tar: no copy through tar (cp -a still makes west's tree: it is timed as ever).
// --keep: rows of other sizes already in --out are kept (a size measured in another sitting;
// each row says when it was measured).
// Needs root (drop_caches, FUSE) and a build (npm run build).
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchTransport } from './lib/bench-tls.mjs';
import { startBenchPeer, tarOverTcp } from './lib/bench-peer.mjs';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '10000,100000' }, changes: { type: 'string', default: '10000' }, 'large-mib': { type: 'string', default: '256' }, out: { type: 'string', default: 'docs/scale.json' }, keep: { type: 'boolean', default: false }, 'skip-tar': { type: 'boolean', default: false }, replot: { type: 'boolean', default: false } } });
const SIZES = values.sizes.split(',').map(Number);
const root0 = resolve(import.meta.dirname, '..');
if (values.replot) {
  // The table and the chart again from --out (rows put together from several sittings, say).
  const out = resolve(root0, values.out);
  const data = JSON.parse(readFileSync(out, 'utf8'));
  printTable(data.rows, `${data.transport}, rows measured ${[...new Set(data.rows.map((r) => (r.measured ?? data.measured).slice(0, 16)))].join(', ')}`);
  writeFileSync(out.replace(/\.json$/, '.svg'), chart(data.rows));
  process.exit(0);
}
const CHANGES = Number(values.changes);
const LARGE_MIB = Number(values['large-mib']);
const root = root0;
const CLI = join(root, 'dist/cli/mirrorfs.js');
const base = mkdtempSync(join(tmpdir(), 'mirrorfs-scale-'));
const transport = await benchTransport(base);
const token = join(base, 'token');
writeFileSync(token, 'scale-bench-token-0123456789', { mode: 0o600 });
const children = new Set();
const rows = [];
/** The mount point while a mount runs (its memory is read after each step). */
let mountedAt = null;

function cli(args, timeoutMs = 3_600_000) {
  return execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

function startPeer(name, dataDir, port = 0) {
  return startBenchPeer({ name, dataDir, port, token, transport, children });
}

async function kill9(peer) {
  if (peer.proc.exitCode !== null || peer.proc.signalCode !== null) return;
  const gone = new Promise((r) => peer.proc.once('exit', r));
  peer.proc.kill('SIGKILL');
  await gone;
}

/** Mount in the background; resolves with the mount process's pid. */
function mount(mnt, peers, state) {
  const out = cli(['mount', mnt, '--peers', peers.map((p) => `${p.name}=${p.url}`).join(','), '--token-file', token, '--state-dir', state, '--ack', '1', '--peer-timeout', '2000', '--log-level', 'warn', ...transport.mountArgs]);
  return Number(/pid (\d+)/.exec(out)[1]);
}

function resetPeaks(pids) {
  for (const pid of pids) if (pid) try { writeFileSync(`/proc/${pid}/clear_refs`, '5'); } catch { /* gone */ }
}

/** The mount's memory after a step, MiB: its own account (status --json) and its malloc arena ([heap] in smaps: libfuse, SQLite, freed buffers). */
function mountMemoryMiB(mnt, pid) {
  try {
    const m = JSON.parse(cli(['status', mnt, '--json'])).memory;
    const arena = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/smaps`, 'utf8'));
    const mib = (b) => Math.round(b / 2 ** 20);
    return { rss: mib(m.rss), heapUsed: mib(m.heapUsed), heapTotal: mib(m.heapTotal), external: mib(m.external), mallocArena: arena ? Math.round(Number(arena[1]) / 1024) : null };
  } catch {
    return null;
  }
}

function peakMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

function dropCaches() {
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

async function waitFor(probe, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const inSync = (mnt) => JSON.parse(cli(['status', mnt, '--json'])).peers.every((p) => p.state === 'in-sync');

/**
 * A tree of n files: directories three levels deep (wide at the top, 50 files a leaf),
 * sizes mostly small (0-8 KiB), one in 20 up to 256 KiB, and a few large files adding up
 * to LARGE_MIB per 100,000 files. Deterministic contents.
 */
function makeTree(dir, n) {
  mkdirSync(dir, { recursive: true });
  let bytes = 0;
  const chunk = Buffer.alloc(256 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 0xff;
  const perLeaf = 50;
  const leaves = Math.ceil(n / perLeaf);
  const large = Math.max(1, Math.round((n / 100_000) * 4));
  for (let leaf = 0; leaf < leaves; leaf++) {
    const d = join(dir, `a${leaf % 10}`, `b${Math.floor(leaf / 10) % 100}`, `c${leaf}`);
    mkdirSync(d, { recursive: true });
    for (let f = 0; f < perLeaf && leaf * perLeaf + f < n; f++) {
      const k = leaf * perLeaf + f;
      const size = k < large ? 0 : k % 20 === 0 ? (k * 7919) % (256 * 1024) : (k * 131) % 8192;
      const fd = openSync(join(d, `f${f}`), 'w');
      if (k < large) {
        const total = Math.round((LARGE_MIB * 1024 * 1024 * Math.max(1, n / 100_000)) / large);
        for (let w = 0; w < total; w += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, total - w));
        bytes += total;
      } else {
        writeSync(fd, chunk, 0, size);
        bytes += size;
      }
      closeSync(fd);
    }
  }
  return bytes;
}

async function step(size, name, pids, fn, extra = {}) {
  resetPeaks(Object.values(pids));
  const t0 = performance.now();
  const result = await fn();
  const seconds = (performance.now() - t0) / 1000; // the step's own figure, if it gives one, wins (a resync's from the mount's log)
  const count = result?.count ?? size.files;
  const row = { files: size.files, bytes: size.bytes, step: name, seconds: Number((result?.seconds ?? seconds).toFixed(3)), rate: Math.round(count / (result?.seconds ?? seconds)), peakRssMiB: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, pid ? peakMiB(pid) : null])), ...extra };
  if (mountedAt && pids.mount) row.mountMemoryMiB = mountMemoryMiB(mountedAt, pids.mount);
  rows.push(row);
  console.error(`  ${name}: ${row.seconds} s, ${row.rate} files/s, peak RSS ${JSON.stringify(row.peakRssMiB)}`);
  return result;
}

async function runSize(n) {
  const dir = join(base, `n${n}`);
  const mnt = join(dir, 'mnt');
  const state = join(dir, 'state');
  mkdirSync(mnt, { recursive: true });
  mountedAt = mnt;
  console.error(`${n.toLocaleString('en-US')} files: making the tree`);
  const bytes = makeTree(join(dir, 'east'), n);
  const size = { files: n, bytes };
  const none = { mount: null, east: null, west: null };
  dropCaches();
  await step(size, 'copy', none, () => void execFileSync('cp', ['-a', join(dir, 'east'), join(dir, 'west')]), { via: 'cp -a' });
  if (!values['skip-tar']) {
    dropCaches();
    await step(size, 'copy', none, () => tarOverTcp(join(dir, 'east'), join(dir, 'copy-tar')).then((seconds) => ({ seconds })), { via: 'tar over TCP' });
    rmSync(join(dir, 'copy-tar'), { recursive: true, force: true });
  }
  let east = await startPeer('east', join(dir, 'east'));
  let west = await startPeer('west', join(dir, 'west'));
  const pids = () => ({ mount: mountPid, east: east.proc.pid, west: west.proc.pid });
  let mountPid = null;
  dropCaches();
  await step(size, 'mount', { mount: null, east: east.proc.pid, west: west.proc.pid }, () => {
    mountPid = mount(mnt, [east, west], state);
  });
  rows.at(-1).peakRssMiB.mount = peakMiB(mountPid);
  rows.at(-1).mountMemoryMiB = mountMemoryMiB(mnt, mountPid);
  dropCaches();
  await step(size, 'find', pids(), () => void execFileSync('sh', ['-c', `find ${mnt} | wc -l`]));
  dropCaches();
  await step(size, 'ls-lR', pids(), () => void execFileSync('sh', ['-c', `ls -lR ${mnt} > /dev/null`], { maxBuffer: 1 << 30 }));
  await step(size, 'verify', pids(), () => void cli(['verify', mnt, '--metadata-only']));
  await step(size, 'verify-content', pids(), () => void cli(['verify', mnt]));
  // Catch-up: west misses CHANGES new small files.
  await kill9(west);
  const changes = Math.min(CHANGES, n);
  const writer = `const fs=require('fs');const d=process.argv[1];fs.mkdirSync(d,{recursive:true});for(let i=0;i<${changes};i++)fs.writeFileSync(d+'/n'+i,'change '+i);`;
  execFileSync(process.execPath, ['-e', writer, join(mnt, 'changes')]);
  west = await startPeer('west', join(dir, 'west'), west.port);
  await step(size, 'catch-up', pids(), () => waitFor(() => inSync(mnt), 'west caught up', 3_600_000).then(() => ({ count: changes })), { changes });
  // A mount whose peers' histories differ: west misses one change, then the mount starts again.
  await kill9(west);
  writeFileSync(join(mnt, 'missed-by-west'), 'x');
  cli(['unmount', mnt]);
  west = await startPeer('west', join(dir, 'west'), west.port);
  dropCaches();
  // From here the tree also holds the catch-up's files and the one west missed.
  const treeFiles = n + changes + 1;
  await step(size, 'mount-compare', { mount: null, east: east.proc.pid, west: west.proc.pid }, () => {
    mountPid = mount(mnt, [east, west], state);
    return { count: treeFiles };
  }, { treeFiles });
  rows.at(-1).peakRssMiB.mount = peakMiB(mountPid);
  rows.at(-1).mountMemoryMiB = mountMemoryMiB(mnt, mountPid);
  cli(['unmount', mnt]);
  // Full resync: west's disk replaced (its data and its state).
  await kill9(west);
  renameSync(west.dataDir, `${west.dataDir}.replaced`);
  renameSync(`${west.dataDir}.state`, `${west.dataDir}.state.replaced`);
  west = await startPeer('west', join(dir, 'west'), west.port);
  execFileSync('sync');
  await step(size, 'resync', { mount: null, east: east.proc.pid, west: west.proc.pid }, () => {
    mountPid = mount(mnt, [east, west], state);
    const line = readFileSync(join(state, 'mount.log'), 'utf8').split('\n').filter((l) => l.includes('full resync finished')).pop();
    return { seconds: JSON.parse(line).seconds, count: treeFiles };
  }, { treeFiles });
  rows.at(-1).peakRssMiB.mount = peakMiB(mountPid);
  rows.at(-1).mountMemoryMiB = mountMemoryMiB(mnt, mountPid);
  cli(['unmount', mnt]);
  await kill9(east);
  await kill9(west);
  rmSync(dir, { recursive: true, force: true });
}

try {
  const free = statfsSync(base);
  console.error(`scale bench in ${base}: ${(free.bavail * free.bsize / 2 ** 30).toFixed(0)} GiB free, sizes ${SIZES.join(', ')}, ${transport.label}`);
  for (const n of SIZES) await runSize(n);
} finally {
  for (const p of children) p.kill('SIGKILL');
  for (const d of SIZES.map((n) => join(base, `n${n}`, 'mnt'))) if (existsSync(d)) try { execFileSync(process.execPath, [CLI, 'unmount', d], { stdio: 'ignore' }); } catch { /* not mounted */ }
}
rmSync(base, { recursive: true, force: true });

const when = new Date().toISOString();
printTable(rows, `${transport.label}, ${when} (node scripts/bench-scale.mjs --sizes ${SIZES.join(',')} --changes ${CHANGES})`);
const out = resolve(root, values.out);
if (values.keep && existsSync(out)) {
  // Rows of sizes not measured now stay, each with when it was measured; the table above shows this sitting's only.
  const before = JSON.parse(readFileSync(out, 'utf8'));
  const kept = before.rows.filter((r) => !SIZES.includes(r.files)).map((r) => ({ measured: before.measured, ...r }));
  rows.unshift(...kept);
  rows.sort((a, b) => a.files - b.files);
}
writeFileSync(out, `${JSON.stringify({ measured: when, transport: transport.label, rows }, null, 2)}\n`);
writeFileSync(out.replace(/\.json$/, '.svg'), chart(rows));
console.log(`\nwrote ${out} and ${out.replace(/\.json$/, '.svg')}`);

/** The table: per row the step's time and rate, peak RSS of each process, and the mount's heap and malloc arena after it. */
function printTable(all, title) {
  console.log(`\nscale, ${title}\n`);
  console.log('| files | GiB | step | seconds | files/s | peak RSS MiB (mount / east / west) | mount after: heap used / malloc arena MiB |');
  console.log('| ---: | ---: | --- | ---: | ---: | --- | --- |');
  for (const r of all) {
    const rss = ['mount', 'east', 'west'].map((k) => r.peakRssMiB[k] ?? '-').join(' / ');
    const mem = r.mountMemoryMiB ? `${r.mountMemoryMiB.heapUsed} / ${r.mountMemoryMiB.mallocArena ?? '-'}` : '-';
    console.log(`| ${r.files.toLocaleString('en-US')} | ${(r.bytes / 2 ** 30).toFixed(2)} | ${r.step}${r.via ? ` (${r.via})` : ''}${r.changes ? ` (${r.changes} changes)` : ''}${r.treeFiles ? ` (${r.treeFiles.toLocaleString('en-US')} files by then)` : ''} | ${r.seconds} | ${r.rate.toLocaleString('en-US')} | ${rss} | ${mem} |`);
  }
}

/** Log-log lines of seconds against files, one per step. */
function chart(all) {
  const W = 720, H = 420, L = 70, R = 170, T = 20, B = 50;
  const steps = [...new Set(all.map((r) => (r.via ? `${r.step} (${r.via})` : r.step)))];
  const xs = all.map((r) => r.files), ys = all.map((r) => r.seconds).filter((s) => s > 0);
  const [x0, x1] = [Math.floor(Math.log10(Math.min(...xs))), Math.ceil(Math.log10(Math.max(...xs)))];
  const [y0, y1] = [Math.floor(Math.log10(Math.min(...ys))), Math.ceil(Math.log10(Math.max(...ys)))];
  const px = (v) => L + ((Math.log10(v) - x0) / Math.max(1, x1 - x0)) * (W - L - R);
  const py = (v) => H - B - ((Math.log10(Math.max(v, 10 ** y0)) - y0) / Math.max(1, y1 - y0)) * (H - T - B);
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#000'];
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">\n`;
  for (let e = x0; e <= x1; e++) svg += `<line x1="${px(10 ** e)}" y1="${T}" x2="${px(10 ** e)}" y2="${H - B}" stroke="#ddd"/><text x="${px(10 ** e)}" y="${H - B + 15}" text-anchor="middle">10^${e}</text>\n`;
  for (let e = y0; e <= y1; e++) svg += `<line x1="${L}" y1="${py(10 ** e)}" x2="${W - R}" y2="${py(10 ** e)}" stroke="#ddd"/><text x="${L - 5}" y="${py(10 ** e) + 4}" text-anchor="end">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)} s</text>\n`;
  svg += `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">files in the tree</text>\n`;
  steps.forEach((s, i) => {
    const pts = all.filter((r) => (r.via ? `${r.step} (${r.via})` : r.step) === s).map((r) => `${px(r.files).toFixed(1)},${py(r.seconds).toFixed(1)}`);
    const c = colors[i % colors.length];
    svg += `<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.join(' ')}"/>${pts.map((p) => `<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${c}"/>`).join('')}\n`;
    svg += `<line x1="${W - R + 10}" y1="${T + 10 + i * 16}" x2="${W - R + 30}" y2="${T + 10 + i * 16}" stroke="${c}" stroke-width="2"/><text x="${W - R + 35}" y="${T + 14 + i * 16}">${s}</text>\n`;
  });
  return `${svg}</svg>\n`;
}
