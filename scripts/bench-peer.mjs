#!/usr/bin/env node
// Peer benchmark (not a test): drives a real mirrorfs-peer on loopback, with
// durability on (fsync before ack), and prints a table.
//
//   npm run bench            # build, then this script
//   node scripts/bench-peer.mjs [--seconds S] [--data DIR]
//
// Workloads: 4 KiB writes one at a time (p50/p99 latency), 4 KiB writes with
// 16 in flight (ops/s), 128 KiB writes one at a time and 16 in flight (MB/s),
// and create+write+fsync-dir of small files (files/s).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PeerClient } from '../dist/client/peer-client.js';
import { benchTransport } from './lib/bench-tls.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, data: { type: 'string' } } });
const seconds = Number(values.seconds);
const base = values.data ? resolve(values.data) : mkdtempSync(join(tmpdir(), 'mirrorfs-bench-'));
const transport = await benchTransport(base);
const dataDir = join(base, 'data');
mkdirSync(dataDir, { recursive: true });
// The peer's state goes beside its data directory (src/peer/state-location.ts).
mkdirSync(`${dataDir}.state`, { recursive: true, mode: 0o700 });
const token = 'bench-token-0123456789abcdef';
writeFileSync(join(`${dataDir}.state`, 'token'), token, { mode: 0o600 });

const peer = spawn(process.execPath, [resolve(import.meta.dirname, '../dist/cli/mirrorfs-peer.js'), '--data', dataDir, '--listen', '127.0.0.1:0', '--name', 'bench', ...transport.peerArgs, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((res, rej) => {
  let out = '';
  const t = setTimeout(() => rej(new Error('peer did not start in 10 s')), 10_000);
  peer.stdout.on('data', (d) => {
    out += d;
    const m = /listening on [^ ]+:(\d+)/.exec(out);
    if (m) { clearTimeout(t); res(Number(m[1])); }
  });
});
const client = new PeerClient(`${transport.scheme}://127.0.0.1:${port}`, { name: 'bench', token, transport: transport.clientTransport, timeoutMs: 30_000 });
const mount = 'bench-mount';
await client.handshake(mount, 1);
let seq = 0;
const stamp = (op) => ({ ...op, mount, epoch: 1, seq: ++seq });

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function sequential(label, size, file) {
  await client.call(stamp({ op: 'create', path: file, mode: 0o644 }));
  const buf = Buffer.alloc(size, 0x5a);
  const lat = [];
  const end = performance.now() + seconds * 1000;
  let offset = 0;
  while (performance.now() < end) {
    const t0 = performance.now();
    await client.call(stamp({ op: 'write', path: file, offset }), buf);
    lat.push((performance.now() - t0) * 1000);
    offset += size;
  }
  lat.sort((a, b) => a - b);
  const elapsed = lat.reduce((a, b) => a + b, 0) / 1e6;
  return { label, ops: lat.length, p50_us: pct(lat, 50), p99_us: pct(lat, 99), ops_per_s: lat.length / elapsed, mb_per_s: (lat.length * size) / elapsed / 1e6 };
}

async function parallel(label, size, inFlight) {
  const buf = Buffer.alloc(size, 0x33);
  for (let j = 0; j < inFlight; j++) await client.call(stamp({ op: 'create', path: `${label}-${j}`, mode: 0o644 }));
  let ops = 0;
  const lat = [];
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: inFlight }, async (_, j) => {
    let offset = 0;
    while (performance.now() < end) {
      const s = performance.now();
      await client.call(stamp({ op: 'write', path: `${label}-${j}`, offset }), buf);
      lat.push((performance.now() - s) * 1000);
      offset += size;
      ops++;
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { label, ops, p50_us: pct(lat, 50), p99_us: pct(lat, 99), ops_per_s: ops / elapsed, mb_per_s: (ops * size) / elapsed / 1e6 };
}

async function smallFiles(label) {
  await client.call(stamp({ op: 'mkdir', path: 'small', mode: 0o755 }));
  const buf = Buffer.alloc(4096, 1);
  let n = 0;
  const lat = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const s = performance.now();
    await client.call(stamp({ op: 'create', path: `small/f${n}`, mode: 0o644 }));
    await client.call(stamp({ op: 'write', path: `small/f${n}`, offset: 0 }), buf);
    lat.push((performance.now() - s) * 1000);
    n++;
  }
  lat.sort((a, b) => a - b);
  const elapsed = lat.reduce((a, b) => a + b, 0) / 1e6;
  return { label, ops: n, p50_us: pct(lat, 50), p99_us: pct(lat, 99), ops_per_s: n / elapsed, mb_per_s: (n * 4096) / elapsed / 1e6 };
}

const rows = [];
try {
  rows.push(await sequential('write 4 KiB, 1 in flight', 4096, 'seq4k'));
  rows.push(await parallel('write 4 KiB, 16 in flight', 4096, 16));
  rows.push(await sequential('write 128 KiB, 1 in flight', 128 * 1024, 'seq128k'));
  rows.push(await parallel('write 128 KiB, 16 in flight', 128 * 1024, 16));
  rows.push(await smallFiles('create + write 4 KiB file'));
} finally {
  await client.close();
  peer.kill('SIGTERM');
  await new Promise((r) => peer.once('exit', r));
  if (!values.data) rmSync(base, { recursive: true, force: true });
}

const f = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(`\nmirrorfs-peer on loopback, ${transport.label}, durable (fsync before ack), ${seconds} s per row, ${new Date().toISOString()}\n`);
console.log('| workload | ops | p50 µs | p99 µs | ops/s | MB/s |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(`| ${r.label} | ${f(r.ops)} | ${f(r.p50_us)} | ${f(r.p99_us)} | ${f(r.ops_per_s)} | ${f(r.mb_per_s, 1)} |`);
console.log('\ntargets (issue 2): 4 KiB p50 <= 350 µs; >= 5,000 ops/s with 16 in flight; >= 300 MB/s at 128 KiB');
