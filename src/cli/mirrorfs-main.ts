import type { AtimeMode } from '../mount/fuse/access-times.js';
import { Command, Option } from 'commander';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { privateDir, privateFile } from '../security/private-paths.js';
import { createLogger, flushLogger } from '../log.js';
import { loadConfig, resolvePeers, type ConfigFile, DEFAULT_CONFIG_FILE, DEFAULT_TLS_IDENTITY_DIR, DEFAULT_TRUST_FILE } from '../mount/peers/config.js';
import { TRANSPORT_HELP, describeInit, initNode, transportFromFlags } from '../security/setup.js';
import { controlRequest, controlSocketPath, verifyRequest } from '../mount/control/control.js';
import type { AckPolicy } from '../mount/fanout/ack-policy.js';
import { parseMaxLag, type MaxLag } from '../mount/fanout/lag.js';
import type { ControllerStatus } from '../mount/fanout/mirror.js';
import type { VerifyProgress, VerifyReport } from '../mount/control/verify.js';
import { parseFromOption, resumeForm, verifyProgressView } from './verify-progress.js';
import { defaultStateDir } from '../mount/control/identity.js';
import { forceUnmount, isDeadMount, isMounted } from '../mount/control/mountpoint.js';
import { startMount, type MountOptions, type RunningMount } from '../mount/control/mounter.js';
import { waitForLapsedLease } from '../mount/takeover/standby.js';
import { LEASE_RENEW_MS } from '../mount/takeover/lease.js';
import type { Logger } from '../log.js';
import { progressEventOf, progressReporter, type ProgressEvent } from '../mount/recovery/progress.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { parseListen } from './listen.js';
import { notifyReady } from './sd-notify.js';
import { checkFuse, checkMountPoint, checkPeer, formatFindings, type Finding } from './doctor.js';
import type { PeerSpec } from '../mount/peers/config.js';
import { formatStatus, formatVerify } from './format-status.js';
import { TOPOLOGY_NAMES, fitAll, latencyForSeparation, loadMeasurements, parseDistance, parseDuration, separationForBudget } from './plan.js';
import { SERVICE_V8_FLAGS, withServiceFlags } from './node-flags.js';
import { refusalCode } from '../refusal.js';

/** The distance measurements shipped with mirrorfs (scripts/bench-distance.mjs writes them). */
const DEFAULT_MEASUREMENTS = resolve(import.meta.dirname, '../../docs/distance.json');

const program = new Command('mirrorfs')
  .description('Synchronous mirroring of a directory to two or more mirrorfs-peer filers, through FUSE.')
  .version(`mirrorfs (protocol ${PROTOCOL_VERSION})`, '--version')
  .showHelpAfterError();

interface MountFlags {
  peers: string;
  localCopy?: string;
  config?: string;
  tokenFile?: string;
  stateDir?: string;
  peerTimeout: string;
  ack: string;
  ackMode: string;
  fsyncTimeout: string;
  sync?: boolean;
  dirsync?: boolean;
  maxLag: string;
  atime: string;
  nodiratime?: boolean;
  resyncFrom?: string;
  takeover?: boolean;
  foreground?: boolean;
  tlsIdentity?: string;
  trust?: string;
  trustCa?: string;
  insecureCleartext?: boolean;
  controlListen?: string;
  logLevel: string;
}

