import { expect } from 'vitest';
import { ROOT, USER_A, USER_B, outcome, valueOf, type Actor, type ConformanceCase, type Step } from '../../helpers/posix.js';

/**
 * Extended attributes as ext4 answers them: buffer sizes (ERANGE, the size
 * query), value and name limits, create/replace flags, the privileged
 * namespaces, and permissions. The harness then compares every peer's copy
 * with the mount, xattrs of every namespace included.
 */

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Root makes a file and gives it to `owner`. */
function fileOf(path: string, mode: number, owner: { uid: number; gid: number }): Step[] {
  return [
    { op: 'create', path, mode: 0o600 },
    { op: 'write', path, data: 'content' },
    { op: 'chown', path, uid: owner.uid, gid: owner.gid },
    { op: 'chmod', path, mode },
  ];
}

const own = (actor: Actor) => ({ uid: actor.uid, gid: actor.gid });

export const xattrCases: ConformanceCase[] = [
  {
    name: 'buffers',
    title: 'a 3000-byte value comes back whole; a small buffer gives ERANGE, size 0 the length (getxattr and listxattr)',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(fileOf('f', 0o644, own(actor)));
      const steps: Step[] = [
        { op: 'setxattr', path: 'f', name: 'user.big', value_len: 3000 },
        { op: 'setxattr', path: 'f', name: 'user.a', value: b64('x') },
        { op: 'getxattr', path: 'f', name: 'user.big' }, // os.getxattr: a 128-byte buffer first, then a larger one
        { op: 'getxattr', path: 'f', name: 'user.big', size: 10 },
        { op: 'getxattr', path: 'f', name: 'user.big', size: 0 },
        { op: 'getxattr', path: 'f', name: 'user.big', size: 2999 },
        { op: 'getxattr', path: 'f', name: 'user.big', size: 3000 },
        { op: 'getxattr', path: 'f', name: 'user.big', size: 65536 },
        { op: 'getxattr', path: 'f', name: 'user.a', size: 1 },
        { op: 'listxattr', path: 'f' },
        { op: 'listxattr', path: 'f', size: 0 },
        { op: 'listxattr', path: 'f', size: 1 },
        { op: 'listxattr', path: 'f', size: 15 }, // "user.a\0user.big\0" is 16
        { op: 'listxattr', path: 'f', size: 16 },
        { op: 'listxattr', path: 'f', size: 65536 },
      ];
      const r = await c.run(steps, actor);
      expect(Buffer.from(valueOf<string>(r.oracle[2]), 'base64').length).toBe(3000);
      expect(r.oracle.slice(3, 6).map(outcome)).toEqual(['ERANGE', 'ok', 'ERANGE']);
      expect(valueOf(r.oracle[4])).toBe(3000);
      expect(valueOf(r.oracle[9])).toEqual(['user.a', 'user.big']);
      expect([10, 11, 12, 13].map((i) => (outcome(r.oracle[i]) === 'ok' ? valueOf(r.oracle[i]) : outcome(r.oracle[i])))).toEqual([16, 'ERANGE', 'ERANGE', 16]);
    },
  },
  {
    name: 'value-sizes',
    title: 'values of 0 bytes up to 64 KiB, and one byte over the limit',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const sizes = [0, 1, 255, 1024, 3900, 4096, 8192, 65536, 65537];
      await c.setup(sizes.flatMap((n) => fileOf(`f${n}`, 0o644, own(actor))));
      const steps: Step[] = sizes.flatMap((n): Step[] => [
        { op: 'setxattr', path: `f${n}`, name: 'user.v', value_len: n },
        { op: 'getxattr', path: `f${n}`, name: 'user.v', size: 0 },
        { op: 'getxattr', path: `f${n}`, name: 'user.v' },
      ]);
      // several values on one file, until the file system says no
      steps.push(...[1000, 1000, 1000, 1000, 1000].map((n, i): Step => ({ op: 'setxattr', path: 'f0', name: `user.many${i}`, value_len: n })));
      steps.push({ op: 'listxattr', path: 'f0' }, { op: 'listxattr', path: 'f0', size: 0 });
      const r = await c.run(steps, actor);
      expect(valueOf(r.oracle[1])).toBe(0);
      expect(outcome(r.oracle[sizes.indexOf(65537) * 3])).toBe('E2BIG');
    },
  },
  {
    name: 'names',
    title: 'a 255-byte name works, a 256-byte one gives ERANGE; unknown namespaces are refused',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(fileOf('f', 0o644, own(actor)));
      const n255 = `user.${'n'.repeat(250)}`;
      const n256 = `user.${'n'.repeat(251)}`;
      const steps: Step[] = [
        { op: 'setxattr', path: 'f', name: n255, value: b64('long name') },
        { op: 'getxattr', path: 'f', name: n255 },
        { op: 'getxattr', path: 'f', name: n255, size: 0 },
        { op: 'listxattr', path: 'f' },
        { op: 'listxattr', path: 'f', size: 0 },
        { op: 'setxattr', path: 'f', name: n256, value: b64('too long') },
        { op: 'getxattr', path: 'f', name: n256 },
        { op: 'removexattr', path: 'f', name: n256 },
        { op: 'setxattr', path: 'f', name: 'user.', value: b64('empty name') },
        { op: 'setxattr', path: 'f', name: 'nonesuch.x', value: b64('v') },
        { op: 'getxattr', path: 'f', name: 'nonesuch.x' },
        { op: 'setxattr', path: 'f', name: 'user.ünïcødé', value: b64('v') },
        { op: 'getxattr', path: 'f', name: 'user.ünïcødé' },
        { op: 'removexattr', path: 'f', name: n255 },
        { op: 'listxattr', path: 'f' },
      ];
      const r = await c.run(steps, actor);
      expect(outcome(r.oracle[0])).toBe('ok');
      expect(r.oracle.slice(5, 8).map(outcome)).toEqual(['ERANGE', 'ERANGE', 'ERANGE']);
    },
  },
  {
    name: 'flags',
    title: 'create and replace flags, removal, and absent attributes',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(fileOf('f', 0o644, own(actor)));
      const steps: Step[] = [
        { op: 'getxattr', path: 'f', name: 'user.x' },
        { op: 'getxattr', path: 'f', name: 'user.x', size: 0 },
        { op: 'setxattr', path: 'f', name: 'user.x', value: b64('one'), flags: 'replace' },
        { op: 'setxattr', path: 'f', name: 'user.x', value: b64('one'), flags: 'create' },
        { op: 'setxattr', path: 'f', name: 'user.x', value: b64('two'), flags: 'create' },
        { op: 'getxattr', path: 'f', name: 'user.x' },
        { op: 'setxattr', path: 'f', name: 'user.x', value: b64('three'), flags: 'replace' },
        { op: 'setxattr', path: 'f', name: 'user.x', value: b64('') },
        { op: 'getxattr', path: 'f', name: 'user.x' },
        { op: 'getxattr', path: 'f', name: 'user.x', size: 0 },
        { op: 'removexattr', path: 'f', name: 'user.x' },
        { op: 'removexattr', path: 'f', name: 'user.x' },
        { op: 'listxattr', path: 'f' },
        { op: 'listxattr', path: 'f', size: 0 },
        { op: 'mkdir', path: 'd', mode: 0o755 },
        { op: 'setxattr', path: 'd', name: 'user.on-dir', value: b64('dir value') },
        { op: 'symlink', target: 'f', path: 'l' },
        { op: 'setxattr', path: 'l', name: 'user.via-link', value: b64('followed') },
        { op: 'setxattr', path: 'l', name: 'user.on-link', value: b64('v'), follow: false },
        { op: 'getxattr', path: 'l', name: 'user.via-link', follow: true },
        { op: 'getxattr', path: 'l', name: 'user.via-link' }, // not following: the link has none
        { op: 'mkfifo', path: 'p', mode: 0o644 },
        { op: 'setxattr', path: 'p', name: 'user.on-fifo', value: b64('v') },
        { op: 'listxattr', path: 'd' },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.slice(0, 5).map(outcome)).toEqual(['ENODATA', 'ENODATA', 'ENODATA', 'ok', 'EEXIST']);
      expect(r.oracle.slice(10, 12).map(outcome)).toEqual(['ok', 'ENODATA']);
      expect(outcome(r.oracle[18])).toBe('EPERM');
    },
  },
  {
    name: 'privileged',
    title: 'trusted.* and security.* are root\'s to set; an unprivileged user neither sets nor sees trusted.*',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup([
        ...fileOf('f', 0o666, own(actor)),
        { op: 'setxattr', path: 'f', name: 'trusted.pre', value: b64('set by root') },
        { op: 'setxattr', path: 'f', name: 'security.pre', value: b64('set by root') },
        { op: 'setxattr', path: 'f', name: 'user.pre', value: b64('set by root') },
      ]);
      const steps: Step[] = [
        { op: 'setxattr', path: 'f', name: 'trusted.t', value: b64('trusted value') },
        { op: 'setxattr', path: 'f', name: 'security.s', value: b64('security value') },
        { op: 'getxattr', path: 'f', name: 'trusted.pre' },
        { op: 'getxattr', path: 'f', name: 'security.pre' },
        { op: 'getxattr', path: 'f', name: 'trusted.pre', size: 0 },
        { op: 'listxattr', path: 'f' },
        { op: 'listxattr', path: 'f', size: 0 },
        { op: 'removexattr', path: 'f', name: 'trusted.pre' },
        { op: 'removexattr', path: 'f', name: 'security.pre' },
        { op: 'setxattr', path: 'f', name: 'trusted.big', value_len: 2000 },
        { op: 'getxattr', path: 'f', name: 'trusted.big', size: 10 },
        { op: 'listxattr', path: 'f' },
      ];
      const r = await c.run(steps, actor);
      if (actor.uid === 0) {
        expect(r.oracle.slice(0, 4).map(outcome)).toEqual(['ok', 'ok', 'ok', 'ok']);
        expect(outcome(r.oracle[10])).toBe('ERANGE');
      } else {
        expect(r.oracle.slice(0, 3).map(outcome)).toEqual(['EPERM', 'EPERM', 'ENODATA']);
        expect(valueOf(r.oracle[5])).toEqual(['security.pre', 'user.pre']);
      }
    },
  },
  {
    name: 'nonowner',
    title: 'a non-owner sets user.* only where it may write; never on a sticky directory it does not own',
    actors: [ROOT, USER_B],
    body: async (c, actor) => {
      await c.setup([
        ...fileOf('f644', 0o644, USER_A),
        { op: 'setxattr', path: 'f644', name: 'user.x', value: b64('owner\'s') },
        ...fileOf('f666', 0o666, USER_A),
        ...fileOf('f600', 0o600, USER_A),
        { op: 'setxattr', path: 'f600', name: 'user.x', value: b64('private') },
        { op: 'mkdir', path: 'st', mode: 0o700 },
        { op: 'chown', path: 'st', uid: USER_A.uid, gid: USER_A.gid },
        { op: 'chmod', path: 'st', mode: 0o1777 },
      ]);
      const steps: Step[] = [
        { op: 'setxattr', path: 'f644', name: 'user.y', value: b64('intruder') },
        { op: 'removexattr', path: 'f644', name: 'user.x' },
        { op: 'getxattr', path: 'f644', name: 'user.x' },
        { op: 'setxattr', path: 'f666', name: 'user.y', value: b64('allowed') },
        { op: 'getxattr', path: 'f666', name: 'user.y' },
        { op: 'removexattr', path: 'f666', name: 'user.y' },
        { op: 'getxattr', path: 'f600', name: 'user.x' },
        { op: 'getxattr', path: 'f600', name: 'user.x', size: 0 },
        { op: 'listxattr', path: 'f600' },
        { op: 'setxattr', path: 'st', name: 'user.y', value: b64('sticky') },
        { op: 'listxattr', path: 'f644' },
      ];
      const r = await c.run(steps, actor);
      if (actor === USER_B) {
        expect(r.oracle.slice(0, 7).map(outcome)).toEqual(['EACCES', 'EACCES', 'ok', 'ok', 'ok', 'ok', 'EACCES']);
        expect(outcome(r.oracle[9])).toBe('EPERM');
      }
    },
  },
];
