import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTmp } from '../helpers/tmp.js';
import {
  ROOT,
  USER_A,
  USER_A_SHARED,
  USER_B,
  assertSameResults,
  comparable,
  compareDirsWithOwners,
  defineCases,
  diffResults,
  oracleDir,
  outcome,
  posixCase,
  runOnBoth,
  runPosix,
  useLocalPair,
  valueOf,
  type Step,
  type StatValue,
} from '../helpers/posix.js';
import { ownersCases } from './cases/owners.js';
import { permissionsCases } from './cases/permissions.js';
import { xattrCases } from './cases/xattrs.js';

/**
 * The harness checks itself without a mount: two plain local directories
 * must look alike to it, and a deliberate difference must show. Every
 * conformance case must pass here: a case that fails on two ext4 directories
 * tests the harness, not the product.
 */

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

/** Every op of the driver once. */
const EVERY_OP: Step[] = [
  { op: 'mkdir', path: 'd', mode: 0o755 },
  { op: 'create', path: 'd/f', mode: 0o644 },
  { op: 'write', path: 'd/f', data: 'hello world' },
  { op: 'write', path: 'd/f', data: 'H', offset: 0 },
  { op: 'write', path: 'd/f', data: '!', append: true },
  { op: 'read', path: 'd/f' },
  { op: 'open', path: 'd/f', flags: 'rw' },
  { op: 'truncate', path: 'd/f', size: 5 },
  { op: 'chmod', path: 'd/f', mode: 0o640 },
  { op: 'chown', path: 'd/f', uid: USER_A.uid, gid: -1 },
  { op: 'utime', path: 'd/f', atime_ns: '1000000000000000001', mtime_ns: 'omit' },
  { op: 'link', src: 'd/f', dst: 'd/hard' },
  { op: 'symlink', target: 'f', path: 'd/l' },
  { op: 'lchown', path: 'd/l', uid: USER_B.uid, gid: USER_B.gid },
  { op: 'readlink', path: 'd/l' },
  { op: 'mknod', path: 'd/c', mode: 0o020644, major: 1, minor: 3 },
  { op: 'mkfifo', path: 'd/p', mode: 0o600 },
  { op: 'bindsocket', path: 'd/s' },
  { op: 'access', path: 'd/f', mode: 'rw' },
  { op: 'create', path: 'd/run', mode: 0o755 },
  { op: 'write', path: 'd/run', data: '#!/bin/sh\nexit 3\n' },
  { op: 'exec', path: 'd/run' },
  { op: 'setxattr', path: 'd/f', name: 'user.x', value_len: 300 },
  { op: 'getxattr', path: 'd/f', name: 'user.x' },
  { op: 'getxattr', path: 'd/f', name: 'user.x', size: 10 },
  { op: 'listxattr', path: 'd/f' },
  { op: 'listxattr', path: 'd/f', size: 0 },
  { op: 'removexattr', path: 'd/f', name: 'user.x' },
  { op: 'rename', src: 'd/hard', dst: 'd/hard2' },
  { op: 'unlink', path: 'd/hard2' },
  { op: 'mkdir', path: 'd/gone', mode: 0o700 },
  { op: 'rmdir', path: 'd/gone' },
  { op: 'create', path_b64: b64(Buffer.from([0x6e, 0xff, 0xfe])), mode: 0o600 },
  { op: 'listdir', path: 'd' },
  { op: 'listdir', path: '.' },
  ...['d', 'd/f', 'd/l', 'd/c', 'd/p', 'd/s'].map((path): Step => ({ op: 'lstat', path })),
  { op: 'stat', path: 'd/l' },
  { op: 'umask', mask: 0o077 },
  { op: 'create', path: 'masked', mode: 0o666 },
  { op: 'lstat', path: 'masked' },
];