/** The options `mount` and `standby` share (how to reach and use the peers). */
function withMountOptions(cmd: Command): Command {
  return cmd
    .argument('<mountpoint>', 'an empty directory')
    .requiredOption('--peers <list>', 'peers, comma-separated: NAME (https://NAME:7070, or its URL in the config file) or NAME=URL (NAME=URL1|URL2: several routes)')
    .option('--local-copy <dir>', 'keep a local copy here and serve reads from it (filled from a peer when empty)')
    .option('--config <file>', `JSON config with per-peer url/routes/token/tokenFile (default: ${DEFAULT_CONFIG_FILE} if it exists)`)
    .option('--token-file <file>', 'file holding the token the peers expect (when the config does not name one)')
    .option('--state-dir <dir>', 'where the mount keeps its identity and log (default: /var/lib/mirrorfs/<mountpoint>)')
    .option('--peer-timeout <ms>', 'bound on each call to a peer; a peer that has not committed a change by then lacks it (journaled, caught up later)', '5000')
    .option('--ack <policy>', 'peers that must commit a change before the call returns: all, quorum (a majority) or a number; peers that miss changes are caught up from the journal. 0: the asynchronous mode (needs --local-copy): a call returns once the local copy applied it and the journal holds it; the peers follow in order (--max-lag), and fsync waits for them', 'all')
    .option('--max-lag <limits>', 'with --ack 0: how far a peer may fall behind before changes wait for it, comma-separated: changes (10000), bytes (256MiB), age of its oldest missing change (30s)', '10000,256MiB,30s')
    .addOption(
      new Option('--ack-mode <mode>', 'first-hop: a call returns once the first hop of each route (a peer, or the first relay of a cascade) has applied the change; end-to-end: the same, and each change is tracked until the far mirrors commit it (xattr user.mirrorfs.state, counts in status) and fsync waits for it')
        .choices(['first-hop', 'end-to-end'])
        .default('first-hop'),
    )
    .option('--sync', 'every change is durable on the peers before it returns (mount -o sync); by default a change returns once the peers applied it, and fsync, fdatasync, fsyncdir and O_SYNC/O_DSYNC writes make it durable')
    .option('--dirsync', 'changes to names (create, mkdir, rename, unlink...) are durable on the peers before they return (mount -o dirsync)')
    .option('--fsync-timeout <ms>', 'ack mode end-to-end, and --ack 0: bound on an fsync waiting for the far mirrors (the peers) (then EIO)', '30000')
    .addOption(
      new Option('--atime <mode>', 'whether a read stamps atime on every copy: relatime (the first read after a change, or a day later, as Linux mounts by default) or noatime (never); each copy\'s own mount options apply too (a peer mounted noatime never stamps)')
        .choices(['relatime', 'noatime'])
        .default('relatime'),
    )
    .option('--nodiratime', 'listing a directory never stamps its atime (reads of files still do)')
    .option('--tls-identity <dir>', `${TRANSPORT_HELP.tlsIdentity} (default: tlsIdentity in the config, else ${DEFAULT_TLS_IDENTITY_DIR})`)
    .option('--trust <file>', `${TRANSPORT_HELP.trust} (default: trust in the config, else ${DEFAULT_TRUST_FILE})`)
    .option('--trust-ca <file>', TRANSPORT_HELP.trustCa)
    .option('--insecure-cleartext', TRANSPORT_HELP.insecureCleartext)
    .option('--control-listen <host:port>', 'serve a status page (/), /status.json and Prometheus /metrics at http://HOST:PORT (plain HTTP, read-only; off by default)')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'));
}

/** Validate the shared options into what startMount takes (exits with a clear message on bad input). */
function mountSettings(mp: string, flags: MountFlags): Omit<MountOptions, 'log'> {
  // The real path: the kernel lists the mount under it (a mount point reached through a symlink).
  const mountpoint = realPathIfExists(resolve(mp));
  const stateDir = resolve(flags.stateDir ?? defaultStateDir(mountpoint));
  const peerTimeoutMs = Number(flags.peerTimeout);
  if (!Number.isInteger(peerTimeoutMs) || peerTimeoutMs < 100 || peerTimeoutMs > 600_000) fail('--peer-timeout: give milliseconds between 100 and 600000');
  let peers;
  try {
    const config = loadConfig(flags.config);
    const transport = mountTransport(flags, config);
    peers = resolvePeers(flags.peers, config, transport, flags.tokenFile);
  } catch (err) {
    fail((err as Error).message);
  }
  const ackPolicy = parseAckPolicy(flags.ack, peers.length);
  let maxLag: MaxLag;
  try {
    maxLag = parseMaxLag(flags.maxLag);
  } catch (err) {
    fail((err as Error).message);
  }
  if (ackPolicy.kind === 'none' && !flags.localCopy) fail('--ack 0 (the asynchronous mode) needs --local-copy DIR: the local copy decides each change\'s outcome while the peers follow');
  const fsyncTimeoutMs = Number(flags.fsyncTimeout);
  if (!Number.isInteger(fsyncTimeoutMs) || fsyncTimeoutMs < 100 || fsyncTimeoutMs > 600_000) fail('--fsync-timeout: give milliseconds between 100 and 600000');
  if (flags.sync === true && flags.dirsync === true) fail('--sync already makes changes to names durable: give --sync or --dirsync, not both');
  if (flags.resyncFrom !== undefined && !peers.some((p) => p.name === flags.resyncFrom)) fail(`--resync-from ${flags.resyncFrom}: not one of --peers (${peers.map((p) => p.name).join(', ')})`);
  return {
    mountpoint, peers, localCopyDir: flags.localCopy ? resolve(flags.localCopy) : undefined, stateDir, peerTimeoutMs, ackPolicy,
    ackMode: flags.ackMode as 'first-hop' | 'end-to-end', fsyncTimeoutMs, commitLevel: flags.sync === true ? 'sync' : flags.dirsync === true ? 'dirsync' : 'applied', maxLag, atime: flags.atime as AtimeMode, noDiratime: flags.nodiratime === true, resyncFrom: flags.resyncFrom, takeover: flags.takeover === true,
    controlListen: flags.controlListen === undefined ? undefined : parseListenOrFail(flags.controlListen, '--control-listen'),
  };
}

