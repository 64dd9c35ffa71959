import { Command, Option } from 'commander';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_ADMIT_TIMEOUT_MS } from '../peer/connection-limits.js';
import { defaultStateDir, legacyStateAdvice } from '../peer/state-location.js';
import { privateDir } from '../security/private-paths.js';
import { createLogger, flushLogger } from '../log.js';
import { ensureTokenFile, readTokenFile } from '../security/token.js';
import { PeerServer } from '../peer/server.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { parseListen } from './listen.js';
import { startHttpListener } from '../metrics/http.js';
import { checkScheme, type Transport } from '../security/transport.js';
import { TRANSPORT_HELP, describeInit, initNode, transportFromFlags } from '../security/setup.js';

const program = new Command('mirrorfs-peer')
  .description(
    'Serve a mirrorfs filer: keep a mirrored tree as ordinary files under --data and apply changes ' +
      'from authenticated mounts and relays: each is applied before it is acknowledged, flushed to ' +
      'stable storage in the background (--flush-interval), and at once when the mount asks (fsync, O_SYNC, -o sync).',
  )
  .option('--data <dir>', 'directory holding the mirrored tree (must exist); without it, with --forward-to, a pure relay')
  .option('--forward-to <url>', 'be a relay: queue every change durably, acknowledge at once, and send it on to this next hop (https://HOST:PORT; several routes to it joined by |)')
  .option('--forward-token-file <file>', 'token of the next hop (default: this peer\'s own token)')
  .option('--max-queue-mib <n>', 'a relay refuses new changes (ENOSPC) while its queue for the next hop holds this much', '2048')
  .option('--listen <host:port>', 'address to listen on', '127.0.0.1:7070')
  .option('--name <name>', 'name of this peer in logs and status', hostname())
  .option('--token-file <file>', 'file holding the shared secret; created (mode 0600) if missing (default: <state>/token)')
  .option('--state <dir>', 'where the peer keeps its SQLite state, identity, trust file and token (default: <data>.state, beside the tree; <data>/.mirrorfs if a peer set up before uses it)')
  .option('--tls-identity <dir>', `${TRANSPORT_HELP.tlsIdentity} (default: <state>/tls)`)
  .option('--trust <file>', `${TRANSPORT_HELP.trust} (default: <state>/trust)`)
  .option('--trust-ca <file>', TRANSPORT_HELP.trustCa)
  .option('--insecure-cleartext', TRANSPORT_HELP.insecureCleartext)
  .option('--flush-interval <ms>', 'flush what was applied to stable storage at least this often (the most a power loss of this machine can take back, which the mount then repairs)', '1000')
  .option('--max-connections <n>', 'connections held at once at most; more are closed as soon as they arrive (default: half of what the descriptor limit leaves, 16 to 4096)')
  .option('--admit-timeout <ms>', 'a connection must finish TLS and have a request admitted (certificate, token) within this long, or it is closed', String(DEFAULT_ADMIT_TIMEOUT_MS))
  .option('--metrics-listen <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (plain HTTP, read-only; off by default)')
  .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
  .version(`mirrorfs-peer (protocol ${PROTOCOL_VERSION})`, '--version')
  .addHelpText(
    'after',
    '\nFirst run `mirrorfs-peer init --data DIR` (or --state DIR): it creates the TLS identity, the token and\n' +
      'a trust file, and prints the fingerprint that mounts and other peers must trust (docs/SECURITY.md).\n' +
      '\nExamples:\n' +
      '  mirrorfs-peer init --data /srv/mirror --name east\n' +
      '  mirrorfs-peer --data /srv/mirror --listen 0.0.0.0:7070 --token-file /etc/mirrorfs/token\n' +
      '  mirrorfs-peer --data ./east --listen 127.0.0.1:7071 --name east\n' +
      '  mirrorfs-peer --state /var/lib/mirrorfs/relay1 --forward-to https://relay2:7070 --listen 0.0.0.0:7070   # a pure relay\n' +
      '  mirrorfs-peer --data /srv/mirror --forward-to https://far:7070                                         # a relay that keeps a copy too\n' +
      '\nSIGTERM or SIGINT: stop accepting requests, finish those in flight (10 s at most), exit 0.',
  );

