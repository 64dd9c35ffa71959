#!/usr/bin/env node
// What this machine allows (not a test): the floor under each of issue 3's rows
// for a mirror that keeps the promise (every change durable before the call
// returns), measured from the parts a mirror cannot do without, each with no
// work of ours in it:
//   - the disk: one O_DSYNC append, 4 KiB and 128 KiB;
//   - FUSE: a no-op fuse-native filesystem (same options as the mount: big
//     writes, long caches) written to from this process, its server in a child;
//   - the network: a bare node:http2 pair over mutual TLS on loopback with the
//     product's identities, one call at a time as envelopes on one stream (the
//     call channel's framing), the server answering at once;
//   - one durable copy: the bench's metadata and small-file workloads on a plain
//     directory with each change made durable (fsync of the file and of the
//     directory whose entries changed), which any copy of ours must at least do.
// A mirror needs, per change, at least the FUSE hop + one round trip + one
// durable write, in sequence (a hop is the FUSE no-op write plus the bare call,
// p50); the script sums them and prints, for each row, the Gluster figure a
// target would need for the floor alone to meet it. The floors are generous:
// one peer, not two sharing the disk; one FUSE request per change (a mkdir
// takes a lookup too). They are this stack's floors (fuse-native, libfuse 2's
// 128 KiB pieces, Node's HTTP/2 over TLS), except the disk's and the one
// durable copy's, which any implementation on this machine pays.
//   node scripts/bench-floors.mjs [--dir DIR] [--quick]
// Needs: root (FUSE mount), a built dist/ (npm run build).
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, fsyncSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { benchTransport } from './lib/bench-tls.mjs';

const { values } = parseArgs({ options: { dir: { type: 'string' }, quick: { type: 'boolean', default: false }, role: { type: 'string' }, arg: { type: 'string' } } });
const dist = resolve(import.meta.dirname, '../dist');
const usNow = () => Number(process.hrtime.bigint()) / 1e3;
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
};

// ---- child roles: a no-op FUSE server, a bare HTTP/2 channel server ----
if (values.role === 'fuse') await noopFuse(values.arg);
else if (values.role === 'h2') await bareChannelServer(values.arg);
else await main();

async function noopFuse(mnt) {
  const { default: Fuse } = await import('fuse-native');
  const size = new Map([['/f', 0]]);
  const now = new Date();
  const stat = (mode, sz) => ({ mtime: now, atime: now, ctime: now, nlink: 1, size: sz, mode, uid: 0, gid: 0 });
  const ok = (cb) => process.nextTick(cb, 0);
  const fuse = new Fuse(mnt, {
    getattr: (p, cb) => (p === '/' ? cb(0, stat(0o40755, 4096)) : size.has(p) ? cb(0, stat(0o100644, size.get(p))) : cb(Fuse.ENOENT)),
    fgetattr: (p, _fd, cb) => cb(0, stat(0o100644, size.get(p) ?? 0)),
    readdir: (_p, cb) => cb(0, [...size.keys()].map((k) => k.slice(1))),
    create: (p, _mode, cb) => { size.set(p, 0); cb(0, 1); },
    open: (_p, _flags, cb) => cb(0, 1),
    truncate: (p, len, cb) => { size.set(p, len); ok(cb); },
    ftruncate: (p, _fd, len, cb) => { size.set(p, len); ok(cb); },
    write: (p, _fd, _buf, len, pos, cb) => { size.set(p, Math.max(size.get(p) ?? 0, pos + len)); cb(len); },
    flush: (_p, _fd, cb) => ok(cb),
    fsync: (_p, _fd, _d, cb) => ok(cb),
    release: (_p, _fd, cb) => ok(cb),
    utimens: (_p, _a, _m, cb) => ok(cb),
    chmod: (_p, _m, cb) => ok(cb),
  }, { fsname: 'floor,big_writes', entryTimeout: 3600, attrTimeout: 3600, subtype: 'floor', defaultPermissions: true });
  await new Promise((res, rej) => fuse.mount((err) => (err ? rej(err) : res())));
  process.stdout.write('mounted\n');
  const stop = () => fuse.unmount((err) => process.exit(err ? 1 : 0)); // the parent clears the mount itself on a failure
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop).resume();
}