/**
 * The real path of a mount point, as the kernel lists the mount. Its parent is
 * resolved with realpath; the last component only with readlink, which never
 * asks the (possibly hung) FUSE mount itself.
 */
function realPathIfExists(path: string, depth = 0): string {
  let parent: string;
  try {
    parent = realpathSync(dirname(path));
  } catch {
    return path; // checkMountpoint says what is wrong with it
  }
  const real = join(parent, basename(path));
  try {
    const target = readlinkSync(real);
    return depth < 40 ? realPathIfExists(resolve(parent, target), depth + 1) : real;
  } catch {
    return real; // not a symlink (or missing)
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The transport of a mount, standby or doctor: flags first, then the config file, then the defaults. */
function mountTransport(flags: MountFlags, config: ConfigFile) {
  return transportFromFlags({
    insecureCleartext: flags.insecureCleartext,
    tlsIdentity: flags.tlsIdentity ?? config.tlsIdentity ?? DEFAULT_TLS_IDENTITY_DIR,
    trust: flags.trust ?? config.trust ?? DEFAULT_TRUST_FILE,
    trustGiven: (flags.trust ?? config.trust) !== undefined,
    trustCa: flags.trustCa ?? config.trustCa,
  }, initCommandFor(flags, config));
}

/** The init command that creates the identity these flags point at. */
function initCommandFor(flags: MountFlags, config: { tlsIdentity?: string }): string {
  const dir = flags.tlsIdentity ?? config.tlsIdentity;
  return dir === undefined ? 'mirrorfs init' : `mirrorfs init --tls-identity ${dir}`;
}

function parseListenOrFail(value: string, flag: string): { host: string; port: number } {
  try {
    return parseListen(value, flag);
  } catch (err) {
    fail((err as Error).message);
  }
}

/**
 * Mount in this process and stay until unmounted (the foreground mount, and a
 * standby that took over). onMounted may return what to do before unmounting.
 */
async function runMounted(settings: Omit<MountOptions, 'log'>, log: Logger, onMounted?: (running: RunningMount) => () => void): Promise<never> {
  let running: RunningMount;
  try {
    running = await startMount({ ...settings, log });
  } catch (err) {
    log.error({ err: (err as Error).message }, 'mount refused');
    await flushLogger(log);
    fail((err as Error).message);
  }
  let beforeStop: () => void = () => undefined;
  // Before saying it is mounted: a SIGTERM sent on reading that must find the handler
  // (until one is installed, SIGTERM kills the process and leaves a dead mount).
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => {
      beforeStop();
      void running.stop(signal);
    });
  }
  process.stdout.write(`mirrorfs: mounted ${settings.mountpoint} (peers: ${settings.peers.map((p) => p.name).join(', ')})\n`);
  notifyReady(log); // a Type=notify service is ready only now, after recovery and the mount
  beforeStop = onMounted?.(running) ?? beforeStop;
  const cleanly = await running.stopped;
  beforeStop(); // unmounted another way (mirrorfs unmount): what was started must not outlive the mount
  await flushLogger(log);
  process.exit(cleanly ? 0 : 1);
}

