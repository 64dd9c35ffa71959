#!/usr/bin/env node
// Peak resident memory (not a test): a mount on two loopback peers (mutual TLS), no
// local copy; dd writes 256 MiB into it, then the file is read back with cold caches.
// Prints VmRSS and VmHWM of the mount and the peers after each step.
//   node scripts/bench-memory.mjs [--mib 256]
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchTransport } from './lib/bench-tls.mjs';
import { SERVICE_V8_FLAGS } from '../dist/cli/node-flags.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' } } });
const root = resolve(import.meta.dirname, '..');
const CLI = join(root, 'dist/cli/mirrorfs.js');
const base = mkdtempSync(join(tmpdir(), 'mirrorfs-memory-'));
const transport = await benchTransport(base);
const token = join(base, 'token');
writeFileSync(token, 'memory-bench-token-0123456789ab');
const peers = [];

async function startPeer(name) {
  const data = join(base, name);
  mkdirSync(data);
  // With the V8 flags the installed mirrorfs-peer runs with (the mount's background process adds them itself).
  const p = spawn(process.execPath, [...SERVICE_V8_FLAGS, join(root, 'dist/cli/mirrorfs-peer.js'), '--data', data, '--listen', '127.0.0.1:0', '--name', name, '--token-file', token, ...transport.peerArgs, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  peers.push(p);
  const port = await new Promise((resolvePort, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on [^ ]+:(\d+)/.exec(out);
      if (m) resolvePort(m[1]);
    });
    p.once('exit', (code) => reject(new Error(`peer ${name} exited ${code}`)));
  });
  return `${name}=${transport.scheme}://127.0.0.1:${port}`;
}

function memory(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(s)[1]);
  return { rss: Math.round(kib('VmRSS') / 1024), hwm: Math.round(kib('VmHWM') / 1024) };
}

const mnt = join(base, 'mnt');
mkdirSync(mnt);
const rows = [];
try {
  const specs = [await startPeer('east'), await startPeer('west')];
  execFileSync(process.execPath, [CLI, 'mount', mnt, '--peers', specs.join(','), '--token-file', token, '--state-dir', join(base, 'state'), '--log-level', 'warn', ...transport.mountArgs]);
  const mountPid = JSON.parse(execFileSync(process.execPath, [CLI, 'status', mnt, '--json'], { encoding: 'utf8' })).pid;
  const sample = (step) => {
    const m = memory(mountPid);
    const p = peers.map((c) => memory(c.pid));
    rows.push(`| ${step} | ${m.rss} | ${m.hwm} | ${Math.max(...p.map((x) => x.rss))} | ${Math.max(...p.map((x) => x.hwm))} |`);
  };
  sample('idle');
  execFileSync('dd', ['if=/dev/zero', `of=${mnt}/big`, 'bs=1M', `count=${values.mib}`], { stdio: 'ignore' });
  sample(`after writing ${values.mib} MiB`);
  execFileSync('sh', ['-c', `echo 3 > /proc/sys/vm/drop_caches; cat '${mnt}/big' > /dev/null`]);
  sample('after reading it back');
  execFileSync(process.execPath, [CLI, 'unmount', mnt]);
} finally {
  for (const p of peers) p.kill();
  rmSync(base, { recursive: true, force: true });
}
console.log('| step | mount RSS MiB | mount peak MiB | peer RSS MiB (max) | peer peak MiB (max) |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(r);
