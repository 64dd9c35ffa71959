import { expect } from 'vitest';
import { ROOT, SHARED_GID, USER_A, USER_A_SHARED, outcome, resultOf, statOf, valueOf, type ConformanceCase, type StatValue, type Step } from '../../helpers/posix.js';

/**
 * Who owns what a user creates: the caller (fsuid:fsgid), or the directory's
 * group under a setgid directory, which new directories inherit with the
 * setgid bit. Each case's expectations on the oracle (ext4) check the case
 * itself; the harness compares the mount with the oracle step by step and
 * the peers' trees with the mount.
 */

const S_IFCHR = 0o020000;
const S_IFREG = 0o100000;

/** Root's directory of the shared group with this (set-group-ID) mode. */
function setgidDir(path: string, mode: number): Step[] {
  return [
    { op: 'mkdir', path, mode: 0o755 },
    { op: 'chown', path, uid: 0, gid: SHARED_GID },
    { op: 'chmod', path, mode },
  ];
}

export const ownersCases: ConformanceCase[] = [
  {
    name: 'created',
    title: 'a file, directory, symlink, FIFO, socket and node belong to their creator',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const steps: Step[] = [
        { op: 'create', path: 'f', mode: 0o644 },
        { op: 'write', path: 'f', data: 'data' },
        { op: 'mkdir', path: 'd', mode: 0o755 },
        { op: 'create', path: 'd/inner', mode: 0o600 },
        { op: 'symlink', target: 'f', path: 'l' },
        { op: 'mkfifo', path: 'p', mode: 0o644 },
        { op: 'bindsocket', path: 's' },
        { op: 'mknod', path: 'n', mode: S_IFREG | 0o640 },
        { op: 'mknod', path: 'c', mode: S_IFCHR | 0o644, major: 1, minor: 3 }, // EPERM unless root
        { op: 'rename', src: 'n', dst: 'n2' },
        ...['f', 'd', 'd/inner', 'l', 'p', 's', 'n2', 'c'].map((path): Step => ({ op: 'lstat', path })),
        { op: 'stat', path: 'l' },
      ];
      const r = await c.run(steps, actor);
      for (const path of ['f', 'd', 'd/inner', 'l', 'p', 's', 'n2']) {
        expect(statOf(steps, r.oracle, path), path).toMatchObject({ uid: actor.uid, gid: actor.gid });
      }
      expect(outcome(r.oracle[8])).toBe(actor.uid === 0 ? 'ok' : 'EPERM');
    },
  },
  {
    name: 'hardlink',
    title: 'a hard link its creator makes is the same file under two names: one inode, one owner, one mode',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const steps: Step[] = [
        { op: 'create', path: 'f', mode: 0o644 },
        { op: 'write', path: 'f', data: 'data' },
        { op: 'link', src: 'f', dst: 'h' },
        { op: 'lstat', path: 'f' },
        { op: 'lstat', path: 'h' },
        { op: 'chmod', path: 'h', mode: 0o600 }, // through the other name
        { op: 'write', path: 'h', data: 'DATA' },
        { op: 'lstat', path: 'h' },
        { op: 'read', path: 'f' }, // the bytes written through h (the attributes through f: the known limit below)
      ];
      const r = await c.run(steps, actor);
      const oneInode = (results: typeof r.oracle) => {
        const [f, h] = [resultOf(steps, results, 'lstat', 'f'), resultOf(steps, results, 'lstat', 'h')];
        return 'ok' in f && 'ok' in h ? statOf(steps, results, 'f').ino === statOf(steps, results, 'h').ino : null; // null: not both there
      };
      expect(oneInode(r.oracle)).toBe(true);
      expect(statOf(steps, r.oracle, 'h')).toMatchObject({ uid: actor.uid, gid: actor.gid, mode: 0o600, nlink: 2 });
      expect(statOf(steps, r.oracle, 'f')).toMatchObject({ uid: actor.uid, gid: actor.gid, nlink: 2 });
      // comparable() leaves inode numbers out; their identity is compared here
      if (oneInode(r.mount) === false) c.problems.push(`f and h: one inode on the oracle, two on the mount (${statOf(steps, r.mount, 'f').ino} and ${statOf(steps, r.mount, 'h').ino})`);
    },
  },
  {
    name: 'hardlink-other-name',
    title: 'a change through one name of a hard-linked file shows at once through the other',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const steps: Step[] = [
        { op: 'create', path: 'f', mode: 0o644 },
        { op: 'write', path: 'f', data: 'data' },
        { op: 'link', src: 'f', dst: 'h' },
        { op: 'lstat', path: 'f' },
        { op: 'lstat', path: 'h' },
        { op: 'chmod', path: 'h', mode: 0o600 },
        { op: 'write', path: 'h', data: 'longer data' },
        { op: 'lstat', path: 'f' },
      ];
      const r = await c.run(steps, actor);
      expect(statOf(steps, r.oracle, 'f')).toMatchObject({ mode: 0o600, size: 11 });
    },
  },
  {
    name: 'hardlink-other-name-bytes',
    title: 'a change through one name of a hard-linked file shows at once through the other, with names that are UTF-8 and names that are not',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const latin1 = (text: string) => Buffer.from(text, 'latin1').toString('base64');
      const steps: Step[] = [
        { op: 'mkdir', path: 'répertoire', mode: 0o755 },
        { op: 'create', path: 'répertoire/café', mode: 0o644 },
        { op: 'write', path: 'répertoire/café', data: 'data' },
        { op: 'link', src: 'répertoire/café', dst: 'über' },
      ];
      steps.push(
        { op: 'link', src_b64: Buffer.from('répertoire/café').toString('base64'), dst_b64: latin1('\xfcber-latin1') },
        { op: 'lstat', path: 'répertoire/café' },
        { op: 'lstat', path: 'über' },
        { op: 'lstat', path_b64: latin1('\xfcber-latin1') },
        { op: 'chmod', path: 'über', mode: 0o600 },
        { op: 'write', path: 'über', data: 'longer data' },
        { op: 'lstat', path: 'répertoire/café' },
        { op: 'lstat', path_b64: latin1('\xfcber-latin1') },
      );
      const r = await c.run(steps, actor);
      expect(r.oracle.map(outcome)).toEqual(new Array(steps.length).fill('ok'));
      expect(valueOf<StatValue>(r.oracle[10])).toMatchObject({ mode: 0o600, size: 11, nlink: 3 });
      expect(valueOf<StatValue>(r.oracle[11])).toMatchObject({ mode: 0o600, size: 11, nlink: 3 });
    },
  },
  {
    name: 'hardlink-every-change',
    title: 'every kind of change through one of three names (in three directories) shows at once through the others, also after their directory is renamed',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const names = ['a/f', 'b/g', 'h'];
      const statAll = (...paths: string[]): Step[] => paths.map((path): Step => ({ op: 'lstat', path }));
      const steps: Step[] = [
        { op: 'mkdir', path: 'a', mode: 0o755 },
        { op: 'mkdir', path: 'b', mode: 0o755 },
        { op: 'create', path: 'a/f', mode: 0o644 },
        { op: 'write', path: 'a/f', data: 'first data' },
        { op: 'link', src: 'a/f', dst: 'b/g' },
        { op: 'link', src: 'b/g', dst: 'h' },
        ...statAll(...names), // now cached by the kernel under every name
        { op: 'truncate', path: 'b/g', size: 5 },
        ...statAll(...names),
        { op: 'write', path: 'h', data: 'written through h', offset: 3 },
        ...statAll(...names),
        { op: 'utime', path: 'a/f', atime_ns: '1000000123', mtime_ns: '2000000456' },
        ...statAll(...names),
        { op: 'setxattr', path: 'b/g', name: 'user.note', value: Buffer.from('v').toString('base64') },
        ...statAll(...names),
        { op: 'chown', path: 'h', uid: USER_A.uid, gid: -1 }, // EPERM for anyone but root and USER_A
        { op: 'chmod', path: 'h', mode: 0o640 },
        ...statAll(...names),
        { op: 'rename', src: 'b', dst: 'b2' },
        { op: 'chmod', path: 'a/f', mode: 0o604 },
        ...statAll('a/f', 'b2/g', 'h'),
        { op: 'unlink', path: 'a/f' },
        ...statAll('b2/g', 'h'),
        { op: 'create', path: 'other', mode: 0o600 },
        { op: 'rename', src: 'other', dst: 'h' }, // replaces one name: one left
        ...statAll('b2/g', 'h'),
        { op: 'read', path: 'b2/g' },
      ];
      const r = await c.run(steps, actor);
      expect(statOf(steps, r.oracle, 'b2/g')).toMatchObject({ nlink: 1, mode: 0o604, size: 20 });
    },
  },
  {
    name: 'setgid-dir',
    title: 'in a setgid directory a new file takes its group, a new directory its group and the setgid bit',
    actors: [ROOT, USER_A_SHARED],
    body: async (c, actor) => {
      await c.setup(setgidDir('sg', 0o2775));
      const steps: Step[] = [
        { op: 'create', path: 'sg/f', mode: 0o644 },
        { op: 'mkdir', path: 'sg/d', mode: 0o755 },
        { op: 'mkdir', path: 'sg/d/e', mode: 0o700 },
        { op: 'create', path: 'sg/d/e/f', mode: 0o600 },
        { op: 'mkfifo', path: 'sg/p', mode: 0o600 },
        { op: 'symlink', target: 'f', path: 'sg/l' },
        // a setgid file made by its owner, who is in the file's group: kept
        { op: 'create', path: 'sg/x', mode: 0o755 },
        { op: 'chmod', path: 'sg/x', mode: 0o2755 },
        ...['sg', 'sg/f', 'sg/d', 'sg/d/e', 'sg/d/e/f', 'sg/p', 'sg/l', 'sg/x'].map((path): Step => ({ op: 'lstat', path })),
      ];
      const r = await c.run(steps, actor);
      for (const path of ['sg/f', 'sg/d', 'sg/d/e', 'sg/d/e/f', 'sg/p', 'sg/l', 'sg/x']) {
        expect(statOf(steps, r.oracle, path), path).toMatchObject({ uid: actor.uid, gid: SHARED_GID });
      }
      expect(statOf(steps, r.oracle, 'sg/d').mode).toBe(0o2755);
      expect(statOf(steps, r.oracle, 'sg/d/e').mode).toBe(0o2700);
      expect(statOf(steps, r.oracle, 'sg/f').mode).toBe(0o644);
      expect(statOf(steps, r.oracle, 'sg/x').mode).toBe(0o2755);
    },
  },
  {
    name: 'setgid-dir-nonmember',
    title: 'a creator outside the setgid directory\'s group still gets the group, and loses the setgid bit it asks for',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(setgidDir('sg', 0o2777));
      const steps: Step[] = [
        { op: 'create', path: 'sg/f', mode: 0o755 },
        { op: 'chmod', path: 'sg/f', mode: 0o2755 }, // not in group 2100: the kernel drops S_ISGID silently
        { op: 'mkdir', path: 'sg/d', mode: 0o777 },
        { op: 'lstat', path: 'sg/f' },
        { op: 'lstat', path: 'sg/d' },
      ];
      const r = await c.run(steps, actor);
      expect(statOf(steps, r.oracle, 'sg/f')).toMatchObject({ uid: actor.uid, gid: SHARED_GID, mode: actor.uid === 0 ? 0o2755 : 0o755 });
      expect(statOf(steps, r.oracle, 'sg/d')).toMatchObject({ uid: actor.uid, gid: SHARED_GID, mode: 0o2755 });
    },
  },
  {
    name: 'own-0600',
    title: 'a user reopens its own 0600 file for reading and writing',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const steps: Step[] = [
        { op: 'create', path: 'f', mode: 0o600 },
        { op: 'write', path: 'f', data: 'secret' },
        { op: 'open', path: 'f', flags: 'r' },
        { op: 'open', path: 'f', flags: 'w' },
        { op: 'open', path: 'f', flags: 'rw' },
        { op: 'open', path: 'f', flags: 'wa' },
        { op: 'read', path: 'f' },
        { op: 'write', path: 'f', data: 'S', offset: 0 },
        { op: 'write', path: 'f', data: '!', append: true },
        { op: 'read', path: 'f' },
        { op: 'access', path: 'f', mode: 'rw' },
        { op: 'truncate', path: 'f', size: 3 },
        { op: 'read', path: 'f' },
        { op: 'mkdir', path: 'd', mode: 0o700 },
        { op: 'create', path: 'd/g', mode: 0o600 },
        { op: 'listdir', path: 'd' },
        // read-only to its owner: writing is refused (except to root)
        { op: 'chmod', path: 'f', mode: 0o400 },
        { op: 'open', path: 'f', flags: 'w' },
        { op: 'open', path: 'f', flags: 'r' },
        { op: 'lstat', path: 'f' },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.slice(0, 16).map(outcome)).toEqual(new Array(16).fill('ok'));
      expect(r.oracle[9]).toEqual({ ok: true, value: 'Secret!' });
      expect(outcome(r.oracle[17])).toBe(actor.uid === 0 ? 'ok' : 'EACCES');
      expect(statOf(steps, r.oracle, 'f')).toMatchObject({ uid: actor.uid, gid: actor.gid, size: 3 });
    },
  },
  {
    name: 'root-created',
    title: 'files root creates are root\'s, as anyone sees them; root gives them away with chown',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup([
        { op: 'create', path: 'f', mode: 0o644 },
        { op: 'mkdir', path: 'd', mode: 0o755 },
        { op: 'symlink', target: 'f', path: 'l' },
        { op: 'mkfifo', path: 'p', mode: 0o644 },
        { op: 'create', path: 'given', mode: 0o644 },
        { op: 'chown', path: 'given', uid: USER_A.uid, gid: SHARED_GID },
        { op: 'symlink', target: 'given', path: 'given-link' },
        { op: 'lchown', path: 'given-link', uid: USER_A.uid, gid: USER_A.gid },
      ]);
      const steps: Step[] = [
        ...['f', 'd', 'l', 'p', 'given', 'given-link'].map((path): Step => ({ op: 'lstat', path })),
        { op: 'chown', path: 'f', uid: actor.uid, gid: actor.gid }, // EPERM for USER_A: not its file
        { op: 'lstat', path: 'f' },
      ];
      const r = await c.run(steps, actor);
      for (const path of ['d', 'l', 'p']) expect(statOf(steps, r.oracle, path), path).toMatchObject({ uid: 0, gid: 0 });
      expect(statOf(steps, r.oracle, 'given')).toMatchObject({ uid: USER_A.uid, gid: SHARED_GID });
      expect(statOf(steps, r.oracle, 'given-link')).toMatchObject({ uid: USER_A.uid, gid: USER_A.gid });
      expect(outcome(r.oracle[6])).toBe(actor.uid === 0 ? 'ok' : 'EPERM');
    },
  },
];