describe('the POSIX harness on two local directories', () => {
  afterAll(() => cleanupTmp());

  it('runs every op, and the driver answers each as the call did', async () => {
    const dir = oracleDir();
    const r = await runPosix(dir, EVERY_OP);
    const erange = EVERY_OP.findIndex((s) => s.op === 'getxattr' && s.size === 10); // fails by design
    const bad = r.map((x, i) => [i, EVERY_OP[i]!.op, x] as const).filter(([i, , x]) => !('ok' in x) && i !== erange);
    expect(bad).toEqual([]);
    const at = (op: string, path: string) => r[EVERY_OP.findIndex((s) => s.op === op && 'path' in s && s.path === path)];
    expect(valueOf(r[5])).toBe('Hello world!');
    expect(valueOf(at('readlink', 'd/l'))).toBe('f');
    expect(valueOf(at('exec', 'd/run'))).toBe(3);
    expect(valueOf<string[]>(at('listdir', '.'))).toEqual(['d', { b64: b64(Buffer.from([0x6e, 0xff, 0xfe])) }]);
    expect(valueOf<string[]>(at('listdir', 'd'))).toEqual(['c', 'f', 'l', 'p', 'run', 's']);
    expect(valueOf(at('listxattr', 'd/f'))).toEqual(['user.x']);
    expect(valueOf<StatValue>(at('lstat', 'd/f'))).toMatchObject({ type: 'file', mode: 0o640, uid: USER_A.uid, gid: 0, size: 5, nlink: 1, atime_ns: '1000000000000000001' });
    expect(valueOf<StatValue>(at('lstat', 'd/l'))).toMatchObject({ type: 'symlink', uid: USER_B.uid, gid: USER_B.gid, size: 1 });
    expect(valueOf<StatValue>(at('lstat', 'd/c'))).toMatchObject({ type: 'chr', rdev_major: 1, rdev_minor: 3 });
    expect(['d', 'd/p', 'd/s'].map((p) => valueOf<StatValue>(at('lstat', p)).type)).toEqual(['dir', 'fifo', 'socket']);
    expect(valueOf<StatValue>(at('lstat', 'masked')).mode).toBe(0o600);
    expect(outcome(r[erange])).toBe('ERANGE');
  });

  it('goes on after a failing step, and reports a malformed step as a harness error', async () => {
    const dir = oracleDir();
    const r = await runPosix(dir, [{ op: 'unlink', path: 'missing' }, { op: 'nonesuch' } as unknown as Step, { op: 'mkdir', path: 'x', mode: 0o755 }]);
    expect(r[0]).toEqual({ errno: 'ENOENT' });
    expect(r[1]).toHaveProperty('error');
    expect(r[2]).toEqual({ ok: true, value: null });
  });

  it('runs as an unprivileged user without capabilities, with the groups asked for', async () => {
    const dir = oracleDir();
    await runPosix(dir, [{ op: 'chmod', path: '.', mode: 0o777 }]);
    const steps: Step[] = [
      { op: 'create', path: 'a', mode: 0o644 },
      { op: 'lstat', path: 'a' },
      { op: 'chown', path: 'a', uid: 0, gid: -1 },
      { op: 'chown', path: 'a', uid: -1, gid: 2100 },
      { op: 'lstat', path: 'a' },
      { op: 'mknod', path: 'c', mode: 0o020644, major: 1, minor: 3 },
    ];
    const [plain, shared] = await Promise.all([runPosix(dir, steps, USER_A), runPosix(dir, steps.map((s) => ('path' in s && s.path === 'a' ? { ...s, path: 'b' } : s)) as Step[], USER_A_SHARED)]);
    expect(valueOf<StatValue>(plain[1])).toMatchObject({ uid: 2001, gid: 2001 });
    expect(plain.slice(2, 4).map(outcome)).toEqual(['EPERM', 'EPERM']);
    expect(outcome(plain[5])).toBe('EPERM');
    expect(outcome(shared[3])).toBe('ok'); // a member of 2100 may chgrp to it
    expect(valueOf<StatValue>(shared[4])).toMatchObject({ uid: 2001, gid: 2100 });
  });

  it('kills a driver that runs past its bound', async () => {
    const dir = oracleDir();
    await runPosix(dir, [
      { op: 'create', path: 'slow', mode: 0o755 },
      { op: 'write', path: 'slow', data: '#!/bin/sh\nexec sleep 30\n' },
    ]);
    await expect(runPosix(dir, [{ op: 'exec', path: 'slow' }], undefined, 500)).rejects.toThrow(/timed out after 500 ms/);
  });

  it('comparable() drops inode numbers and the present\'s times, and keeps times a test set', () => {
    const now = BigInt(Date.now()) * 1_000_000n;
    const ns = (t: bigint) => t.toString();
    const a = comparable({ ok: true, value: { ino: 1, mode: 0o644, mtime_ns: ns(now), atime_ns: '1000000000000000001', ctime_ns: ns(now - 5_000_000_000n) } });
    const b = comparable({ ok: true, value: { ino: 2, mode: 0o644, mtime_ns: ns(now + 3_000_000_000n), atime_ns: '1000000000000000001', ctime_ns: ns(now) } });
    expect(a).toEqual(b);
    expect(a).toEqual({ ok: true, value: { mode: '0o644', mtime_ns: 'recent', atime_ns: '1000000000000000001', ctime_ns: 'recent' } });
    // one nanosecond apart, far from now: a difference (a double could not tell them apart)
    expect(comparable({ ok: true, value: { atime_ns: '1000000000000000002' } })).not.toEqual(comparable({ ok: true, value: { atime_ns: '1000000000000000001' } }));
    expect(comparable({ ok: true, value: { mtime_ns: '0' } })).not.toEqual(comparable({ ok: true, value: { mtime_ns: ns(now) } }));
  });

  for (const as of [ROOT, USER_A]) {
    it(`sees two local directories as equal (as ${as.name}), results and trees`, async () => {
      const [one, two] = [oracleDir(), oracleDir()];
      await Promise.all([one, two].map((d) => runPosix(d, [{ op: 'chmod', path: '.', mode: 0o777 }])));
      const steps = EVERY_OP; // as USER_A some fail (mknod, lchown to another user): alike on both sides
      const both = await runOnBoth(one, two, steps, as);
      expect(diffResults(steps, both.oracle, both.mount)).toEqual([]);
      expect(() => assertSameResults(steps, both, as)).not.toThrow();
      expect(await compareDirsWithOwners([{ label: 'one', dir: one }, { label: 'two', dir: two }])).toEqual([]);
    });
  }

  it('sees a difference in results and names the step, op, path and both answers', async () => {
    const [one, two] = [oracleDir(), oracleDir()];
    await runPosix(two, [{ op: 'create', path: 'f', mode: 0o600 }, { op: 'chown', path: 'f', uid: USER_B.uid, gid: USER_B.gid }]);
    const steps: Step[] = [
      { op: 'mkdir', path: 'same', mode: 0o755 },
      { op: 'create', path: 'f', mode: 0o644 },
      { op: 'lstat', path: 'f' },
    ];
    const both = await runOnBoth(one, two, steps);
    const diffs = diffResults(steps, both.oracle, both.mount);
    expect(diffs).toHaveLength(2);
    expect(diffs[0]).toMatch(/^step 1 create\(path="f", mode=0o644\): oracle \{"ok":true,"value":null\} but mount \{"errno":"EEXIST"\}$/);
    expect(diffs[1]).toMatch(/^step 2 lstat\(path="f"\): oracle .*"uid":0.* but mount .*"uid":2002/);
    expect(() => assertSameResults(steps, both, ROOT)).toThrow(/answered 2 of 3 steps unlike ext4:\n {2}step 1 create/);
  });

  it('sees a difference in trees: owner, mode, content, xattr, a missing entry', async () => {
    const [one, two] = [oracleDir(), oracleDir()];
    const steps: Step[] = [
      { op: 'create', path: 'owner', mode: 0o644 },
      { op: 'create', path: 'mode', mode: 0o644 },
      { op: 'create', path: 'content', mode: 0o644 },
      { op: 'create', path: 'xattr', mode: 0o644 },
      { op: 'setxattr', path: 'xattr', name: 'trusted.t', value: b64('v') },
      { op: 'create', path: 'missing', mode: 0o644 },
    ];
    await Promise.all([runPosix(one, steps), runPosix(two, steps)]);
    expect(await compareDirsWithOwners([{ label: 'one', dir: one }, { label: 'two', dir: two }])).toEqual([]);
    await runPosix(two, [
      { op: 'chown', path: 'owner', uid: USER_A.uid, gid: -1 },
      { op: 'chmod', path: 'mode', mode: 0o600 },
      { op: 'write', path: 'content', data: 'x' },
      { op: 'setxattr', path: 'xattr', name: 'trusted.t', value: b64('w') },
      { op: 'unlink', path: 'missing' },
    ]);
    const diffs = await compareDirsWithOwners([{ label: 'one', dir: one }, { label: 'two', dir: two }]);
    expect(diffs.map((d) => d.split(':')[0])).toEqual(['content', 'missing', 'mode', 'owner', 'xattr']);
    expect(diffs.find((d) => d.startsWith('missing'))).toBe('missing: only in one');
  });

  it('a case reports every difference it saw, and the tree comparison', async () => {
    const [one, two] = [oracleDir(), oracleDir()];
    await runPosix(two, [{ op: 'mkdir', path: 'c', mode: 0o777 }, { op: 'chmod', path: 'c', mode: 0o777 }, { op: 'create', path: 'c/extra', mode: 0o600 }]);
    const sides = { oracle: one, mount: two, peers: [] };
    // the case directory exists on one side only: set-up fails and says so
    await expect(posixCase(sides, 'c', async () => {})).rejects.toThrow(/set-up step 0 mkdir\(path="c", mode=0o700\) as root failed on the mount: \{"errno":"EEXIST"\}/);
    const err = await posixCase(sides, 'd', async (c) => {
      await c.run([{ op: 'create', path: 'f', mode: 0o644 }]);
      await runPosix(two + '/d', [{ op: 'chmod', path: 'f', mode: 0o600 }]);
      await c.run([{ op: 'lstat', path: 'f' }], USER_A);
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/case d: 2 difference\(s\):\n {2}step 0 lstat\(path="f"\) as USER_A: oracle .*"mode":"0o644".* but mount .*"mode":"0o600".*\n {2}tree: f: oracle .*"mode":"0o644".* but mount .*"mode":"0o600"/);
  });
});

describe('every conformance case passes on two local directories (the harness, not the product)', () => {
  const fx = useLocalPair();
  describe('owners', () => defineCases(fx, ownersCases, it));
  describe('permissions', () => defineCases(fx, permissionsCases, it));
  describe('xattrs', () => defineCases(fx, xattrCases, it));
});
