import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { cleanupMounts, isMounted, startMount, type MountProcess } from './mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from './peer.js';
import { cleanupTmp, tmpDir } from './tmp.js';

/**
 * The POSIX conformance harness: the same steps run by a child process
 * (test/helpers/posix-driver.py, as root or as an unprivileged user) in a
 * plain local directory (the oracle: ext4 under /tmp) and in the mount, and
 * the results compared step by step. Whatever ext4 answers is the
 * specification; the mount must answer the same. Then every peer's copy must
 * equal the mount, owners and all xattrs included (promise 2).
 *
 * Syscalls always come from a child process (the driver), never from the
 * test process, and never from the process serving the mount.
 */

// ---------------------------------------------------------------- users

/** Who runs a step list. No /etc/passwd entries are needed: setpriv sets the ids. */
export interface Actor {
  name: string;
  uid: number;
  gid: number;
  /** Supplementary groups (none when absent). */
  groups?: number[];
}

export const ROOT: Actor = { name: 'root', uid: 0, gid: 0 };
export const USER_A: Actor = { name: 'USER_A', uid: 2001, gid: 2001 };
export const USER_B: Actor = { name: 'USER_B', uid: 2002, gid: 2002 };
/** The group USER_A (and, with inGroup, anyone) shares: setgid directories, group-writable files. */
export const SHARED_GID = 2100;

/** An actor with supplementary groups (default: the shared group 2100). */
export function inGroup(actor: Actor, groups: number[] = [SHARED_GID]): Actor {
  return { ...actor, name: `${actor.name}+${groups.join(',')}`, groups };
}

/** USER_A with supplementary group 2100. */
export const USER_A_SHARED: Actor = inGroup(USER_A);
/** USER_B with supplementary group 2100. */
export const USER_B_SHARED: Actor = inGroup(USER_B);

// ---------------------------------------------------------------- steps and results

type P = { path: string } | { path_b64: string };
type Flags = 'r' | 'w' | 'rw' | 'wa' | 'wt';
/** Nanoseconds since 1970 (a decimal string keeps every digit; a number only below 2^53), or UTIME_NOW / UTIME_OMIT. */
type Time = number | string | 'now' | 'omit';