program
  .command('init')
  .description('prepare this host to mount or stand by: create its TLS identity and a trust file (each kept if already there) and print the fingerprint the peers must trust')
  .option('--tls-identity <dir>', 'where to put the identity', DEFAULT_TLS_IDENTITY_DIR)
  .option('--trust <file>', 'where to put the trust file', DEFAULT_TRUST_FILE)
  .option('--name <name>', 'name of this host, written in its certificate', hostname())
  .action(async (flags: { tlsIdentity: string; trust: string; name: string }) => {
    try {
      mkdirSync(dirname(resolve(flags.trust)), { recursive: true });
      process.stdout.write(describeInit(flags.name, 'mount,standby', await initNode(flags.tlsIdentity, resolve(flags.trust), flags.name), resolve(flags.trust)));
    } catch (err) {
      fail(`init: ${(err as Error).message}`);
    }
  });

withMountOptions(program.command('doctor'))
  .description('check, without mounting, what a mount with these options needs: FUSE, the mount point, TLS identity and trust, and each peer (reachable, latency, clock skew, free space, durability); prints each problem with its fix; exit 1 when there is one')
  .option('--json', 'print the findings as JSON, for scripts')
  .action(async (mp: string, flags: MountFlags & { json?: boolean }) => {
    const mountpoint = realPathIfExists(resolve(mp));
    // A live mirrorfs mount there is not a problem: doctor is also for a mount that seems unwell.
    const live = await controlRequest(mountpoint, 'GET', '/status', 2000).catch(() => undefined);
    const pid = live?.status === 200 ? ((live.body as { pid?: number }).pid ?? null) : null;
    const findings: Finding[] = [...checkFuse(), checkMountPoint(mountpoint, pid)];
    let peers: PeerSpec[] = [];
    try {
      const config = loadConfig(flags.config);
      const transport = mountTransport(flags, config);
      findings.push({ check: 'TLS', ok: true, detail: transport.kind === 'tls' ? `identity ${transport.identity.fingerprint}, ${transport.trust.size} trusted fingerprints${transport.trust.ca ? ' and a CA' : ''}` : 'INSECURE cleartext (--insecure-cleartext)' });
      peers = resolvePeers(flags.peers, config, transport, flags.tokenFile);
    } catch (err) {
      const code = refusalCode(err);
      const fix = code === 'TLS_IDENTITY_MISSING' ? initCommandFor(flags, {}) : code === 'TRUST_INVALID' ? 'list the peers\' fingerprints in the trust file (mirrorfs-peer init prints them)' : 'see the message';
      findings.push({ check: 'configuration', ok: false, detail: (err as Error).message, fix });
    }
    for (const f of await Promise.all(peers.map((p) => checkPeer(p)))) findings.push(...f);
    process.stdout.write(flags.json ? `${JSON.stringify({ ok: findings.every((f) => f.ok), findings }, null, 2)}\n` : formatFindings(findings));
    process.exit(findings.every((f) => f.ok) ? 0 : 1);
  });

program
  .command('install-helpers')
  .description('install the mount(8) helper (so `mount -t fuse.mirrorfs` and /etc/fstab lines work; umount needs none) and the mirrorfs commands on the PATH, all pointing at this installation')
  .option('--sbin <dir>', 'where mount(8) looks for mount.fuse.mirrorfs', '/sbin')
  .option('--bin <dir>', 'where to put mirrorfs, mirrorfs-peer and mirrorfs-link', '/usr/local/bin')
  .action((flags: { sbin: string; bin: string }) => {
    const dist = resolve(import.meta.dirname);
    // The mount and the peer run long: their commands carry the service flags (node-flags.ts).
    const wrappers: Array<[string, string, readonly string[]]> = [
      [join(flags.sbin, 'mount.fuse.mirrorfs'), join(dist, 'mount-helper.js'), []],
      [join(flags.bin, 'mirrorfs'), join(dist, 'mirrorfs.js'), SERVICE_V8_FLAGS],
      [join(flags.bin, 'mirrorfs-peer'), join(dist, 'mirrorfs-peer.js'), SERVICE_V8_FLAGS],
      [join(flags.bin, 'mirrorfs-link'), join(dist, 'mirrorfs-link.js'), []],
    ];
    try {
      for (const [file, target, nodeFlags] of wrappers) {
        mkdirSync(dirname(file), { recursive: true });
        // A wrapper, not a symlink: it names this node binary, so it works from mount(8)'s minimal PATH.
        const command = [process.execPath, ...nodeFlags, target].map(shellQuote).join(' ');
        writeFileSync(file, `#!/bin/sh\n# installed by mirrorfs install-helpers\nexec ${command} "$@"\n`, { mode: 0o755 });
        process.stdout.write(`installed ${file}\n`);
      }
    } catch (err) {
      fail(`install-helpers: ${(err as Error).message} (run as root)`);
    }
  });

