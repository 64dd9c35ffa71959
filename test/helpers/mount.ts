import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runCollect } from './child.js';
import type { PeerProcess } from './peer.js';
import { tmpDir } from './tmp.js';
import { waitFor } from './wait.js';
import { mountTlsArgs } from './tls.js';

export const MIRRORFS_BIN = resolve(import.meta.dirname, '../../dist/cli/mirrorfs.js');

export interface MountProcess {
  mountpoint: string;
  stateDir: string;
  localCopyDir?: string;
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM the mount process and wait until it exited and the mount is gone. */
  stop: () => Promise<void>;
}

const live = new Set<MountProcess>();

export function isMounted(point: string): boolean {
  return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === point);
}

export interface StartMountOptions {
  peers: PeerProcess[];
  localCopy?: boolean;
  mountpoint?: string;
  stateDir?: string;
  extraArgs?: string[];
}

/** Run `mirrorfs mount --foreground` as a child process and wait until the mount is live. */
export async function startMount(opts: StartMountOptions): Promise<MountProcess> {
  const base = tmpDir('mirrorfs-mount-');
  const mountpoint = opts.mountpoint ?? join(base, 'mnt');
  mkdirSync(mountpoint, { recursive: true });
  const stateDir = opts.stateDir ?? join(base, 'state');
  const localCopyDir = opts.localCopy ? join(base, 'local') : undefined;
  const args = mountArgs(mountpoint, opts.peers, stateDir, localCopyDir, opts.extraArgs);
  const proc = spawn(process.execPath, [MIRRORFS_BIN, ...args, '--foreground'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  // 'close', not 'exit': by then all of stdout and stderr has been read.
  const exited = new Promise<void>((r) => proc.once('close', () => r()));
  const handle: MountProcess = {
    mountpoint,
    stateDir,
    localCopyDir,
    proc,
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      live.delete(handle);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
      if (isMounted(mountpoint)) lazyUnmount(mountpoint);
    },
  };
  live.add(handle);
  try {
    const state = await waitFor(() => {
      if (proc.exitCode !== null) return 'exited';
      return out.includes('mirrorfs: mounted') && isMounted(mountpoint) ? 'mounted' : null;
    }, `mount of ${mountpoint}`, 30_000);
    if (state === 'exited') {
      await exited; // all of stderr is in
      // the CLI's own message (it may span lines) follows the JSON log lines
      const message = err.slice(Math.max(0, err.lastIndexOf('mirrorfs: ')));
      throw new Error(`mount exited with ${proc.exitCode}: ${message}`);
    }
  } catch (e) {
    await handle.stop();
    throw e;
  }
  return handle;
}

let defaultArgs: string[] = [];

/** Arguments every mount these helpers start gets from now on (a fault test run at the sync commit level sets --sync). */
export function setMountDefaults(args: string[]): void {
  defaultArgs = args;
}

/** The arguments of `mirrorfs mount` for these peers (for tests that run the CLI themselves). */
export function mountArgs(mountpoint: string, peers: PeerProcess[], stateDir: string, localCopyDir?: string, extra: string[] = []): string[] {
  return [
    'mount', mountpoint,
    '--peers', peers.map((p) => `${p.name}=${p.url}`).join(','),
    '--token-file', peers[0]!.tokenFile,
    '--state-dir', stateDir,
    '--config', '/nonexistent-is-fine-when-not-given'.replace(/.*/, join(stateDir, '..', 'no-config.json')),
    ...(localCopyDir ? ['--local-copy', localCopyDir] : []),
    ...mountTlsArgs(),
    ...defaultArgs,
    ...extra,
  ].filter((a, i, all) => !(a === '--config' || all[i - 1] === '--config'));
}

export function lazyUnmount(point: string): void {
  try {
    execFileSync('fusermount', ['-u', '-z', point], { stdio: 'ignore' });
  } catch {
    try {
      execFileSync('umount', ['-l', point], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}

/** Stop every mount this helper started (afterEach/afterAll), even after a failure. */
export async function cleanupMounts(): Promise<void> {
  await Promise.all([...live].map((m) => m.stop()));
}

/** Run the mirrorfs CLI; resolves with exit code and output. */
export function mirrorfsCli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCollect(process.execPath, [MIRRORFS_BIN, ...args], timeoutMs);
}

export interface PeerState {
  name: string;
  route: string;
  state: 'in-sync' | 'catching-up' | 'down';
  behind: { ops: number; bytes: number; reason: string } | null;
  /** Where the copy stands, as its last answer said (null before the first). */
  durability: { appliedThrough: number; durableThrough: number } | null;
  /** It restarted after its machine went down and is not exact until repaired. */
  unclean: boolean;
}

/** `mirrorfs status --json` of a mount. */
export async function mountStatus(mountpoint: string): Promise<{ seq: number; fenced: string | null; peers: PeerState[] }> {
  const r = await mirrorfsCli(['status', mountpoint, '--json']);
  if (r.code !== 0) throw new Error(`mirrorfs status failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Wait (bounded) until every peer of a mount is in sync. */
export async function waitAllInSync(mountpoint: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await mountStatus(mountpoint)).peers.every((p) => p.state === 'in-sync'), `every peer of ${mountpoint} in sync`, timeoutMs, 100);
}

/** The address a mount's --control-listen ended up on (port 0: read from its log). */
export async function controlUrl(mount: MountProcess): Promise<string> {
  const port = await waitFor(() => /"port":(\d+),"routes":\["\/","\/status.json","\/metrics"\],"msg":"HTTP listener up"/.exec(mount.stderr())?.[1], 'the control listener in the mount log');
  return `http://127.0.0.1:${port}`;
}