/** One step of posix-driver.py (see the docstring there). Paths are relative to the base directory. */
export type Step =
  | ({ op: 'mkdir'; mode?: number } & P)
  | ({ op: 'create'; mode?: number } & P)
  | ({ op: 'open'; flags: Flags } & P)
  /** data (UTF-8), or data_len bytes of the driver's pattern (printable, no NUL). */
  | ({ op: 'write'; data?: string; data_len?: number; offset?: number; append?: boolean } & P)
  | ({ op: 'read' } & P)
  | ({ op: 'truncate'; size: number } & P)
  | ({ op: 'chmod'; mode: number } & P)
  | ({ op: 'chown' | 'lchown'; uid: number; gid: number } & P)
  | ({ op: 'utime'; atime_ns: Time; mtime_ns: Time; nofollow?: boolean } & P)
  | ({ op: 'unlink' | 'rmdir' | 'readlink' | 'stat' | 'lstat' | 'listdir' } & P)
  /** With blocks: also st_blocks (512-byte units). */
  | ({ op: 'stat' | 'lstat'; blocks?: boolean } & P)
  | { op: 'rename' | 'link'; src: string; dst: string }
  /** Names as raw bytes (base64), for names that are not UTF-8. */
  | { op: 'rename' | 'link'; src_b64: string; dst_b64: string }
  | ({ op: 'symlink'; target: string } & P)
  /** The target as raw bytes (base64). */
  | ({ op: 'symlink'; target_b64: string } & P)
  | ({ op: 'mknod'; mode: number; major?: number; minor?: number } & P)
  | ({ op: 'mkfifo'; mode?: number } & P)
  | ({ op: 'bindsocket' } & P)
  | ({ op: 'access'; mode: 'r' | 'w' | 'x' | 'f' | string } & P)
  | ({ op: 'exec' } & P)
  | ({ op: 'getxattr'; name: string; size?: number; follow?: boolean } & P)
  | ({ op: 'setxattr'; name: string; value?: string; value_len?: number; flags?: 'create' | 'replace'; follow?: boolean } & P)
  | ({ op: 'listxattr'; size?: number; follow?: boolean } & P)
  | ({ op: 'removexattr'; name: string; follow?: boolean } & P)
  | { op: 'umask'; mask: number }
  | ({ op: 'tree'; mtimes?: boolean; dir_mtimes?: boolean; skip_at_root?: string[] } & P)
  /** Wait (bounded, a clock tick at most) until every time stamped later is later than every time stamped before. */
  | { op: 'tick' }
  /** { size, sha256, map }: map is the file's 4 KiB blocks as runs of "d" (data) and "z" (zeros), e.g. "d1 z2 d13". */
  | ({ op: 'digest'; block?: number } & P)
  | ({ op: 'fallocate'; mode: number | FallocMode[]; offset: number; length: number } & P)
  /** copy_file_range(2), looping over short copies; the bytes copied. */
  | { op: 'copyrange'; src: string; dst: string; length: number; src_offset?: number; dst_offset?: number }
  /** O_DIRECT write of data_len pattern bytes from an aligned buffer, read back the same way: { written, read, equal }. */
  | ({ op: 'directio'; data_len?: number; offset?: number } & P)
  /** Write through a shared writable mapping of the whole file, then msync(MS_SYNC). */
  | ({ op: 'mmapwrite'; data: string; offset?: number } & P)
  /** procs processes append lines lines each (O_APPEND, one write per line) at once; their exit codes. */
  | ({ op: 'appendprocs'; procs?: number; lines?: number } & P)
  /** lines: { count, distinct, sorted_sha256 }; sortlines: rewrite the file with its lines sorted. */
  | ({ op: 'lines' | 'sortlines' } & P)
  /** Pass data through a FIFO, in one process (O_RDWR) or from a child writer to this reader (pair); what came out. */
  | ({ op: 'fifo'; how: 'rdwr' | 'pair'; data: string } & P)
  /** open(path, O_TMPFILE|O_RDWR, mode), write data, and with link give it that name. */
  | ({ op: 'tmpfile'; mode?: number; data?: string; link?: string } & P)
  /** renameat2(2) with RENAME_NOREPLACE or RENAME_EXCHANGE. */
  | { op: 'rename2'; src: string; dst: string; flags: 'noreplace' | 'exchange' }
  /** Hold an exclusive lock; another process tries it while held and after release: { while_held, after_release }. */
  | ({ op: 'lock'; kind: 'flock' | 'fcntl' } & P);

/** fallocate(2) mode bits by name (FALLOC_FL_*). */
export type FallocMode = 'keep_size' | 'punch_hole' | 'collapse_range' | 'zero_range' | 'insert_range';

export type Result = { ok: true; value: unknown } | { errno: string } | { error: string };

/** What stat/lstat answer (value of an ok result). */
export interface StatValue {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chr' | 'blk';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev_major: number;
  rdev_minor: number;
  /** Decimal strings of nanoseconds (exact; BigInt() them to compare). */
  atime_ns: string;
  mtime_ns: string;
  ctime_ns: string;
}

/** The value of an ok result; throws (with the result) otherwise. */
export function valueOf<T = unknown>(r: Result | undefined): T {
  if (r && 'ok' in r) return r.value as T;
  throw new Error(`expected success, got ${JSON.stringify(r)}`);
}

/** The errno of a failed result, or 'ok'. */
export function outcome(r: Result | undefined): string {
  if (!r) return 'missing';
  if ('ok' in r) return 'ok';
  if ('errno' in r) return r.errno;
  return `harness error: ${r.error}`;
}

// ---------------------------------------------------------------- running the driver

const DRIVER_IN_REPO = resolve(import.meta.dirname, 'posix-driver.py');
const PYTHON = '/usr/bin/python3'; // not a pyenv shim: unprivileged users must reach it
const DEFAULT_TIMEOUT_MS = 30_000;
let driverPath: string | null = null;
/** Debian 12: /usr/bin/python3 with its standard library (ctypes, json) is the python3 package; setpriv is util-linux's. */
const MISSING_HINT = ' (the POSIX driver needs Debian\'s python3 package, not just python3-minimal, and setpriv from util-linux: apt-get install python3 util-linux)';

/** Can "others" reach and read this file (every directory above it o+x, the file o+r)? */
function othersCanRead(file: string): boolean {
  try {
    if ((statSync(file).mode & 0o004) === 0) return false;
    for (let d = dirname(file); ; d = dirname(d)) {
      if ((statSync(d).mode & 0o001) === 0) return false;
      if (d === dirname(d)) return true;
    }
  } catch {
    return false;
  }
}

