#!/usr/bin/env node
// The distance benchmark (issue 5; not a test). Reproduces the setting of the
// patent's Table 1 with real processes: mirrorfs-peer mirrors and relays, the
// mount, and mirrorfs-link for distance. Topologies:
//   remote     one remote mirror at distance S (the primary keeps a local copy:
//              two copies S apart)
//   bipolar    two mirrors, each S/2 away in opposite directions (S apart)
//   cascade    S/H hops of H miles (--hop-miles, default 30: the patent's
//              four 30-mile hops for 120 miles), relays between, first-hop ack
//   cascade-e2e  the same cascades, ack mode end-to-end: write + fsync (the
//              barrier that returns once the far mirror has it)
// Write latency: sequential 4 KiB pwrite() calls through the mount from a
// separate process (cascade-e2e: pwrite + fsync each).
//
// Scale: the emulator adds about 100-200 us of its own per crossing (see
// `mirrorfs-link --help`), so distances are scaled up: with --scale 10 a
// "mile" is delayed 50 us instead of the patent's 5 us. The table reports the
// emulated one-way delay of each link and the distance it stands for at the
// patent's 5 us per mile (real miles = delay / 5 us).
//
//   node scripts/bench-distance.mjs [--writes N] [--scale S] [--out docs/distance]
// Writes <out>.json (what `mirrorfs plan` reads) and <out>.svg (the chart).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchTransport } from './lib/bench-tls.mjs';

const { values } = parseArgs({
  options: {
    writes: { type: 'string', default: '200' },
    scale: { type: 'string', default: '10' },
    out: { type: 'string', default: 'docs/distance' },
    separations: { type: 'string', default: '30,60,90,120' },
    'hop-miles': { type: 'string', default: '30' },
  },
});
const N = Number(values.writes);
const SCALE = Number(values.scale);
const SEPARATIONS = values.separations.split(',').map(Number);
const HOP_MILES = Number(values['hop-miles']);
for (const s of SEPARATIONS) if (!(s > 0) || s % HOP_MILES !== 0) throw new Error(`--separations: each must be a positive multiple of --hop-miles ${HOP_MILES}`);
const US_PER_MILE = 5;
const root = resolve(import.meta.dirname, '..');
const CLI = join(root, 'dist/cli/mirrorfs.js');
const PEER = join(root, 'dist/cli/mirrorfs-peer.js');
const LINK = join(root, 'dist/cli/mirrorfs-link.js');
const base = mkdtempSync(join(tmpdir(), 'mirrorfs-distance-'));
const transport = await benchTransport(base);
const token = join(base, 'token');
writeFileSync(token, 'distance-bench-token-0123456789');
const children = new Set();
let serial = 0;

function spawnReady(args, pattern) {
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(p);
  p.on('exit', () => children.delete(p));
  return new Promise((resolveReady, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = pattern.exec(out);
      if (m) resolveReady({ proc: p, port: Number(m[1]) });
    });
    p.once('exit', (code) => reject(new Error(`${args[0]} exited ${code}`)));
  });
}

async function peer(name, forwardTo) {
  const dir = join(base, `${name}-${serial++}`);
  mkdirSync(dir);
  const where = forwardTo ? ['--state', dir, '--forward-to', forwardTo] : ['--data', dir];
  const { port, proc } = await spawnReady([PEER, ...where, '--listen', '127.0.0.1:0', '--name', name, '--token-file', token, ...transport.peerArgs, '--log-level', 'warn'], /listening on [^ ]+:(\d+)/);
  return { url: `${transport.scheme}://127.0.0.1:${port}`, port, proc };
}

/** A link of `miles` (scaled) in front of port. */
async function link(port, miles) {
  const delayUs = Math.round(miles * US_PER_MILE * SCALE);
  const { port: p, proc } = await spawnReady([LINK, 'run', '--to', `127.0.0.1:${port}`, '--delay', `${delayUs}us`], / on [^ ]+:(\d+) ->/);
  return { url: `${transport.scheme}://127.0.0.1:${p}`, proc };
}

