// What the benchmarks share: a real mirrorfs-peer started and waited for (tests use
// test/helpers/peer.ts), and the plain copy across a socket that resyncs are compared with.
//   import { startBenchPeer, tarOverTcp } from './lib/bench-peer.mjs'
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

const PEER = resolve(import.meta.dirname, '../../dist/cli/mirrorfs-peer.js');
// The node flags the installed mirrorfs-peer command runs with (a mount's background process adds its own).
const { withServiceFlags } = await import(resolve(import.meta.dirname, '../../dist/cli/node-flags.js'));

/**
 * Resolves with { name, dataDir, port, proc, url } once the peer listens.
 * `children`: a Set the process is kept in while it runs (for the caller's cleanup);
 * `nodeArgs`: flags for node itself (a CPU profile, say), besides the service flags users' peers run with.
 */
export function startBenchPeer({ name, dataDir, port = 0, token, transport, children, nodeArgs = [] }) {
  mkdirSync(dataDir, { recursive: true });
  const p = spawn(process.execPath, [...withServiceFlags(nodeArgs, ''), PEER, '--data', dataDir, '--listen', `127.0.0.1:${port}`, '--name', name, '--token-file', token, ...transport.peerArgs, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(p);
  p.on('exit', () => children.delete(p));
  return new Promise((resolvePeer, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on [^ ]+:(\d+)/.exec(out);
      if (m) resolvePeer({ name, dataDir, port: Number(m[1]), proc: p, url: `${transport.scheme}://127.0.0.1:${m[1]}` });
    });
    p.once('exit', (code) => reject(new Error(`peer ${name} exited ${code}`)));
  });
}

/** tar -c | loopback TCP socket | tar -x, then sync; seconds (a copy that crosses a network, as a resync between two machines must). */
export async function tarOverTcp(src, dst) {
  mkdirSync(dst);
  execFileSync('sync');
  const started = Date.now();
  await new Promise((resolveCopy, reject) => {
    const server = net.createServer((socket) => {
      const unpack = spawn('tar', ['-C', dst, '-xf', '-'], { stdio: ['pipe', 'ignore', 'inherit'] });
      socket.pipe(unpack.stdin);
      unpack.on('exit', (code) => {
        server.close();
        if (code === 0) resolveCopy();
        else reject(new Error(`tar -x exited ${code}`));
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const socket = net.connect(server.address().port, '127.0.0.1');
      const pack = spawn('tar', ['-C', src, '--exclude', './.mirrorfs', '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
      pack.stdout.pipe(socket);
    });
  });
  execFileSync('sync');
  return (Date.now() - started) / 1000;
}