const init = new Command('mirrorfs-peer init')
  .description('Prepare a peer or relay: create its TLS identity, its token and a trust file (each kept if already there), and print the fingerprint to trust.')
  .option('--data <dir>', 'the peer\'s data directory (its state goes beside it, in <data>.state, unless --state)')
  .option('--state <dir>', 'the state directory (a pure relay has no --data)')
  .option('--name <name>', 'name of this peer, written in its certificate', hostname())
  .option('--tls-identity <dir>', 'where to put the identity (default: <state>/tls)')
  .option('--trust <file>', 'where to put the trust file (default: <state>/trust)')
  .option('--token-file <file>', 'where to put the token (default: <state>/token)');

async function runInit(): Promise<void> {
  init.parse(process.argv.slice(3), { from: 'user' });
  const o = init.opts<{ data?: string; state?: string; name: string; tlsIdentity?: string; trust?: string; tokenFile?: string }>();
  if (o.data === undefined && o.state === undefined) fail('init: give --data <dir> (a peer) or --state <dir> (a pure relay)');
  const stateDir = resolve(o.state ?? defaultStateDir(resolve(o.data!)).dir);
  privateDir(stateDir);
  const trustFile = resolve(o.trust ?? join(stateDir, 'trust'));
  try {
    const r = await initNode(o.tlsIdentity ?? join(stateDir, 'tls'), trustFile, o.name);
    const tokenFile = resolve(o.tokenFile ?? join(stateDir, 'token'));
    const { created } = ensureTokenFile(tokenFile);
    process.stdout.write(describeInit(o.name, o.data === undefined ? 'relay' : 'peer', r, trustFile));
    process.stdout.write(`token: ${tokenFile}${created ? ' (created: give it to the mounts, --token-file)' : ''}\n`);
  } catch (err) {
    fail(`init: ${(err as Error).message}`);
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'init') return runInit();
  program.parse();
  const o = program.opts<{ data?: string; forwardTo?: string; forwardTokenFile?: string; maxQueueMib: string; flushInterval: string; maxConnections?: string; admitTimeout: string; listen: string; name: string; tokenFile?: string; state?: string; tlsIdentity?: string; trust?: string; trustCa?: string; insecureCleartext?: boolean; metricsListen?: string; logLevel: string }>();
  const log = createLogger(`peer:${o.name}`, o.logLevel);
  if (o.data === undefined && o.forwardTo === undefined) fail('--data is required (or --forward-to and --state for a pure relay)');
  if (o.data === undefined && o.state === undefined) fail('a pure relay (--forward-to without --data) needs --state <dir> for its queue');
  if (o.forwardTo !== undefined && !o.forwardTo.split('|').every((u) => /^https?:\/\/[^/|]+$/.test(u))) fail(`--forward-to ${o.forwardTo}: expected https://HOST:PORT, or several routes to the same next hop joined by |`);
  const dataDir = o.data === undefined ? undefined : resolve(o.data);
  if (dataDir !== undefined && (!existsSync(dataDir) || !statSync(dataDir).isDirectory())) {
    fail(`--data ${dataDir}: not an existing directory (create it first: mkdir -p ${dataDir})`);
  }
  const { host, port } = parseListen(o.listen);
  const location = o.state === undefined ? defaultStateDir(dataDir!) : { dir: resolve(o.state), insideTree: false };
  const stateDir = location.dir;
  if (location.insideTree) log.warn(legacyStateAdvice(dataDir!));
  const tokenFile = resolve(o.tokenFile ?? join(stateDir, 'token'));
  let transport: Transport;
  try {
    const initCommand = ['mirrorfs-peer init', o.data !== undefined ? `--data ${o.data}` : '', o.state !== undefined || o.data === undefined ? `--state ${stateDir}` : '', o.tlsIdentity !== undefined ? `--tls-identity ${o.tlsIdentity}` : ''].filter(Boolean).join(' ');
    // Absolute: the peer works in its data directory from here on (below), and the trust file is read again later.
    transport = transportFromFlags({ insecureCleartext: o.insecureCleartext, tlsIdentity: resolve(o.tlsIdentity ?? join(stateDir, 'tls')), trust: resolve(o.trust ?? join(stateDir, 'trust')), trustGiven: o.trust !== undefined, trustCa: o.trustCa === undefined ? undefined : resolve(o.trustCa) }, initCommand);
    for (const route of o.forwardTo?.split('|') ?? []) checkScheme(route, transport, '--forward-to');
  } catch (err) {
    fail((err as Error).message);
  }
  if (transport.kind === 'cleartext') log.warn('--insecure-cleartext: requests are neither encrypted nor authenticated by certificate');
  let server: PeerServer;
  try {
    // The state directory must exist before the token can be created inside it.
    privateDir(stateDir);
    // Inside the tree, only the reserved name is hidden from mounts (and spared by repairs).
    // Compared by real paths: --data or --state may go through a symlink.
    if (dataDir !== undefined) {
      const realData = realpathSync(dataDir);
      const realState = realpathSync(stateDir);
      if (realState !== join(realData, '.mirrorfs') && (realState === realData || realState.startsWith(`${realData}/`))) {
        fail(`--state ${stateDir}: inside --data the state must be ${join(dataDir, '.mirrorfs')} (any other place there is part of the mirrored tree); or put it outside ${dataDir}`);
      }
    }
    const { token, created } = ensureTokenFile(tokenFile);
    if (created) process.stderr.write(`mirrorfs-peer: created a new token in ${tokenFile}; give it to the mount (--token-file)\n`);
    const maxQueueMib = Number(o.maxQueueMib);
    if (!Number.isInteger(maxQueueMib) || maxQueueMib < 1) fail(`--max-queue-mib ${o.maxQueueMib}: give a whole number of MiB, at least 1`);
    const flushIntervalMs = Number(o.flushInterval);
    if (!Number.isInteger(flushIntervalMs) || flushIntervalMs < 10 || flushIntervalMs > 60_000) fail(`--flush-interval ${o.flushInterval}: give milliseconds between 10 and 60000`);
    const maxConnections = o.maxConnections === undefined ? undefined : Number(o.maxConnections);
    if (maxConnections !== undefined && (!Number.isInteger(maxConnections) || maxConnections < 1)) fail(`--max-connections ${o.maxConnections}: give a whole number, at least 1`);
    const admitTimeoutMs = Number(o.admitTimeout);
    if (!Number.isInteger(admitTimeoutMs) || admitTimeoutMs < 100 || admitTimeoutMs > 600_000) fail(`--admit-timeout ${o.admitTimeout}: give milliseconds between 100 and 600000`);
    const forwardTo = o.forwardTo === undefined ? undefined : { url: o.forwardTo, token: o.forwardTokenFile === undefined ? token : readTokenFile(resolve(o.forwardTokenFile)), maxQueueBytes: maxQueueMib * 1024 * 1024 };
    // Work in the data directory, so the tree's paths reach system calls relative to it: a
    // path of PATH_MAX - 1 bytes below the mount point then fits, whatever --data's own length
    // (store/tree.ts). Every path from the command line is absolute by now.
    if (dataDir !== undefined) process.chdir(realpathSync(dataDir));
    server = await PeerServer.start({ dataDir, stateDir, host, port, name: o.name, token, transport, logger: log, forwardTo, flushIntervalMs, maxConnections, admitTimeoutMs });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') fail(`cannot listen on ${host}:${port}: address already in use (another peer running? pick another --listen)`);
    fail(`cannot start: ${e.message}`);
  }
  let metrics: { port: number; close: () => Promise<void> } | null = null;
  if (o.metricsListen !== undefined) {
    let at: { host: string; port: number };
    try {
      at = parseListen(o.metricsListen, '--metrics-listen');
    } catch (err) {
      await server.shutdown(0);
      fail((err as Error).message);
    }
    try {
      metrics = await startHttpListener(at.host, at.port, server.metrics.registry, {}, log);
    } catch (err) {
      await server.shutdown(0);
      fail(`--metrics-listen ${o.metricsListen}: ${(err as Error).message}`);
    }
    process.stdout.write(`mirrorfs-peer ${o.name} metrics on http://${at.host}:${metrics.port}/metrics\n`);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'signal received');
    server
      .shutdown()
      .then(() => metrics?.close())
      .then(() => flushLogger(log))
      .then(() => process.exit(0))
      .catch((err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  // Before the line that says it is listening: a caller that sends SIGTERM on reading it
  // must find the handler (until it is installed, SIGTERM kills the process silently).
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.stdout.write(`mirrorfs-peer ${o.name} listening on ${host}:${server.port} ${transport.kind === 'tls' ? `tls fingerprint=${transport.identity.fingerprint}` : 'INSECURE cleartext'} data=${dataDir ?? '(none: pure relay)'}${o.forwardTo ? ` forward-to=${o.forwardTo}` : ''}\n`);
}

function fail(message: string): never {
  process.stderr.write(`mirrorfs-peer: ${message}\n`);
  process.exit(1);
}

await main();