withMountOptions(program.command('mount'))
  .description('mount MOUNTPOINT, mirroring every change to all --peers before the call returns')
  .option('--resync-from <peer>', 'before mounting, rebuild every other peer from this one (full copy, verified by content hash); for copies that cannot be reconciled automatically')
  .option('--takeover', 'take the peers over from the mount that owns them (on the backup site, when the primary is lost): the old primary is fenced on every peer, and what it left on only some peers is copied to the others (docs/TAKEOVER.md)')
  .option('--foreground', 'stay in the foreground (for service managers); default: run in the background')
  .addHelpText('after', '\nFirst run `mirrorfs init` on this host and exchange fingerprints with the peers (docs/SECURITY.md).\n\nExamples:\n  mirrorfs mount /data --peers east,west --token-file /etc/mirrorfs/token\n  mirrorfs mount /data --peers east=https://10.0.0.2:7070,west=https://10.0.1.2:7070 --local-copy /var/lib/mirrorfs/data-copy')
  .action(async (mp: string, flags: MountFlags) => {
    const settings = mountSettings(mp, flags);
    if (!flags.foreground) return background(settings.mountpoint, settings.stateDir, settings.peerTimeoutMs);
    await runMounted(settings, createLogger('mount', flags.logLevel));
  });

withMountOptions(program.command('standby'))
  .description('on the backup site: watch the primary\'s lease on the peers; when every peer has not heard from it for --grace, take the peers over, mount MOUNTPOINT and run --exec (stays in the foreground)')
  .option('--grace <s>', 'seconds without a lease renewal on every peer before taking over', '10')
  .option('--exec <command>', 'run this shell command once mounted (start the application), with MIRRORFS_MOUNTPOINT set')
  .addHelpText('after', '\nThe primary renews its lease on every peer each second. The lease\'s age is measured by each peer\'s own clock.\nA peer that cannot be reached stops the takeover (every peer must be owned). A clean unmount of the primary\nalso lets its lease lapse: stop the standby first for planned maintenance. See docs/TAKEOVER.md.\n\nExample:\n  mirrorfs standby /data --peers east,west --token-file /etc/mirrorfs/token --grace 15 --exec "systemctl start myapp"')
  .action(async (mp: string, flags: MountFlags & { grace: string; exec?: string }) => {
    const settings = { ...mountSettings(mp, flags), takeover: true };
    const graceMs = Number(flags.grace) * 1000;
    // Several renewals must fit in the grace period, with room for a slow round trip.
    const minGraceMs = 3 * LEASE_RENEW_MS + settings.peerTimeoutMs;
    if (!(graceMs >= minGraceMs) || graceMs > 3_600_000) fail(`--grace: give seconds between ${Math.ceil(minGraceMs / 1000)} (3 lease renewals and a --peer-timeout) and 3600`);
    const log = createLogger('standby', flags.logLevel);
    await waitForLapsedLease(settings.peers, graceMs, log);
    await runMounted(settings, log, () => {
      if (flags.exec === undefined) return () => undefined;
      // Its own process group, so the whole application is stopped before the mount goes away
      // (else it would go on writing into the bare mount point directory).
      const child = spawn('/bin/sh', ['-c', flags.exec], { stdio: 'inherit', detached: true, env: { ...process.env, MIRRORFS_MOUNTPOINT: settings.mountpoint } });
      child.on('exit', (code, signal) => log.warn({ command: flags.exec, code, signal }, 'standby: the --exec command exited'));
      log.warn({ command: flags.exec, pid: child.pid }, 'standby: took over; started the --exec command');
      return () => {
        if (child.exitCode === null && child.signalCode === null && child.pid) {
          try {
            process.kill(-child.pid, 'SIGTERM');
          } catch {
            /* already gone */
          }
        }
      };
    });
  });

