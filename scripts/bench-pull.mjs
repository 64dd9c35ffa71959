#!/usr/bin/env node
// The copy at the heart of a full resync, alone (not a test): one peer pulls a tree of
// small files from another (read-many batches, put-file, one flush at the end), as the
// mount has it do when a peer's data was replaced. Compared with fs.cpSync of the same
// tree on this disk. Two real peers on loopback, over mutual TLS
// (MIRRORFS_BENCH_CLEARTEXT=1: cleartext).
//   node scripts/bench-pull.mjs [--files 20000]
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchTransport } from './lib/bench-tls.mjs';

const { values } = parseArgs({ options: { files: { type: 'string', default: '20000' } } });
const N = Number(values.files);
const root = resolve(import.meta.dirname, '..');
const { PeerClient } = await import(join(root, 'dist/client/peer-client.js'));
const base = mkdtempSync(join(tmpdir(), 'mirrorfs-pull-'));
const transport = await benchTransport(base);
const token = 'pull-bench-token-0123456789';
writeFileSync(join(base, 'token'), token);
for (const n of ['east', 'west']) mkdirSync(join(base, n), { recursive: true });
let bytes = 0;
for (let d = 0; d < Math.ceil(N / 100); d++) {
  mkdirSync(join(base, 'east', `d${d}`));
  for (let f = 0; f < 100 && d * 100 + f < N; f++) {
    const content = `file ${d}/${f} `.repeat(1 + (f % 40));
    bytes += content.length;
    writeFileSync(join(base, 'east', `d${d}`, `f${f}`), content);
  }
}
execFileSync('sync');
const children = [];
function peer(name) {
  const p = spawn(process.execPath, [join(root, 'dist/cli/mirrorfs-peer.js'), '--data', join(base, name), '--listen', '127.0.0.1:0', '--name', name, '--token-file', join(base, 'token'), ...transport.peerArgs, '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(p);
  return new Promise((r, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on [^ ]+:(\d+)/.exec(out);
      if (m) r(`${transport.scheme}://127.0.0.1:${m[1]}`);
    });
    p.once('exit', (code) => reject(new Error(`peer ${name} exited ${code}`)));
  });
}
try {
  const [eastUrl, westUrl] = await Promise.all([peer('east'), peer('west')]);
  const client = (url) => new PeerClient(url, { token, transport: transport.clientTransport, timeoutMs: 600_000 });
  const east = client(eastUrl);
  const west = client(westUrl);
  await east.handshake('bench', 1);
  await west.handshake('bench', 1);
  // Over TLS the puller reads with a ticket the owner signs (src/security/pull-ticket.ts), as the mount does.
  const { issuePullTicket } = await import(join(root, 'dist/security/pull-ticket.js'));
  const identity = transport.clientTransport.kind === 'tls' ? transport.clientTransport.identity : null;
  const from = identity === null ? { url: eastUrl, token } : { url: eastUrl, ticket: issuePullTicket({ source: (await east.status()).id, mount: 'bench', epoch: 1, target: (await west.status()).certificate }, identity.key) };
  const t0 = performance.now();
  const r = await west.pull('bench', 1, from, 600_000);
  const pullS = (performance.now() - t0) / 1000;
  await east.close();
  await west.close();
  const t1 = performance.now();
  cpSync(join(base, 'east'), join(base, 'copy'), { recursive: true, filter: (src) => !src.endsWith('/.mirrorfs') });
  execFileSync('sync');
  const cpS = (performance.now() - t1) / 1000;
  console.log(`\nfull-resync copy of ${N.toLocaleString('en-US')} small files (${(bytes / 1048576).toFixed(1)} MiB), ${transport.label}, ${new Date().toISOString()}\n`);
  console.log('| copy | seconds | files/s |');
  console.log('| --- | ---: | ---: |');
  console.log(`| peer pull (what a resync does) | ${pullS.toFixed(2)} | ${Math.round(r.filesCopied / pullS).toLocaleString('en-US')} |`);
  console.log(`| fs.cpSync + sync | ${cpS.toFixed(2)} | ${Math.round(N / cpS).toLocaleString('en-US')} |`);
} finally {
  for (const p of children) p.kill('SIGTERM');
  await Promise.all(children.map((p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)))));
  rmSync(base, { recursive: true, force: true });
}
