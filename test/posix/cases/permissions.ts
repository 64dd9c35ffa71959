import { expect } from 'vitest';
import { ROOT, SHARED_GID, USER_A, USER_A_SHARED, USER_B, USER_B_SHARED, outcome, resultOf, statOf, type ConformanceCase, type Step } from '../../helpers/posix.js';

/**
 * What a user may do to another user's files: the kernel's answers on ext4
 * are the specification (with default_permissions the kernel checks a FUSE
 * mount's permissions too, from the attributes the mount reports, so wrong
 * owners or modes show here). The files are USER_A's; root makes them and
 * gives them away, so these cases do not depend on who a create makes the
 * owner (test/posix/owners.test.ts covers that).
 */

const SCRIPT = '#!/bin/sh\nexit 7\n';

/** Root makes a file with content, gives it to `owner`, then sets the mode (chown would clear set-id bits). */
function fileOf(path: string, mode: number, owner: { uid: number; gid: number } = USER_A, data = 'content'): Step[] {
  return [
    { op: 'create', path, mode: 0o600 },
    { op: 'write', path, data },
    { op: 'chown', path, uid: owner.uid, gid: owner.gid },
    { op: 'chmod', path, mode },
  ];
}

function dirOf(path: string, mode: number, owner: { uid: number; gid: number } = USER_A): Step[] {
  return [
    { op: 'mkdir', path, mode: 0o700 },
    { op: 'chown', path, uid: owner.uid, gid: owner.gid },
    { op: 'chmod', path, mode },
  ];
}

const outcomes = (steps: Step[], results: { oracle: import('../../helpers/posix.js').Result[] }, op: Step['op'], path: string) => outcome(resultOf(steps, results.oracle, op, path));