/** Re-run this command in the foreground as a detached child, and wait until it is mounted or has failed. */
async function background(mountpoint: string, stateDir: string, peerTimeoutMs: number): Promise<void> {
  privateDir(stateDir);
  const logFile = join(stateDir, 'mount.log');
  privateFile(logFile); // the log names paths and peers
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...withServiceFlags(process.execArgv), process.argv[1]!, ...process.argv.slice(2), '--foreground'], {
    detached: true,
    stdio: ['ignore', out, out],
    // The log file is read back as JSON (progress, the last message): never pretty-printed.
    env: { ...process.env, MIRRORFS_LOG_FORMAT: 'json' },
  });
  closeSync(out);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  // Bounded by progress, not by a fixed time: filling a large local copy may
  // take long, but the child logs as it goes; silence this long means stuck.
  const quietLimitMs = 30_000 + peerTimeoutMs * 3;
  let lastSize = -1;
  let deadline = Date.now() + quietLimitMs;
  const progress = process.stderr.isTTY ? new LogProgress(logFile) : null;
  while (Date.now() < deadline) {
    const size = statSync(logFile).size;
    if (size !== lastSize) {
      lastSize = size;
      deadline = Date.now() + quietLimitMs;
      progress?.poll();
    }
    if (exited !== null) {
      const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.startsWith('mirrorfs:'));
      fail(`${lines.at(-1)?.replace(/^mirrorfs: /, '') ?? `the mount process exited with ${exited}`} (log: ${logFile})`);
    }
    // Mounted by this child, not by another mount already there (mount -a run twice).
    const answer = isMounted(mountpoint) ? await controlRequest(mountpoint, 'GET', '/status', 1000) : undefined;
    if (answer && (answer.body as { pid?: number }).pid === child.pid) {
      progress?.stop();
      child.unref();
      process.stdout.write(`mirrorfs: mounted ${mountpoint} in the background (pid ${child.pid}, log ${logFile})\n`);
      process.exit(0);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGTERM');
  fail(`the mount made no progress for ${Math.round(quietLimitMs / 1000)} s; stopped it (log: ${logFile})`);
}

/**
 * In background mode the mount's log goes to a file; on a terminal, the
 * waiting parent turns its catch-up and resync progress lines into a bar.
 */
class LogProgress {
  private offset = 0;
  private readonly bar = progressReporter(createLogger('mount', 'silent'));
  private active = false;

  constructor(private readonly file: string) {
    this.offset = statSync(file).size;
  }

  poll(): void {
    const text = readFileSync(this.file, 'utf8').slice(this.offset);
    const end = text.lastIndexOf('\n');
    if (end < 0) return;
    this.offset += Buffer.byteLength(text.slice(0, end + 1));
    for (const line of text.slice(0, end).split('\n')) {
      let event: ProgressEvent | null;
      try {
        event = progressEventOf(JSON.parse(line) as Record<string, unknown>);
      } catch {
        continue;
      }
      if (event?.kind === 'started') {
        this.bar.start(event.job, event.total, event.unit);
        this.active = true;
      } else if (event?.kind === 'progress' && this.active) this.bar.update(event.done);
      else if (event?.kind === 'finished' && this.active) this.stop(event.done);
    }
  }

  stop(done?: number): void {
    if (!this.active) return;
    if (done !== undefined) this.bar.update(done);
    this.bar.stop();
    this.active = false;
  }
}

