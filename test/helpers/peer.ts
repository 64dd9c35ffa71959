import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PeerClient } from '../../src/client/peer-client.js';
import type { Transport } from '../../src/security/transport.js';
import { killAll } from './child.js';
import { removeAtCleanup, tmpDir } from './tmp.js';
import { peerTlsArgs, testTransport } from './tls.js';

export const PEER_BIN = resolve(import.meta.dirname, '../../dist/cli/mirrorfs-peer.js');
export const TEST_TOKEN = 'test-token-0123456789abcdef';

export interface PeerProcess {
  name: string;
  dataDir: string;
  stateDir: string;
  tokenFile: string;
  url: string;
  port: number;
  proc: ChildProcess;
  /** Everything the process wrote to stderr (logs), for diagnostics and log assertions. */
  stderr: () => string;
  /** Everything it wrote to stdout (the listening lines). */
  stdout: () => string;
  /** A client (by default with the shared test mount identity: security tests pass their own transport). */
  client: (opts?: { token?: string; timeoutMs?: number; transport?: Transport }) => PeerClient;
  /** SIGKILL and wait for exit. */
  kill9: () => Promise<void>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop: () => Promise<number | null>;
  /** Start again on the same data, state and port. */
  restart: () => Promise<PeerProcess>;
}

const live = new Set<ChildProcess>();
const clients: PeerClient[] = [];

export interface SpawnPeerOptions {
  name?: string;
  dataDir?: string;
  port?: number;
  token?: string;
  extraArgs?: string[];
  /** A pure relay: no --data (its state goes in <dataDir>.state, passed as --state); give --forward-to in extraArgs. */
  pure?: boolean;
  /** More environment for the peer process (for example libfaketime's LD_PRELOAD and FAKETIME). */
  env?: Record<string, string>;
  /** A command that execs the peer (for example `prlimit --nofile=256:256`): its pid is the peer's. */
  wrapper?: string[];
  /** Lay the peer out as before issue 22: its state (and token) in <dataDir>/.mirrorfs, with a database already there. */
  legacyState?: boolean;
}

/** Start a real mirrorfs-peer process on loopback and wait until it listens. */
export async function spawnPeer(opts: SpawnPeerOptions = {}): Promise<PeerProcess> {
  const name = opts.name ?? 'peer';
  const base = opts.dataDir ? undefined : tmpDir(`mirrorfs-${name}-`);
  const dataDir = opts.dataDir ?? join(base!, 'data');
  mkdirSync(dataDir, { recursive: true });
  // Where the peer puts its state by default: beside its data directory (a pure relay is given it with --state).
  const stateDir = opts.legacyState ? join(dataDir, '.mirrorfs') : `${dataDir}.state`;
  // Beside a data directory the caller gave, the state directory is outside every tmpDir: removed with them.
  if (!opts.legacyState && base === undefined && !existsSync(stateDir)) removeAtCleanup(stateDir);
  mkdirSync(stateDir, { recursive: true });
  if (opts.legacyState && !existsSync(join(stateDir, 'peer.db'))) writeFileSync(join(stateDir, 'peer.db'), '', { mode: 0o600 }); // an empty file is a new SQLite database
  const tokenFile = join(stateDir, 'token');
  writeFileSync(tokenFile, `${opts.token ?? TEST_TOKEN}\n`, { mode: 0o600 });
  const launch = (port: number) => start(name, dataDir, stateDir, tokenFile, port, opts.extraArgs ?? [], opts.pure ?? false, opts.env ?? {}, opts.wrapper ?? []);
  if (opts.port !== undefined) return launch(opts.port);
  // A port of its own outside the ephemeral range; another picker may take the same one between
  // the check and the peer's listen: then another.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(await peerPort());
    } catch (err) {
      if (attempt >= 5 || !/address already in use/.test((err as Error).message)) throw err;
    }
  }
}