export const permissionsCases: ConformanceCase[] = [
  {
    name: 'open-exec',
    title: 'opening for read or write and executing where the mode forbids gives EACCES',
    actors: [ROOT, USER_B],
    body: async (c, actor) => {
      await c.setup([
        ...fileOf('r600', 0o600),
        ...fileOf('r644', 0o644),
        ...fileOf('w666', 0o666),
        ...fileOf('x744', 0o744, USER_A, SCRIPT),
        ...fileOf('x755', 0o755, USER_A, SCRIPT),
        ...fileOf('n644', 0o644, USER_A, SCRIPT),
        ...dirOf('d700', 0o700),
        ...fileOf('d700/f', 0o644),
        ...dirOf('d755', 0o755),
        ...fileOf('d755/f', 0o666),
        ...dirOf('d711', 0o711),
        ...fileOf('d711/f', 0o644),
      ]);
      const steps: Step[] = [
        { op: 'open', path: 'r600', flags: 'r' },
        { op: 'read', path: 'r644' },
        { op: 'open', path: 'r644', flags: 'w' },
        { op: 'open', path: 'r644', flags: 'rw' },
        { op: 'open', path: 'r644', flags: 'wa' },
        { op: 'open', path: 'r644', flags: 'wt' },
        { op: 'write', path: 'w666', data: 'W' },
        { op: 'read', path: 'w666' },
        { op: 'exec', path: 'x744' },
        { op: 'exec', path: 'x755' },
        { op: 'exec', path: 'n644' },
        { op: 'access', path: 'r644', mode: 'r' },
        { op: 'access', path: 'r644', mode: 'w' },
        { op: 'access', path: 'x744', mode: 'x' },
        { op: 'access', path: 'x755', mode: 'x' },
        { op: 'listdir', path: 'd700' },
        { op: 'stat', path: 'd700/f' },
        { op: 'read', path: 'd700/f' },
        { op: 'listdir', path: 'd711' },
        { op: 'read', path: 'd711/f' },
        { op: 'create', path: 'd755/new', mode: 0o644 },
        { op: 'mkdir', path: 'd755/newdir', mode: 0o755 },
        { op: 'unlink', path: 'd755/f' },
        { op: 'rename', src: 'd755/f', dst: 'moved' },
        { op: 'write', path: 'd755/f', data: 'still writable' },
        { op: 'truncate', path: 'r644', size: 0 },
        { op: 'truncate', path: 'w666', size: 1 },
        { op: 'read', path: 'r644' },
      ];
      const r = await c.run(steps, actor);
      const o = (op: Step['op'], path: string) => outcomes(steps, r, op, path);
      if (actor.uid !== 0) {
        expect([o('open', 'r600'), o('listdir', 'd700'), o('stat', 'd700/f'), o('exec', 'x744'), o('create', 'd755/new'), o('unlink', 'd755/f'), o('truncate', 'r644')]).toEqual(new Array(7).fill('EACCES'));
        expect([o('listdir', 'd711'), o('read', 'd711/f'), o('write', 'w666')]).toEqual(['EACCES', 'ok', 'ok']);
      }
      expect(resultOf(steps, r.oracle, 'exec', 'x755')).toEqual({ ok: true, value: 7 });
      expect(o('exec', 'n644')).toBe('EACCES'); // no x bit at all: not even root
    },
  },
  {
    name: 'group-class',
    title: 'the owner, group and other classes are exclusive: a class that matches decides, even to deny',
    actors: [ROOT, USER_A, USER_B_SHARED, USER_B],
    body: async (c, actor) => {
      await c.setup([
        ...fileOf('g604', 0o604, { uid: USER_A.uid, gid: SHARED_GID }),
        ...fileOf('g064', 0o064, { uid: USER_A.uid, gid: SHARED_GID }),
        ...fileOf('o066', 0o066, { uid: USER_A.uid, gid: SHARED_GID }),
        ...fileOf('g460', 0o460, { uid: USER_A.uid, gid: SHARED_GID }),
        ...dirOf('gd705', 0o705, { uid: USER_A.uid, gid: SHARED_GID }),
      ]);
      const steps: Step[] = [
        { op: 'read', path: 'g604' },
        { op: 'read', path: 'g064' },
        { op: 'read', path: 'o066' },
        { op: 'write', path: 'g460', data: 'x' },
        { op: 'read', path: 'g460' },
        { op: 'listdir', path: 'gd705' },
      ];
      const r = await c.run(steps, actor);
      const got = r.oracle.map(outcome);
      if (actor === USER_B_SHARED) expect(got).toEqual(['EACCES', 'ok', 'ok', 'ok', 'ok', 'EACCES']);
      if (actor === USER_A) expect(got).toEqual(['ok', 'EACCES', 'EACCES', 'EACCES', 'ok', 'ok']);
      if (actor === USER_B) expect(got).toEqual(['ok', 'ok', 'ok', 'EACCES', 'EACCES', 'ok']);
    },
  },
  {
    name: 'attrs-nonowner',
    title: 'chmod, chown and explicit utime by a non-owner give EPERM; utime now/now needs write permission',
    actors: [ROOT, USER_B],
    body: async (c, actor) => {
      await c.setup([...fileOf('r644', 0o644), ...fileOf('w666', 0o666), ...dirOf('d777', 0o777)]);
      const T = '1000000000123456789'; // 2001-09-09, to the nanosecond
      const steps: Step[] = [
        { op: 'chmod', path: 'r644', mode: 0o666 },
        { op: 'chown', path: 'r644', uid: actor.uid, gid: actor.gid },
        { op: 'chown', path: 'r644', uid: -1, gid: actor.gid },
        { op: 'chown', path: 'r644', uid: -1, gid: -1 },
        { op: 'utime', path: 'r644', atime_ns: T, mtime_ns: T },
        { op: 'utime', path: 'r644', atime_ns: 'now', mtime_ns: 'now' },
        { op: 'utime', path: 'w666', atime_ns: T, mtime_ns: T },
        { op: 'utime', path: 'w666', atime_ns: 'now', mtime_ns: 'omit' },
        { op: 'utime', path: 'w666', atime_ns: 'omit', mtime_ns: 'now' },
        { op: 'utime', path: 'w666', atime_ns: 'omit', mtime_ns: 'omit' },
        { op: 'utime', path: 'w666', atime_ns: 'now', mtime_ns: 'now' },
        { op: 'utime', path: 'w666', atime_ns: T, mtime_ns: 'omit' },
        { op: 'chmod', path: 'd777', mode: 0o700 },
        { op: 'utime', path: 'd777', atime_ns: 'now', mtime_ns: 'now' },
        { op: 'utime', path: 'd777', atime_ns: T, mtime_ns: T },
        { op: 'lstat', path: 'r644' },
        { op: 'lstat', path: 'w666' },
        { op: 'lstat', path: 'd777' },
      ];
      const r = await c.run(steps, actor);
      if (actor.uid !== 0) {
        expect(r.oracle.slice(0, 3).map(outcome)).toEqual(['EPERM', 'EPERM', 'EPERM']);
        expect([4, 5, 6, 10, 11, 12].map((i) => outcome(r.oracle[i]))).toEqual(['EPERM', 'EACCES', 'EPERM', 'ok', 'EPERM', 'EPERM']);
        expect(statOf(steps, r.oracle, 'r644')).toMatchObject({ uid: USER_A.uid, gid: USER_A.gid, mode: 0o644 });
      } else {
        expect(statOf(steps, r.oracle, 'r644')).toMatchObject({ uid: 0, gid: 0, mode: 0o666 });
        expect(statOf(steps, r.oracle, 'w666')).toMatchObject({ atime_ns: T });
      }
    },
  },
  {
    name: 'chown-away',
    title: 'a non-root owner cannot give its file away, nor to a group it is not in',
    actors: [ROOT, USER_B],
    body: async (c, actor) => {
      const steps: Step[] = [
        { op: 'create', path: 'mine', mode: 0o644 },
        { op: 'chown', path: 'mine', uid: actor.uid, gid: actor.gid }, // its own ids: allowed
        { op: 'chown', path: 'mine', uid: USER_A.uid, gid: -1 },
        { op: 'chown', path: 'mine', uid: -1, gid: SHARED_GID },
        { op: 'chown', path: 'mine', uid: -1, gid: USER_A.gid },
        { op: 'symlink', target: 'mine', path: 'link' },
        { op: 'lchown', path: 'link', uid: USER_A.uid, gid: -1 },
        { op: 'lstat', path: 'mine' },
        { op: 'lstat', path: 'link' },
      ];
      const r = await c.run(steps, actor);
      expect(outcome(r.oracle[1])).toBe('ok');
      expect([2, 3, 4, 6].map((i) => outcome(r.oracle[i]))).toEqual(actor.uid === 0 ? ['ok', 'ok', 'ok', 'ok'] : ['EPERM', 'EPERM', 'EPERM', 'EPERM']);
    },
  },
  {
    name: 'chown-member',
    title: 'an owner may change its file\'s group to one it is in',
    actors: [ROOT, USER_A_SHARED],
    body: async (c, actor) => {
      await c.setup([...fileOf('f', 0o644, USER_A)]);
      const steps: Step[] = [
        { op: 'chown', path: 'f', uid: -1, gid: SHARED_GID },
        { op: 'lstat', path: 'f' },
        { op: 'chown', path: 'f', uid: -1, gid: USER_B.gid },
        { op: 'lstat', path: 'f' },
      ];
      const r = await c.run(steps, actor);
      expect(outcome(r.oracle[0])).toBe('ok');
      expect(outcome(r.oracle[2])).toBe(actor.uid === 0 ? 'ok' : 'EPERM');
    },
  },
  {
    name: 'sticky',
    title: 'in a sticky 01777 directory only the owner (or root) unlinks or renames an entry',
    actors: [ROOT, USER_B],
    body: async (c, actor) => {
      await c.setup([
        { op: 'mkdir', path: 'st', mode: 0o700 },
        { op: 'chmod', path: 'st', mode: 0o1777 },
        ...fileOf('st/a1', 0o666),
        ...fileOf('st/a2', 0o666),
        ...fileOf('st/a3', 0o666),
        ...dirOf('st/adir', 0o777),
        ...dirOf('st/adir2', 0o777),
      ]);
      const steps: Step[] = [
        { op: 'unlink', path: 'st/a1' },
        { op: 'rename', src: 'st/a2', dst: 'st/renamed' },
        { op: 'create', path: 'st/mine', mode: 0o644 },
        { op: 'rename', src: 'st/mine', dst: 'st/a3' }, // over another's file
        { op: 'rmdir', path: 'st/adir' },
        { op: 'rename', src: 'st/adir2', dst: 'st/adir-renamed' },
        { op: 'write', path: 'st/a1', data: 'writable still' }, // root removed it: ENOENT then
        { op: 'create', path: 'st/adir2/inside', mode: 0o644 }, // the subdirectory is 0777 and not sticky
        { op: 'create', path: 'st/mine2', mode: 0o644 },
        { op: 'rename', src: 'st/mine2', dst: 'st/mine3' },
        { op: 'unlink', path: 'st/mine3' },
        { op: 'listdir', path: 'st' },
      ];
      const r = await c.run(steps, actor);
      const first = [0, 1, 3, 4, 5].map((i) => outcome(r.oracle[i]));
      expect(first).toEqual(actor.uid === 0 ? ['ok', 'ok', 'ok', 'ok', 'ok'] : ['EPERM', 'EPERM', 'EPERM', 'EPERM', 'EPERM']);
      expect([8, 9, 10].map((i) => outcome(r.oracle[i]))).toEqual(['ok', 'ok', 'ok']);
    },
  },
  {
    name: 'setid-write',
    title: 'a non-root write or truncate clears setuid (and setgid with group exec) on a file it can write; root\'s keeps them',
    actors: [ROOT, USER_B_SHARED],
    body: async (c, actor) => {
      const shared = { uid: USER_A.uid, gid: SHARED_GID };
      await c.setup([
        ...fileOf('su-write', 0o6775, shared),
        ...fileOf('su-append', 0o6775, shared),
        ...fileOf('su-trunc', 0o6775, shared),
        ...fileOf('su-otrunc', 0o6775, shared),
        ...fileOf('u-only', 0o4775, shared),
        ...fileOf('sg-nox', 0o2765, shared), // setgid without group exec: a locking mark, kept
      ]);
      const steps: Step[] = [
        { op: 'write', path: 'su-write', data: 'X', offset: 2 },
        { op: 'write', path: 'su-append', data: 'X', append: true },
        { op: 'truncate', path: 'su-trunc', size: 1 },
        { op: 'open', path: 'su-otrunc', flags: 'wt' },
        { op: 'write', path: 'u-only', data: 'X' },
        { op: 'write', path: 'sg-nox', data: 'X' },
        ...['su-write', 'su-append', 'su-trunc', 'su-otrunc', 'u-only', 'sg-nox'].map((path): Step => ({ op: 'lstat', path })),
        { op: 'read', path: 'su-write' },
      ];
      const r = await c.run(steps, actor);
      const modes = ['su-write', 'su-append', 'su-trunc', 'su-otrunc', 'u-only', 'sg-nox'].map((p) => statOf(steps, r.oracle, p).mode);
      expect(modes).toEqual(actor.uid === 0 ? [0o6775, 0o6775, 0o6775, 0o6775, 0o4775, 0o2765] : [0o775, 0o775, 0o775, 0o775, 0o775, 0o2765]);
    },
  },
  {
    name: 'setid-chown',
    title: 'chown clears setuid and setgid of a file (even root\'s chown), not of a directory',
    actors: [ROOT, USER_A_SHARED],
    body: async (c, actor) => {
      await c.setup([
        ...fileOf('cs1', 0o6755),
        ...fileOf('cs2', 0o6755),
        ...fileOf('cs3', 0o2745), // setgid, no group exec
        ...fileOf('cs4', 0o755, { uid: USER_A.uid, gid: USER_B.gid }),
        ...dirOf('csd', 0o2775),
      ]);
      const steps: Step[] = [
        { op: 'chown', path: 'cs1', uid: -1, gid: SHARED_GID },
        { op: 'chown', path: 'cs2', uid: USER_B.uid, gid: -1 },
        { op: 'chown', path: 'cs3', uid: -1, gid: SHARED_GID },
        { op: 'chown', path: 'csd', uid: -1, gid: SHARED_GID },
        { op: 'chmod', path: 'cs4', mode: 0o2755 }, // owner not in group 2002: S_ISGID dropped silently
        ...['cs1', 'cs2', 'cs3', 'cs4', 'csd'].map((path): Step => ({ op: 'lstat', path })),
      ];
      const r = await c.run(steps, actor);
      expect(statOf(steps, r.oracle, 'cs1').mode).toBe(0o755);
      expect(statOf(steps, r.oracle, 'cs2').mode).toBe(actor.uid === 0 ? 0o755 : 0o6755);
      expect(statOf(steps, r.oracle, 'csd').mode).toBe(0o2775);
      expect(statOf(steps, r.oracle, 'cs4').mode).toBe(actor.uid === 0 ? 0o2755 : 0o755);
    },
  },
];