function measure(file, fsync) {
  const loop = `
    const fs = require('node:fs');
    const fd = fs.openSync(process.argv[1], 'w');
    const buf = Buffer.alloc(4096, 7);
    const lat = [];
    for (let i = 0; i < ${N}; i++) {
      const t = process.hrtime.bigint();
      fs.writeSync(fd, buf, 0, 4096, i * 4096);
      ${fsync ? 'fs.fsyncSync(fd);' : ''}
      lat.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    fs.closeSync(fd);
    lat.sort((a, b) => a - b);
    console.log(JSON.stringify({ p50: lat[lat.length >> 1], p99: lat[Math.floor(lat.length * 0.99)] }));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', loop, file], { encoding: 'utf8' }));
}

async function withMount(peers, extra, fsync) {
  const mnt = join(base, `mnt-${serial++}`);
  mkdirSync(mnt);
  execFileSync(process.execPath, [CLI, 'mount', mnt, '--peers', peers.join(','), '--token-file', token, '--state-dir', join(base, `state-${serial++}`), '--log-level', 'warn', ...transport.mountArgs, ...extra]);
  try {
    return measure(join(mnt, 'f'), fsync);
  } finally {
    execFileSync(process.execPath, [CLI, 'unmount', mnt]);
  }
}

function stopAll() {
  for (const c of children) c.kill('SIGKILL');
}

/** The links of a topology at a separation (emulated miles): one-way miles of each link, and how many hops. */
function shape(topology, separation) {
  if (topology === 'remote') return { linkMiles: separation, hops: 1 };
  if (topology === 'bipolar') return { linkMiles: separation / 2, hops: 1 };
  return { linkMiles: HOP_MILES, hops: separation / HOP_MILES };
}

/** One measurement: the topology with its copies `separation` (emulated) miles apart. */
async function run(topology, separation) {
  const { linkMiles, hops } = shape(topology, separation);
  try {
    if (topology === 'remote') {
      const m = await peer('mirror');
      const l = await link(m.port, linkMiles);
      return withMount([`mirror=${l.url}`], ['--local-copy', join(base, `local-${serial++}`)], false);
    }
    if (topology === 'bipolar') {
      const e = await peer('east');
      const w = await peer('west');
      const le = await link(e.port, linkMiles);
      const lw = await link(w.port, linkMiles);
      return withMount([`east=${le.url}`, `west=${lw.url}`], [], false);
    }
    // cascade: relays between the mount and the far mirror, one link per hop
    const mirror = await peer('mirror');
    let next = await link(mirror.port, linkMiles);
    for (let i = hops - 1; i >= 1; i--) {
      const r = await peer(`relay${i}`, next.url);
      next = await link(r.port, linkMiles);
    }
    const e2e = topology === 'cascade-e2e';
    return withMount([`far=${next.url}`], ['--local-copy', join(base, `local-${serial++}`), ...(e2e ? ['--ack-mode', 'end-to-end'] : [])], e2e);
  } finally {
    stopAll();
  }
}

const TOPOLOGIES = ['remote', 'bipolar', 'cascade', 'cascade-e2e'];
const names = { remote: 'one remote mirror', bipolar: 'bipolar (two mirrors, opposite directions)', cascade: `cascade of ${HOP_MILES}-mile hops, first-hop ack`, 'cascade-e2e': `cascade of ${HOP_MILES}-mile hops, end-to-end (write + fsync)` };
const results = [];
try {
  for (const topology of TOPOLOGIES) {
    for (const separation of SEPARATIONS) {
      const r = await run(topology, separation);
      const { linkMiles, hops } = shape(topology, separation);
      const linkOneWayUs = linkMiles * US_PER_MILE * SCALE;
      results.push({ topology, hops, linkOneWayUs, separationStandsForMiles: separation * SCALE, p50Us: r.p50, p99Us: r.p99 });
      process.stderr.write(`${topology} ${separation} emulated mi: p50 ${Math.round(r.p50)} us\n`);
    }
  }
} finally {
  stopAll();
  rmSync(base, { recursive: true, force: true });
}

const out = resolve(root, values.out);
const doc = {
  measured: new Date().toISOString(),
  machine: 'loopback, 2 vCPUs (all processes on one machine)',
  writes: N,
  scale: SCALE,
  usPerMile: US_PER_MILE,
  note: 'separationStandsForMiles = separation of the two farthest copies, in miles at 5 us per mile of one-way delay (the emulated distance times the scale)',
  results,
};
writeFileSync(`${out}.json`, `${JSON.stringify(doc, null, 2)}\n`);
writeFileSync(`${out}.svg`, chart(results));

console.log(`\nwrite latency, 4 KiB sequential writes through the mount (${N} per row), scale ${SCALE} (1 emulated mile = ${US_PER_MILE * SCALE} us one way; separations at the patent's 5 us/mile)\n`);
console.log('| topology | link one-way delay | hops | separation of the copies (at 5 us/mile) | write p50 | write p99 |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  console.log(`| ${names[r.topology]} | ${(r.linkOneWayUs / 1000).toFixed(2)} ms | ${r.hops} | ${Math.round(r.separationStandsForMiles)} mi | ${(r.p50Us / 1000).toFixed(2)} ms | ${(r.p99Us / 1000).toFixed(2)} ms |`);
}
console.log(`\nwrote ${out}.json and ${out}.svg`);

/** Write latency (p50) against separation, one line per topology, as a small SVG. */
function chart(rows) {
  const W = 720;
  const H = 420;
  const m = { l: 70, r: 250, t: 30, b: 50 };
  const xs = rows.map((r) => r.separationStandsForMiles);
  const ys = rows.map((r) => r.p50Us / 1000);
  const xMax = Math.max(...xs) * 1.05;
  const yMax = Math.max(...ys) * 1.1;
  const X = (v) => m.l + (v / xMax) * (W - m.l - m.r);
  const Y = (v) => H - m.b - (v / yMax) * (H - m.t - m.b);
  const colors = { remote: '#d62728', bipolar: '#1f77b4', cascade: '#2ca02c', 'cascade-e2e': '#9467bd' };
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  parts.push(`<text x="${m.l}" y="18" font-size="14">mirrorfs write latency (p50) against separation of the copies</text>`);
  parts.push(`<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/><line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`);
  for (let i = 0; i <= 5; i++) {
    const xv = (xMax / 5) * i;
    const yv = (yMax / 5) * i;
    parts.push(`<text x="${X(xv)}" y="${H - m.b + 16}" text-anchor="middle">${Math.round(xv)}</text>`);
    parts.push(`<text x="${m.l - 6}" y="${Y(yv) + 4}" text-anchor="end">${yv.toFixed(1)}</text>`);
    parts.push(`<line x1="${m.l}" y1="${Y(yv)}" x2="${W - m.r}" y2="${Y(yv)}" stroke="#eee"/>`);
  }
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">separation of the copies (miles at 5 us/mile, scale ${SCALE})</text>`);
  parts.push(`<text x="16" y="${(m.t + H - m.b) / 2}" transform="rotate(-90 16 ${(m.t + H - m.b) / 2})" text-anchor="middle">write latency p50 (ms)</text>`);
  let legendY = m.t + 10;
  for (const t of TOPOLOGIES) {
    const pts = rows.filter((r) => r.topology === t).sort((a, b) => a.separationStandsForMiles - b.separationStandsForMiles);
    parts.push(`<polyline fill="none" stroke="${colors[t]}" stroke-width="2" points="${pts.map((r) => `${X(r.separationStandsForMiles).toFixed(1)},${Y(r.p50Us / 1000).toFixed(1)}`).join(' ')}"/>`);
    for (const r of pts) parts.push(`<circle cx="${X(r.separationStandsForMiles).toFixed(1)}" cy="${Y(r.p50Us / 1000).toFixed(1)}" r="3" fill="${colors[t]}"/>`);
    parts.push(`<rect x="${W - m.r + 15}" y="${legendY - 9}" width="12" height="12" fill="${colors[t]}"/><text x="${W - m.r + 32}" y="${legendY + 1}">${names[t]}</text>`);
    legendY += 20;
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