/**
 * A free port below the kernel's ephemeral range, for a peer. A test that restarts a peer
 * starts it on the same port, and in between any outgoing connection (of this test, or of
 * the other worker's) may take an ephemeral port as its own: a peer on port 0 once found its
 * port taken on restart (EADDRINUSE in CI). Each test worker hands out ports from a range of
 * its own, in increasing order (never one it gave before to this test file, which runs in a
 * process of its own), so a stopped peer's port is not given to another peer, of this file or
 * of the other worker's, before it restarts.
 * Falls back to 0 (any port, with a warning) where no such range exists.
 */
async function peerPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = nextPeerPort();
    if (port === 0) return 0;
    if (await canListen(port)) return port;
  }
  return 0;
}

const FIRST_PEER_PORT = 10_000;
let portRange: { start: number; next: number; end: number } | null = null;

function nextPeerPort(): number {
  if (!portRange) {
    let ephemeralFrom = 32_768;
    try {
      ephemeralFrom = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralFrom;
    } catch {
      // No /proc: Linux's default range.
    }
    const workers = 4; // vitest's pool ids run from 1 to maxWorkers (2 in this suite's config), with room
    const width = Math.floor((Math.min(ephemeralFrom, 32_768) - FIRST_PEER_PORT) / workers);
    const poolId = Number(process.env.VITEST_POOL_ID ?? 1);
    const worker = poolId - 1;
    if (width < 500 || !(worker >= 0 && worker < workers)) {
      process.emitWarning(`no port range of its own for this test worker's peers (ephemeral range from ${ephemeralFrom}, pool id ${poolId} of at most ${workers}): peers take any port, and a restarted one may find its port taken`);
      portRange = { start: 0, next: 0, end: 0 };
    } else {
      // A random start within the worker's range, so runs one after another do not meet a port in TIME_WAIT.
      const start = FIRST_PEER_PORT + worker * width;
      portRange = { start, next: start + Math.floor(Math.random() * (width / 2)), end: start + width };
    }
  }
  if (portRange.next === 0) return 0;
  if (portRange.next >= portRange.end) portRange.next = portRange.start; // wrapped: thousands of ports ago, long stopped
  return portRange.next++;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = net.createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}

async function start(name: string, dataDir: string, stateDir: string, tokenFile: string, port: number, extraArgs: string[], pure: boolean, env: Record<string, string>, wrapper: string[]): Promise<PeerProcess> {
  const where = pure ? ['--state', stateDir] : ['--data', dataDir];
  // The peer itself is the child (no wrapper process that a kill would miss).
  const argv = [process.execPath, PEER_BIN, ...where, '--listen', `127.0.0.1:${port}`, '--name', name, '--token-file', tokenFile, ...peerTlsArgs(), ...extraArgs];
  const [command, ...args] = [...wrapper, ...argv];
  const proc = spawn(command!, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  let err = '';
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const actualPort = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer ${name} did not start within 10 s: ${err}`)), 10_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on [^ ]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`peer ${name} exited with ${code} before listening: ${err}`));
    });
  });
  const url = `https://127.0.0.1:${actualPort}`;
  // 'close', not 'exit': by then everything the process wrote to stdout and stderr has been read.
  const exited = new Promise<number | null>((r) => proc.once('close', (code) => r(code)));
  const self: PeerProcess = {
    name,
    dataDir,
    stateDir,
    tokenFile,
    url,
    port: actualPort,
    proc,
    stderr: () => err,
    stdout: () => out,
    client: (o = {}) => {
      const c = new PeerClient(url, { name, token: o.token ?? readToken(tokenFile), transport: o.transport ?? testTransport(), timeoutMs: o.timeoutMs ?? 10_000 });
      clients.push(c);
      return c;
    },
    kill9: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
    restart: async () => {
      await self.kill9();
      return start(name, dataDir, stateDir, tokenFile, actualPort, extraArgs, pure, env, wrapper);
    },
  };
  return self;
}

function readToken(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

/** Kill every peer process and close every client this helper made (afterEach/afterAll). */
export async function cleanupPeers(): Promise<void> {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await killAll(live);
}