program
  .command('unmount')
  .alias('umount')
  .description('drain in-flight calls and unmount; clears a dead mount left by a crash')
  .argument('<mountpoint>')
  .option('--timeout <s>', 'how long to wait for the mount to finish', '60')
  .action(async (mp: string, flags: { timeout: string }) => {
    const mountpoint = realPathIfExists(resolve(mp));
    const answer = await controlRequest(mountpoint, 'POST', '/unmount');
    if (answer) {
      const deadline = Date.now() + Number(flags.timeout) * 1000;
      while (Date.now() < deadline) {
        if (!isMounted(mountpoint) && !(await controlRequest(mountpoint, 'GET', '/status', 500))) {
          process.stdout.write(`mirrorfs: unmounted ${mountpoint}\n`);
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      fail(`${mountpoint} did not finish unmounting within ${flags.timeout} s; see the mount's log`);
    }
    if (isMounted(mountpoint)) {
      // Clear it only when it is really dead: a live mount whose control socket
      // did not answer (busy, or another MIRRORFS_RUN_DIR) must not be torn away.
      if (!isDeadMount(mountpoint)) {
        fail(`${mountpoint} is mounted and alive, but its mirrorfs process did not answer on ${controlSocketPath(mountpoint)}; retry, or stop that process (SIGTERM)`);
      }
      await forceUnmount(mountpoint);
      process.stdout.write(`mirrorfs: no mirrorfs process serves ${mountpoint}; cleared the dead mount\n`);
      return;
    }
    fail(`${mountpoint} is not mounted`);
  });

program
  .command('status')
  .description('show each peer: address, connected, latency p50/p99, operations and bytes mirrored, in flight')
  .argument('<mountpoint>')
  .option('--json', 'print JSON, for scripts')
  .action(async (mp: string, flags: { json?: boolean }) => {
    const mountpoint = realPathIfExists(resolve(mp));
    const answer = await controlRequest(mountpoint, 'GET', '/status');
    if (!answer) {
      fail(isMounted(mountpoint) ? `${mountpoint} is mounted but no mirrorfs process answers (a dead mount?): mirrorfs unmount ${mountpoint}` : `${mountpoint} is not a mirrorfs mount`);
    }
    const status = answer.body as ControllerStatus & { mountpoint: string; pid: number };
    process.stdout.write(flags.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  });

program
  .command('sync')
  .description('make every change so far durable on the peers (sync(1) and syncfs(2) do not reach FUSE file systems: the kernel does not pass them on)')
  .argument('<mountpoint>')
  .option('--timeout <s>', 'how long to wait for the peers', '60')
  .action(async (mp: string, flags: { timeout: string }) => {
    const mountpoint = realPathIfExists(resolve(mp));
    const answer = await controlRequest(mountpoint, 'POST', '/sync', Number(flags.timeout) * 1000);
    if (!answer) fail(`${mountpoint}: no mirrorfs process answered (not mounted, or the peers took longer than --timeout)`);
    if (answer.status !== 200) fail(`sync failed: ${(answer.body as { error?: string }).error ?? JSON.stringify(answer.body)}`);
  });

program
  .command('verify')
  .description('compare every peer and the local copy by content hash and metadata while the mount stays in use; --repair makes them equal')
  .argument('<mountpoint>')
  .option('--repair', 'make every differing copy equal to the source (the majority, or --source)')
  .option('--source <copy>', 'with --repair: the copy to keep (a peer name, or "local" for the local copy)')
  .option('--metadata-only', 'compare names, types, sizes, modes, owners, times and links, without content hashes (quicker; misses a changed byte that kept the size and mtime)')
  .option('--from <path>', 'resume: compare only what comes after this path (relative to the mount point) in the walk\'s order, as an interrupted verify prints it (\\xNN is a byte, \\\\ a backslash)')
  .option('--json', 'print the report as JSON, for scripts (and progress as a JSON line on stderr about once a second)')
  .option('--timeout <s>', 'how long to wait without hearing from the mount (it reports progress about once a second)', '3600')
  .addHelpText('after', '\nProgress goes to stderr: a bar with rate and ETA on a terminal. Interrupted (Ctrl-C), verify stops in the mount too and prints the --from that resumes it.\nExit status: 0 when the copies are equal (or were all repaired), 1 when differences remain, 2 when verify could not run, 130 when interrupted.')
  .action(async (mp: string, flags: { repair?: boolean; source?: string; json?: boolean; timeout: string; metadataOnly?: boolean; from?: string }) => {
    const mountpoint = realPathIfExists(resolve(mp));
    const view = verifyProgressView({ json: flags.json === true });
    let from: string | undefined;
    try {
      from = flags.from === undefined ? undefined : parseFromOption(flags.from, [resolve(mp), mountpoint]);
    } catch (err) {
      fail((err as Error).message, 2);
    }
    const request = verifyRequest(mountpoint, { repair: flags.repair === true, source: flags.source, content: flags.metadataOnly !== true, from }, Number(flags.timeout) * 1000, (line) => view.show(line.progress as VerifyProgress));
    process.once('SIGINT', () => {
      view.stop();
      request.cancel();
      const at = view.at ?? from ?? null;
      const same = `${flags.metadataOnly ? ' --metadata-only' : ''}${flags.repair ? ' --repair' : ''}${flags.source !== undefined ? ` --source ${shellQuote(flags.source)}` : ''}`;
      process.stderr.write(at === null ? 'verify interrupted before it compared anything: run it again\n' : `verify interrupted; resume with: mirrorfs verify ${shellQuote(mp)} --from ${shellQuote(resumeForm(at))}${same}\n`);
      process.exit(130);
    });
    const answer = await request.answer;
    view.stop();
    if (!answer) fail(`${mountpoint}: no mirrorfs process answered, or it stopped answering (not mounted, the mount went away, or nothing came for --timeout)`, 2);
    const body = answer.body as { report?: VerifyReport; error?: string } | undefined;
    if (answer.status !== 200 || !body?.report) fail(`verify could not run: ${body?.error ?? JSON.stringify(answer.body)}`, 2);
    const report = body.report;
    process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatVerify(report));
    const remaining = report.differences.filter((d) => !d.repairedFrom).length;
    process.exit(remaining === 0 ? 0 : 1);
  });

program
  .command('plan')
  .description('how far apart can the copies be for a write-latency budget, in each topology (or the latency for a separation); from measurements of scripts/bench-distance.mjs')
  .option('--budget <time>', 'write latency budget (p50), e.g. 5ms or 800us')
  .option('--separation <distance>', 'separation of the copies, e.g. 120mi or 200km: the expected write latency instead')
  .option('--measurements <file>', 'results of node scripts/bench-distance.mjs', DEFAULT_MEASUREMENTS)
  .option('--json', 'print JSON, for scripts')
  .addHelpText('after', '\nExamples:\n  mirrorfs plan --budget 10ms\n  mirrorfs plan --separation 600mi\n\nThe answers come from straight-line fits of p50 write latency against separation, measured on the\nmachine named in the measurements file; answers outside the measured range are marked extrapolated.')
  .action((flags: { budget?: string; separation?: string; measurements: string; json?: boolean }) => {
    if ((flags.budget === undefined) === (flags.separation === undefined)) fail('give one of --budget or --separation');
    let measurements;
    try {
      measurements = loadMeasurements(resolve(flags.measurements));
    } catch (err) {
      fail((err as Error).message);
    }
    const fits = fitAll(measurements);
    const where = `measured ${measurements.measured.slice(0, 10)} on ${measurements.machine}, distance emulated at scale ${measurements.scale}`;
    try {
      if (flags.budget !== undefined) {
        const budgetUs = parseDuration(flags.budget);
        const answers = separationForBudget(fits, budgetUs);
        if (flags.json) return void process.stdout.write(`${JSON.stringify({ budgetUs, answers, fits }, null, 2)}\n`);
        process.stdout.write(`write latency budget ${flags.budget} (p50); ${where}\n\n`);
        for (const a of answers) {
          const what = a.maxMiles === null ? 'not met at any separation' : a.maxMiles === 'unbounded' ? 'met at every measured separation (latency does not grow with it)' : `copies up to ${Math.round(a.maxMiles)} miles (${Math.round(a.maxMiles * 1.609344)} km) apart`;
          process.stdout.write(`  ${(TOPOLOGY_NAMES[a.topology] ?? a.topology).padEnd(48)} ${what}${a.extrapolated ? ' (extrapolated)' : ''}\n`);
        }
        return;
      }
      const miles = parseDistance(flags.separation!);
      const answers = latencyForSeparation(fits, miles);
      if (flags.json) return void process.stdout.write(`${JSON.stringify({ miles, answers, fits }, null, 2)}\n`);
      process.stdout.write(`copies ${Math.round(miles)} miles apart; ${where}\n\n`);
      for (const a of answers) process.stdout.write(`  ${(TOPOLOGY_NAMES[a.topology] ?? a.topology).padEnd(48)} write p50 about ${(a.p50Us / 1000).toFixed(2)} ms${a.extrapolated ? ' (extrapolated)' : ''}\n`);
    } catch (err) {
      fail((err as Error).message);
    }
  });

/** --ack: all, quorum, a number of peers (1..peers), or 0 (the asynchronous mode). */
function parseAckPolicy(value: string, peers: number): AckPolicy {
  if (value === 'all') return { kind: 'all' };
  if (value === 'quorum') return { kind: 'quorum' };
  if (value === '0') return { kind: 'none' };
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > peers) fail(`--ack: give all, quorum, a number of peers from 1 to ${peers}, or 0 for the asynchronous mode (got ${JSON.stringify(value)})`);
  return { kind: 'count', n };
}

function fail(message: string, code = 1): never {
  process.stderr.write(`mirrorfs: ${message}\n`);
  process.exit(code);
}

if (!existsSync('/proc/mounts')) fail('mirrorfs runs on Linux only');
await program.parseAsync();