/** The driver where an unprivileged user can run it: in place, or a copy in a 0755 directory. */
function driver(): string {
  if (driverPath) return driverPath;
  if (othersCanRead(DRIVER_IN_REPO)) return (driverPath = DRIVER_IN_REPO);
  const dir = mkdtempSync(join(tmpdir(), 'mirrorfs-posix-driver-'));
  chmodSync(dir, 0o755);
  const copy = join(dir, 'posix-driver.py');
  copyFileSync(DRIVER_IN_REPO, copy);
  chmodSync(copy, 0o755);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return (driverPath = copy);
}

function isRoot(as?: Actor): boolean {
  return !as || (as.uid === 0 && as.gid === 0 && !as.groups?.length);
}

/**
 * Run steps in `dir` in a child process, as root or (via setpriv, without
 * capabilities) as `as`. Bounded by timeoutMs (the child is killed then).
 * Resolves with one result per step; rejects only when the driver itself
 * fails (a harness problem, not a file system answer).
 */
export function runPosix(dir: string, steps: Step[], as?: Pick<Actor, 'uid' | 'gid' | 'groups'>, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Result[]> {
  const python = [PYTHON, '-I', driver(), dir];
  const [cmd, ...args] = isRoot(as as Actor)
    ? python
    : ['setpriv', '--reuid', String(as!.uid), '--regid', String(as!.gid), ...(as!.groups?.length ? ['--groups', as!.groups.join(',')] : ['--clear-groups']), '--', ...python];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd!, args, {
      cwd: '/',
      detached: true, // its own process group: a timeout kills whatever the steps started too
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`posix driver could not start (${cmd}): ${err.message}${MISSING_HINT}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const who = isRoot(as as Actor) ? 'root' : `uid ${as!.uid}`;
      if (timedOut) return reject(new Error(`posix driver in ${dir} as ${who} timed out after ${timeoutMs} ms (steps: ${describeSteps(steps)}); stderr: ${stderr}`));
      if (code !== 0) return reject(new Error(`posix driver in ${dir} as ${who} exited ${code ?? signal}: ${stderr || stdout}${/No module named|No such file/.test(stderr) ? MISSING_HINT : ''}`));
      let results: Result[];
      try {
        results = JSON.parse(stdout) as Result[];
      } catch {
        return reject(new Error(`posix driver printed no JSON: ${stdout.slice(0, 500)} ${stderr}`));
      }
      if (!Array.isArray(results) || results.length !== steps.length) return reject(new Error(`posix driver answered ${results.length} results for ${steps.length} steps`));
      resolvePromise(results);
    });
    child.stdin.on('error', () => {}); // a driver that died early is reported by 'close'
    child.stdin.end(JSON.stringify(steps));
  });
}

function describeSteps(steps: Step[]): string {
  const s = steps.map((x) => x.op).join(',');
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

// ---------------------------------------------------------------- comparing

/** Times within this distance of now were taken from the clock by the file system, not set by the test. */
const RECENT_NS = 24n * 3600n * 1_000_000_000n;

function isTimeKey(k: string): boolean {
  return k.endsWith('time_ns');
}

/**
 * A result with what legitimately differs between two file systems taken
 * out: inode numbers, and absolute times near the present (they depend on
 * when each side ran: shown as "recent"). Times far from the present were set
 * explicitly by the test (utime) and are kept, so a wrong explicit time still
 * shows. Tests that need time relations (ctime after > ctime before) compare
 * the raw results themselves.
 */
export function comparable(result: Result): Result {
  const now = BigInt(Date.now()) * 1_000_000n;
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (k === 'ino') continue;
      if (k === 'mode' && typeof x === 'number') {
        out[k] = octal(x); // as people read modes
        continue;
      }
      if (isTimeKey(k) && (typeof x === 'number' || (typeof x === 'string' && /^-?\d+$/.test(x)))) {
        const t = typeof x === 'number' ? BigInt(Math.round(x)) : BigInt(x);
        out[k] = (t > now ? t - now : now - t) < RECENT_NS ? 'recent' : x;
        continue;
      }
      out[k] = strip(x);
    }
    return out;
  };
  return strip(result) as Result;
}

/** A mode as people write it: 0o2755. */
export function octal(mode: number): string {
  return `0o${mode.toString(8)}`;
}

/** JSON with sorted keys: equal values, equal strings. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'undefined';
}

/** A value short enough for a failure message (long ones: head, length and hash). */
function short(s: string, max = 240): string {
  if (s.length <= max) return s;
  return `${s.slice(0, max)}…(${s.length} chars, sha256 ${createHash('sha256').update(s).digest('hex').slice(0, 12)})`;
}

/** A step as a reader wants to see it: op and arguments, modes in octal. */
export function showStep(step: Step): string {
  const args = Object.entries(step)
    .filter(([k]) => k !== 'op')
    .map(([k, v]) => `${k}=${(k === 'mode' || k === 'mask') && typeof v === 'number' ? octal(v) : typeof v === 'string' ? JSON.stringify(short(v, 60)) : JSON.stringify(v)}`);
  return `${step.op}(${args.join(', ')})`;
}

/** Per differing step: its number, op, arguments and both results. Empty when equal. */
export function diffResults(steps: Step[], a: Result[], b: Result[], labels: [string, string] = ['oracle', 'mount'], who = ''): string[] {
  const diffs: string[] = [];
  for (let i = 0; i < Math.max(steps.length, a.length, b.length); i++) {
    const ra = a[i] === undefined ? 'missing' : canonical(comparable(a[i]!));
    const rb = b[i] === undefined ? 'missing' : canonical(comparable(b[i]!));
    if (ra !== rb) diffs.push(`step ${i} ${steps[i] ? showStep(steps[i]!) : '?'}${who ? ` as ${who}` : ''}: ${labels[0]} ${short(ra)} but ${labels[1]} ${short(rb)}`);
  }
  return diffs;
}

export interface BothResults {
  oracle: Result[];
  mount: Result[];
}

/** Run the same steps in the oracle directory and in the mount (as the same user). */
export async function runOnBoth(oracleDir: string, mountDir: string, steps: Step[], as?: Actor): Promise<BothResults> {
  const [oracle, mount] = await Promise.all([runPosix(oracleDir, steps, as), runPosix(mountDir, steps, as)]);
  return { oracle, mount };
}

/** Throw, listing every differing step, unless the mount answered each step as the oracle did. */
export function assertSameResults(steps: Step[], both: BothResults, as?: Actor): void {
  const diffs = diffResults(steps, both.oracle, both.mount, ['oracle', 'mount'], as?.name ?? '');
  if (diffs.length) throw new Error(`the mount answered ${diffs.length} of ${steps.length} steps unlike ext4:\n  ${diffs.join('\n  ')}`);
}

// ---------------------------------------------------------------- trees with owners

/** One entry of a tree snapshot (see op_tree in posix-driver.py). */
export interface OwnedEntry {
  type: string;
  /** In octal, as people read it ("0o2755"). */
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  nlink?: number;
  rdev?: [number, number];
  sha256?: string;
  target?: unknown;
  hardlink_group?: string;
  mtime_ns?: string;
  xattrs?: Record<string, unknown>;
}

export type OwnedTree = Map<string, OwnedEntry>;

/**
 * Snapshot a tree as root, from a child process: names, types, modes, owners,
 * sizes, contents (SHA-256), symlink targets, device numbers, hard-link
 * groups and xattrs of every namespace but system.* (long values as a hash).
 * The root's .mirrorfs (a peer's state) is skipped. Times only with mtimes.
 */
export async function snapshotWithOwners(root: string, opts: { mtimes?: boolean; dirMtimes?: boolean } = {}): Promise<OwnedTree> {
  const [r] = await runPosix(root, [{ op: 'tree', path: '.', mtimes: opts.mtimes ?? false, ...(opts.dirMtimes ? { dir_mtimes: true } : {}) }]);
  const tree = valueOf<Record<string, OwnedEntry>>(r);
  for (const e of Object.values(tree)) {
    e.mode = octal(e.mode as unknown as number);
    if (!e.xattrs) continue;
    for (const [k, v] of Object.entries(e.xattrs)) {
      if (typeof v === 'string' && v.length > 88) e.xattrs[k] = `${Buffer.from(v, 'base64').length} bytes, sha256 ${createHash('sha256').update(Buffer.from(v, 'base64')).digest('hex')}`;
    }
  }
  return new Map(Object.entries(tree));
}

/** Human-readable differences between two owned trees (empty when equal). */
export function diffOwnedTrees(a: OwnedTree, b: OwnedTree, labels: [string, string]): string[] {
  const diffs: string[] = [];
  for (const [path, ea] of a) {
    const eb = b.get(path);
    if (!eb) diffs.push(`${path || '.'}: only in ${labels[0]}`);
    else if (canonical(ea) !== canonical(eb)) diffs.push(`${path || '.'}: ${labels[0]} ${short(canonical(ea), 400)} but ${labels[1]} ${short(canonical(eb), 400)}`);
  }
  for (const path of b.keys()) if (!a.has(path)) diffs.push(`${path || '.'}: only in ${labels[1]}`);
  return diffs;
}

/** compareDirs with owners and all xattrs: every directory against the first. */
export async function compareDirsWithOwners(dirs: { label: string; dir: string }[], opts: { mtimes?: boolean; dirMtimes?: boolean } = {}): Promise<string[]> {
  const snaps = await Promise.all(dirs.map((d) => snapshotWithOwners(d.dir, opts)));
  return dirs.slice(1).flatMap((d, i) => diffOwnedTrees(snaps[0]!, snaps[i + 1]!, [dirs[0]!.label, d.label]));
}

// ---------------------------------------------------------------- directories

/** chmod 0755 every directory from `dir` up to (not including) `stopAt`, so unprivileged users can reach `dir`. */
export function makeTraversable(dir: string, stopAt = tmpdir()): void {
  for (let d = resolve(dir); d !== resolve(stopAt) && d !== dirname(d) && d.startsWith(resolve(stopAt) + sep); d = dirname(d)) {
    const mode = statSync(d).mode & 0o7777;
    if ((mode & 0o005) !== 0o005) chmodSync(d, mode | 0o755);
  }
}

/** A fresh oracle directory on the local file system (ext4 under /tmp), reachable by anyone. */
export function oracleDir(prefix = 'mirrorfs-posix-oracle-'): string {
  const base = tmpDir(prefix);
  const dir = join(base, 'oracle');
  mkdirSync(dir);
  makeTraversable(dir);
  return dir;
}

// ---------------------------------------------------------------- one case, both sides

/** Both sides of one case: the same subdirectory in the oracle and in the mount, and the peers' copies of it. */
export interface PosixSides {
  oracle: string;
  mount: string;
  /** The peers' copies of the mount's directory (empty for a local-only self-check). */
  peers: { label: string; dir: string }[];
}

/** A set-up that failed: its problems are in the case's list already. */
class SetupFailed extends Error {}

/**
 * One conformance case. `run` compares each step list with the oracle and
 * records every difference instead of stopping at the first, so one failing
 * case reports all it found; `finish` (called by posixCase) compares the trees
 * and throws everything at once.
 */
export class PosixCase {
  readonly problems: string[] = [];

  constructor(readonly name: string, readonly sides: PosixSides) {}

  /** Run steps on both sides as `as` (root by default), record differences, and return both results. */
  async run(steps: Step[], as: Actor = ROOT): Promise<BothResults> {
    const both = await runOnBoth(this.sides.oracle, this.sides.mount, steps, as);
    const diffs = diffResults(steps, both.oracle, both.mount, ['oracle', 'mount'], as.name);
    this.problems.push(...diffs);
    return both;
  }

  /** Run steps on both sides; throw at once when they differ (for set-up the rest depends on). */
  async setup(steps: Step[], as: Actor = ROOT): Promise<BothResults> {
    const both = await runOnBoth(this.sides.oracle, this.sides.mount, steps, as);
    for (const [label, results] of [['oracle', both.oracle], ['mount', both.mount]] as const) {
      const failed = results.map((r, i) => [r, i] as const).filter(([r]) => !('ok' in r));
      if (failed.length) this.problems.push(...failed.map(([r, i]) => `set-up step ${i} ${showStep(steps[i]!)} as ${as.name} failed on the ${label}: ${canonical(r)}`));
    }
    if (this.problems.length) throw new SetupFailed(this.report());
    return both;
  }

  /** Compare the case's tree: oracle against the mount (owners, modes, contents, xattrs), then the mount against every peer. */
  async compareTrees(): Promise<void> {
    const { oracle, mount, peers } = this.sides;
    const [o, m, ...ps] = await Promise.all([oracle, mount, ...peers.map((p) => p.dir)].map((d) => snapshotWithOwners(d)));
    this.problems.push(...diffOwnedTrees(o!, m!, ['oracle', 'mount']).map((d) => `tree: ${d}`));
    peers.forEach((p, i) => this.problems.push(...diffOwnedTrees(m!, ps[i]!, ['mount', p.label]).map((d) => `tree: ${d}`)));
  }

  report(): string {
    return `case ${this.name}: ${this.problems.length} difference(s):\n  ${this.problems.join('\n  ')}`;
  }
}

/**
 * Run one case in its own subdirectory `name` (made by root on both sides,
 * mode `mode`, default 0777), then compare the trees, and throw every
 * difference recorded (also when the body threw: both are reported).
 */
export async function posixCase(root: PosixSides, name: string, body: (c: PosixCase) => Promise<void>, opts: { mode?: number; health?: () => string | null } = {}): Promise<void> {
  const sides: PosixSides = {
    oracle: join(root.oracle, name),
    mount: join(root.mount, name),
    peers: root.peers.map((p) => ({ label: p.label, dir: join(p.dir, name) })),
  };
  const c = new PosixCase(name, sides);
  // Made in the parent directory, so the case directory itself is compared too.
  const parent = new PosixCase(name, root);
  await parent.setup([
    { op: 'mkdir', path: name, mode: 0o700 },
    { op: 'chmod', path: name, mode: opts.mode ?? 0o777 },
  ]);
  let thrown: unknown = null;
  try {
    await body(c);
  } catch (err) {
    thrown = err;
  }
  const died = opts.health?.();
  if (died) c.problems.unshift(died); // first: it explains everything after it
  else {
    try {
      await c.compareTrees();
    } catch (err) {
      c.problems.push(`tree comparison failed: ${String(err)}`);
    }
  }
  if (thrown instanceof SetupFailed) throw new Error(c.report());
  if (thrown && c.problems.length) throw new Error(`${String(thrown instanceof Error ? thrown.message : thrown)}\n${c.report()}`);
  if (thrown) throw thrown;
  if (c.problems.length) throw new Error(c.report());
}

// ---------------------------------------------------------------- the per-file fixture

/** Where cases run: both roots, and posixCase on them. */
export interface PosixFixture {
  /** The root of both sides, valid inside tests (after beforeAll). */
  readonly sides: PosixSides;
  /** posixCase on this fixture. */
  check(name: string, body: (c: PosixCase) => Promise<void>, opts?: { mode?: number }): Promise<void>;
}

export interface PosixMount extends PosixFixture {
  readonly mount: MountProcess;
  readonly peers: PeerProcess[];
}

/**
 * The self-check's fixture: two plain local directories (ext4 both), the
 * second standing where the mount would. Every case must pass here; a case
 * that fails here tests the harness, not the product.
 */
export function useLocalPair(): PosixFixture {
  let sides: PosixSides | null = null;
  beforeAll(() => {
    sides = { oracle: oracleDir(), mount: oracleDir('mirrorfs-posix-second-'), peers: [] };
  });
  afterAll(() => cleanupTmp());
  const need = (): PosixSides => {
    if (!sides) throw new Error('the local pair is not ready (beforeAll failed?)');
    return sides;
  };
  return {
    get sides() {
      return need();
    },
    check: (name, body, o) => posixCase(need(), name, body, o),
  };
}

/** One conformance case: run once per actor, each time in its own directory `${name}-${actor}`. */
export interface ConformanceCase {
  name: string;
  title: string;
  actors: Actor[];
  /** Mode of the case directory (root's), default 0777. */
  mode?: number;
  /**
   * Where the mount is known to differ from ext4, the README's known limit that says so:
   * on a mount the case is expected to fail (vitest `it.fails`), so a fix shows up as a
   * failure to be turned into a plain case; on two local directories it runs as usual.
   */
  knownLimit?: string;
  body: (c: PosixCase, actor: Actor) => Promise<void>;
}

type CaseIt = ((title: string, fn: () => Promise<void>) => void) & { fails?: (title: string, fn: () => Promise<void>) => void };

/**
 * Define one test per case and actor on a fixture (call inside describe). With
 * `onMount`, a case with a known limit is defined with `it.fails`.
 */
export function defineCases(fx: PosixFixture, cases: ConformanceCase[], it: CaseIt, opts: { onMount?: boolean } = {}): void {
  for (const k of cases) {
    for (const actor of k.actors) {
      const run = () => fx.check(`${k.name}-${actor.name}`, (c) => k.body(c, actor), { mode: k.mode });
      if (k.knownLimit && opts.onMount) it.fails!(`known limit: ${k.title} (as ${actor.name}) [${k.knownLimit}]`, run);
      else it(`${k.title} (as ${actor.name})`, run);
    }
  }
}

/** The result of the last step with this op and path, from one side's results. */
export function resultOf(steps: Step[], results: Result[], op: Step['op'], path: string): Result {
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i] as Step & { path?: string; src?: string };
    if (s.op === op && (s.path === path || (s.path === undefined && s.src === path))) return results[i]!;
  }
  throw new Error(`no ${op}(${path}) step`);
}

/** The stat value of the last stat/lstat of `path` (op 'stat' or 'lstat'), on one side. */
export function statOf(steps: Step[], results: Result[], path: string, op: 'stat' | 'lstat' = 'lstat'): StatValue {
  return valueOf<StatValue>(resultOf(steps, results, op, path));
}

/**
 * Two real peers, one mount and an oracle directory for a whole test file
 * (beforeAll), all torn down in afterAll even after failures. Each case uses
 * its own subdirectory (check). Unprivileged users can reach both roots.
 */
export function usePosixMount(opts: { localCopy?: boolean } = {}): PosixMount {
  let sides: PosixSides | null = null;
  let mount: MountProcess | null = null;
  let peers: PeerProcess[] = [];
  beforeAll(async () => {
    peers = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    mount = await startMount({ peers, localCopy: opts.localCopy ?? false });
    makeTraversable(dirname(mount.mountpoint)); // the mount's own root is the peers' root directory (chmod below)
    const oracle = oracleDir();
    sides = { oracle, mount: mount.mountpoint, peers: peers.map((p) => ({ label: p.name, dir: p.dataDir })) };
    // Both roots alike (the mount's root is the peers' data directory's mode).
    await new PosixCase('root', sides).setup([{ op: 'chmod', path: '.', mode: 0o755 }]);
  });
  /** Why the mount cannot answer any more (its process exited, or it is unmounted), with the end of its log; null while it is fine. */
  const health = (): string | null => {
    if (!mount) return null;
    const { proc } = mount;
    const gone = proc.exitCode !== null || proc.signalCode !== null ? `its process exited (${proc.exitCode ?? proc.signalCode})` : !isMounted(mount.mountpoint) ? 'it is no longer mounted' : null;
    if (!gone) return null;
    const log = mount.stderr().trim().split('\n').slice(-8).join('\n    ');
    return `THE MOUNT DIED during this case: ${gone}. Last lines of its log:\n    ${log}`;
  };
  /**
   * A mount that died in one case would fail every later case of the file for
   * the same reason: start it again (same state directory, same peers) so each
   * later case still reports its own answers. The case that killed it says so.
   */
  const remountIfDead = async (): Promise<void> => {
    if (!mount || !sides || !health()) return;
    const old = mount;
    await old.stop();
    try {
      mount = await startMount({ peers, localCopy: opts.localCopy ?? false, stateDir: old.stateDir });
    } catch (err) {
      throw new Error(`the mount died in an earlier case and could not be started again: ${String(err)}`);
    }
    makeTraversable(dirname(mount.mountpoint));
    sides.mount = mount.mountpoint;
    await new PosixCase('root', sides).setup([{ op: 'chmod', path: '.', mode: 0o755 }]);
  };
  afterAll(async () => {
    await cleanupMounts();
    await cleanupPeers();
    cleanupTmp();
  });
  const need = <T>(v: T | null, what: string): T => {
    if (v === null) throw new Error(`the POSIX fixture's ${what} is not ready (beforeAll failed?)`);
    return v;
  };
  return {
    get sides() {
      return need(sides, 'directories');
    },
    get mount() {
      return need(mount, 'mount');
    },
    get peers() {
      return peers;
    },
    async check(name, body, o) {
      need(sides, 'directories');
      await remountIfDead();
      return posixCase(sides!, name, body, { ...o, health });
    },
  };
}