async function bareChannelServer(base) {
  const { loadIdentity } = await import(join(dist, 'security/identity.js'));
  const { Trust } = await import(join(dist, 'security/trust.js'));
  const { createServer } = await import(join(dist, 'security/transport.js'));
  const { EnvelopeReader, encodeEnvelope } = await import(join(dist, 'protocol/envelope.js'));
  const t = { kind: 'tls', identity: loadIdentity(join(base, 'tls-peer'), ''), trust: new Trust(join(base, 'trust')) };
  const v = await import(join(dist, 'protocol/version.js'));
  const answer = Buffer.from('{"ok":true,"result":{"written":4096}}');
  // The peer's own HTTP/2 settings: windows, frame size.
  const server = createServer(t, { settings: { initialWindowSize: v.H2_STREAM_WINDOW_BYTES, maxFrameSize: v.H2_MAX_FRAME_BYTES } });
  server.on('session', (session) => session.setLocalWindowSize(v.H2_CONNECTION_WINDOW_BYTES));
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    const reader = new EnvelopeReader((id) => stream.write(Buffer.concat(encodeEnvelope(id, [answer]))));
    stream.on('data', (chunk) => reader.push(chunk));
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
  process.stdin.on('end', () => process.exit(0)).resume();
}

// ---- the measurements ----
/** O_DSYNC appends: the disk's part of one durable write. */
function dsyncAppends(dir, bytes, count) {
  return measureWriteLoop(join(dir, `dsync-${bytes}`), bytes, count, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DSYNC);
}

function fsyncDir(dir) {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  fsyncSync(fd);
  closeSync(fd);
}

/** fsbench's metadata workload (mkdir -p, rename, stat) with every change durable: ops/s as fsbench counts them. */
function durableMetadata(dir, n) {
  const root = join(dir, 'meta');
  mkdirSync(root);
  const g = (i) => join(root, `g${i % 20}`);
  for (let i = 0; i < 20; i++) mkdirSync(g(i));
  fsyncDir(root);
  let t0 = usNow();
  for (let i = 0; i < n; i++) {
    const d = join(g(i), `d${i}`);
    mkdirSync(d);
    fsyncDir(g(i));
    mkdirSync(join(d, 'x'));
    fsyncDir(d);
  }
  const tMk = usNow() - t0;
  t0 = usNow();
  for (let i = 0; i < n; i++) {
    renameSync(join(g(i), `d${i}`), join(g(i), `r${i}`));
    fsyncDir(g(i));
  }
  const tRn = usNow() - t0;
  t0 = usNow();
  for (let i = 0; i < n; i++) statSync(join(g(i), `r${i}`, 'x'));
  const tSt = usNow() - t0;
  rmSync(root, { recursive: true, force: true });
  return { all: (3 * n) / ((tMk + tRn + tSt) / 1e6), mkdirP: n / (tMk / 1e6), rename: n / (tRn / 1e6) };
}

/** fsbench's small-file creation (4 KiB, fsync each) with the new name durable too (fsync of its directory). */
function durableSmallFiles(dir, n) {
  const root = join(dir, 'small');
  const buf = Buffer.alloc(4096, 0x61);
  const leaf = (i) => join(root, `d${i % 10}`, `e${Math.floor(i / 10) % 10}`);
  const t0 = usNow();
  for (let i = 0; i < n; i++) {
    const d = leaf(i);
    if (i < 100) {
      mkdirSync(d, { recursive: true });
      fsyncDir(dirname(d));
      fsyncDir(dirname(dirname(d)));
    }
    const fd = openSync(join(d, `f${i}`), 'w');
    writeSync(fd, buf, 0, buf.length, 0);
    fsyncSync(fd);
    closeSync(fd);
    fsyncDir(d);
  }
  const perSecond = n / ((usNow() - t0) / 1e6);
  rmSync(root, { recursive: true, force: true });
  return perSecond;
}

/** Child process, resolved with its first line of output. */
function startChild(args) {
  const child = spawn(process.execPath, [import.meta.filename, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const first = new Promise((res, rej) => {
    let text = '';
    const timer = setTimeout(() => rej(new Error(`${args.join(' ')}: no answer within 20 s`)), 20_000);
    child.stdout.on('data', (d) => {
      text += d;
      if (text.includes('\n')) { clearTimeout(timer); res(text.split('\n')[0]); }
    });
    child.once('exit', (code) => { clearTimeout(timer); rej(new Error(`${args.join(' ')} exited with ${code}`)); });
  });
  return { child, first };
}

/** Stop a child (bounded: SIGKILL after 10 s); resolves with its exit code, null if it was killed by a signal. */
function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  const gone = new Promise((res) => child.once('exit', (code) => res(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  child.stdin.end();
  child.kill('SIGTERM');
  return gone.finally(() => clearTimeout(killer));
}

function fuseWrites(mnt, count, mib) {
  // In a separate process from the FUSE server (FIELD-NOTES: a server that syscalls into its own mount hangs).
  const small = measureWriteLoop(join(mnt, 'f'), 4096, count);
  const big = measureWriteLoop(join(mnt, 'f'), 1 << 20, mib);
  return { p50: small.p50, p99: small.p99, mbps: big.mbps };
}

/** Sequential writes of `bytes` at increasing offsets: p50/p99 latency of one write, and MB/s over the loop. */
function measureWriteLoop(file, bytes, count, flags = 'w') {
  const fd = openSync(file, flags);
  const buf = Buffer.alloc(bytes, 7);
  const lat = [];
  const t0 = usNow();
  for (let i = 0; i < count; i++) {
    const t = usNow();
    writeSync(fd, buf, 0, bytes, i * bytes);
    lat.push(usNow() - t);
  }
  const total = usNow() - t0;
  closeSync(fd);
  return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), mbps: (bytes * count) / total };
}

async function bareChannel(clientTransport, port, count) {
  const { openSession } = await import(join(dist, 'security/transport.js'));
  const { EnvelopeReader, encodeEnvelope } = await import(join(dist, 'protocol/envelope.js'));
  const v = await import(join(dist, 'protocol/version.js'));
  // The mount's own HTTP/2 settings (PeerClient): windows, frame size.
  const session = await openSession(`https://127.0.0.1:${port}`, clientTransport, { settings: { initialWindowSize: v.H2_STREAM_WINDOW_BYTES, maxFrameSize: v.H2_MAX_FRAME_BYTES } }, 10_000, 'floor');
  session.setLocalWindowSize(v.H2_CONNECTION_WINDOW_BYTES);
  const stream = session.request({ ':method': 'POST', ':path': '/' }, { endStream: false });
  const waiting = new Map();
  const reader = new EnvelopeReader((id) => { waiting.get(id)?.(); waiting.delete(id); });
  stream.on('data', (chunk) => reader.push(chunk));
  let nextId = 1;
  const call = (body) => new Promise((res) => {
    const id = nextId++;
    waiting.set(id, res);
    stream.write(Buffer.concat(encodeEnvelope(id, [body])));
  });
  const run = async (bytes, n) => {
    const body = Buffer.alloc(bytes, 1);
    for (let i = 0; i < Math.min(200, n); i++) await call(body); // warm-up
    const lat = [];
    for (let i = 0; i < n; i++) {
      const t = usNow();
      await call(body);
      lat.push(usNow() - t);
    }
    return { p50: pct(lat, 0.5), p99: pct(lat, 0.99) };
  };
  const tiny = await run(128, count); // a namespace change: a path and a mode
  const small = await run(4096, count);
  const big = await run(128 * 1024, Math.max(200, count >> 2));
  stream.close();
  session.close();
  return { tiny, small, big };
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('bench-floors: run as root (it mounts a no-op FUSE filesystem)');
  const base = mkdtempSync(join(values.dir ?? tmpdir(), 'mirrorfs-floors-'));
  const n = values.quick ? 500 : 3000;
  const children = [];
  let fuseMount = null;
  try {
    const disk4k = dsyncAppends(base, 4096, n);
    const disk128k = dsyncAppends(base, 128 * 1024, Math.max(200, n >> 3));
    const meta = durableMetadata(base, values.quick ? 500 : 2000);
    const small = durableSmallFiles(base, values.quick ? 1000 : 5000);

    fuseMount = join(base, 'fuse');
    mkdirSync(fuseMount);
    const fuseServer = startChild(['--role', 'fuse', '--arg', fuseMount]);
    children.push(fuseServer.child);
    await fuseServer.first;
    const fuse = fuseWrites(fuseMount, n, values.quick ? 128 : 512);
    if ((await stopChild(fuseServer.child)) === 0) fuseMount = null; // else cleared in finally

    const { clientTransport } = await benchTransport(base); // the peer's identity and trust, read by the child from base
    const h2 = startChild(['--role', 'h2', '--arg', base]);
    children.push(h2.child);
    const port = Number(await h2.first);
    const net = await bareChannel(clientTransport, port, n);

    const write4k = fuse.p50 + net.small.p50 + disk4k.p50;
    // A mirror's change is at least one FUSE hop and one round trip to a peer, on top of what one durable copy does.
    const namespaceHop = (fuse.p50 + net.tiny.p50) / 1e6; // seconds
    const writeHop = (fuse.p50 + net.small.p50) / 1e6;
    const metaMirror = 1 / (1 / meta.all + namespaceHop); // fsbench counts 3 ops per round (mkdir -p, rename, stat) and makes 3 changes (two mkdirs, a rename): a hop per op
    const smallMirror = 1 / (1 / small + namespaceHop + writeHop); // a create, then a 4 KiB write, per file
    const chunk128k = 128 * 1024 / (fuse.mbps) + net.big.p50 + disk128k.p50; // us per 128 KiB piece, in sequence
    const seqWriteMBps = (128 * 1024) / chunk128k;
    const f = (x) => x.toFixed(0);
    console.log(`\nfloors on this machine (${values.quick ? 'quick' : 'full'} run, ${new Date().toISOString()}); each part with no work of ours in it\n`);
    console.log('| part | p50 | p99 |');
    console.log('| --- | ---: | ---: |');
    console.log(`| O_DSYNC append, 4 KiB | ${f(disk4k.p50)} us | ${f(disk4k.p99)} us |`);
    console.log(`| O_DSYNC append, 128 KiB | ${f(disk128k.p50)} us | ${f(disk128k.p99)} us |`);
    console.log(`| FUSE no-op 4 KiB write, round trip | ${f(fuse.p50)} us | ${f(fuse.p99)} us |`);
    console.log(`| FUSE no-op 1 MiB writes (128 KiB pieces) | ${f(fuse.mbps)} MB/s | |`);
    console.log(`| HTTP/2 + mutual TLS, 128-byte call on one stream, answered at once | ${f(net.tiny.p50)} us | ${f(net.tiny.p99)} us |`);
    console.log(`| the same, 4 KiB call | ${f(net.small.p50)} us | ${f(net.small.p99)} us |`);
    console.log(`| the same, 128 KiB call | ${f(net.big.p50)} us | ${f(net.big.p99)} us |`);
    console.log(`| one durable copy: fsbench metadata, each change durable | ${f(meta.all)} ops/s (mkdir -p ${f(meta.mkdirP)}/s, rename ${f(meta.rename)}/s) | |`);
    console.log(`| one durable copy: fsbench small files, name durable too | ${f(small)} files/s | |`);
    console.log('\nwhat each issue-3 target needs of Gluster for the floor alone (no handling, one peer; this stack\'s FUSE and HTTP/2 parts) to meet it:\n');
    console.log('| row | floor | target | met by the floor only if gluster-nowb is |');
    console.log('| --- | ---: | --- | --- |');
    console.log(`| write-4k-qd1-p50 | ${f(write4k)} us (FUSE + call + O_DSYNC) | <= 1.0x | >= ${f(write4k)} us |`);
    console.log(`| sync-write-4k-p50 | ${f(write4k)} us | <= 0.5x | >= ${f(write4k * 2)} us |`);
    console.log(`| seq-write-1m | ${f(seqWriteMBps)} MB/s (128 KiB pieces in sequence) | >= 1.0x | <= ${f(seqWriteMBps)} MB/s |`);
    console.log(`| metadata | ${f(metaMirror)} ops/s (one durable copy + a hop per op; without the hops ${f(meta.all)}) | >= 10x | <= ${f(metaMirror / 10)} ops/s (without the hops <= ${f(meta.all / 10)}) |`);
    console.log(`| small-files-create | ${f(smallMirror)} files/s (one durable copy + two hops per file; without them ${f(small)}) | >= 4x | <= ${f(smallMirror / 4)} files/s (without the hops <= ${f(small / 4)}) |`);
    console.log('\n(the reads have no floor here: bench-fs reads the plain directory in the same sitting as Gluster.)');
  } finally {
    for (const c of children) await stopChild(c);
    if (fuseMount) try { execFileSync('fusermount', ['-u', '-z', fuseMount], { stdio: 'ignore' }); } catch { /* not mounted */ }
    rmSync(base, { recursive: true, force: true });
  }
}
