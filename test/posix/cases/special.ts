import { expect } from 'vitest';
import { ROOT, SHARED_GID, USER_A, USER_A_SHARED, USER_B, outcome, statOf, valueOf, type Actor, type ConformanceCase, type Step } from '../../helpers/posix.js';

/**
 * Special files as ext4 keeps them: FIFOs (with their modes), sockets, and
 * character and block devices (root only: anyone else gets EPERM), with their
 * owners and device numbers on the mount and on both peers (the harness
 * compares the trees, rdev included); rename, link, unlink, chmod and chown of
 * each; and a FIFO on the mount passes data (it is the kernel's pipe: the data
 * never reaches the mount process).
 */

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFSOCK = 0o140000;
const S_IFIFO = 0o010000;

/**
 * rename, link (then unlink of the new name), chmod and chown of one special
 * file; after the link and the unlink the first name shows the new link count.
 */
function manipulate(path: string, actor: Actor): Step[] {
  const chown: Step =
    actor.uid === 0 ? { op: 'lchown', path: `${path}-moved`, uid: USER_A.uid, gid: SHARED_GID } : { op: 'lchown', path: `${path}-moved`, uid: -1, gid: SHARED_GID }; // a user: to a group it is in
  return [
    { op: 'rename', src: path, dst: `${path}-moved` },
    { op: 'lstat', path },
    { op: 'lstat', path: `${path}-moved` },
    { op: 'link', src: `${path}-moved`, dst: `${path}-link` },
    { op: 'lstat', path: `${path}-link` },
    { op: 'lstat', path: `${path}-moved` }, // nlink 2 through the other name
    { op: 'unlink', path: `${path}-link` },
    { op: 'lstat', path: `${path}-link` },
    { op: 'lstat', path: `${path}-moved` }, // and back to 1
    { op: 'chmod', path: `${path}-moved`, mode: 0o640 },
    chown,
    { op: 'lstat', path: `${path}-moved` },
    // a second one, made and removed
    { op: 'rename', src: `${path}-moved`, dst: `${path}-gone` },
    { op: 'unlink', path: `${path}-gone` },
    { op: 'lstat', path: `${path}-gone` },
  ];
}

/** The outcomes of manipulate() on ext4, for the case's own check. */
const MANIPULATED = ['ok', 'ENOENT', 'ok', 'ok', 'ok', 'ok', 'ok', 'ENOENT', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ENOENT'];

export const specialCases: ConformanceCase[] = [
  {
    name: 'fifos',
    title: 'FIFOs keep their modes (also setgid and sticky, and under umask 0), owners, and survive rename, link, unlink, chmod and chown',
    actors: [ROOT, USER_A_SHARED],
    body: async (c, actor) => {
      const steps: Step[] = [
        { op: 'mkfifo', path: 'p600', mode: 0o600 },
        { op: 'mkfifo', path: 'p644', mode: 0o644 },
        { op: 'mkfifo', path: 'p666', mode: 0o666 }, // umask 022: 0644
        { op: 'mkfifo', path: 'p1777', mode: 0o1777 },
        { op: 'mkfifo', path: 'p2770', mode: 0o2770 },
        { op: 'mknod', path: 'pnod', mode: S_IFIFO | 0o640 },
        { op: 'umask', mask: 0 },
        { op: 'mkfifo', path: 'p666-nomask', mode: 0o666 },
        { op: 'umask', mask: 0o022 },
        { op: 'mkfifo', path: 'p600', mode: 0o600 }, // EEXIST
        ...['p600', 'p644', 'p666', 'p1777', 'p2770', 'pnod', 'p666-nomask'].map((path): Step => ({ op: 'lstat', path })),
        { op: 'mkfifo', path: 'work', mode: 0o644 },
        ...manipulate('work', actor),
        { op: 'chmod', path: 'p644', mode: 0o4755 }, // setuid on a FIFO: kept as asked
        { op: 'lstat', path: 'p644' },
        { op: 'listdir', path: '.' },
      ];
      const r = await c.run(steps, actor);
      expect(statOf(steps, r.oracle, 'p666')).toMatchObject({ type: 'fifo', mode: 0o644, uid: actor.uid, gid: actor.gid });
      expect(statOf(steps, r.oracle, 'p666-nomask').mode).toBe(0o666);
      expect(outcome(r.oracle[9])).toBe('EEXIST');
      const start = steps.findIndex((s) => s.op === 'rename');
      expect(r.oracle.slice(start, start + MANIPULATED.length).map(outcome)).toEqual(MANIPULATED);
      expect(statOf(steps, r.oracle, 'work-moved')).toMatchObject({ type: 'fifo', mode: 0o640, uid: actor.uid === 0 ? USER_A.uid : actor.uid, gid: SHARED_GID });
    },
  },
  {
    name: 'sockets',
    title: 'sockets (bound, and made with mknod) keep their modes and owners, and survive rename, link, unlink, chmod and chown',
    actors: [ROOT, USER_A_SHARED],
    body: async (c, actor) => {
      const steps: Step[] = [
        { op: 'bindsocket', path: 'bound' },
        { op: 'mknod', path: 'made', mode: S_IFSOCK | 0o600 },
        { op: 'bindsocket', path: 'bound' }, // EADDRINUSE: the name is taken
        { op: 'lstat', path: 'bound' },
        { op: 'lstat', path: 'made' },
        { op: 'bindsocket', path: 'work' },
        ...manipulate('work', actor),
        { op: 'mknod', path: 'work2', mode: S_IFSOCK | 0o755 },
        ...manipulate('work2', actor),
        { op: 'open', path: 'made', flags: 'r' }, // ENXIO: a socket is not opened
        { op: 'listdir', path: '.' },
      ];
      const r = await c.run(steps, actor);
      expect(statOf(steps, r.oracle, 'bound')).toMatchObject({ type: 'socket', uid: actor.uid, gid: actor.gid });
      expect(statOf(steps, r.oracle, 'made')).toMatchObject({ type: 'socket', mode: 0o600 });
      expect(outcome(r.oracle[2])).toBe('EADDRINUSE');
      expect(outcome(r.oracle[r.oracle.length - 2])).toBe('ENXIO');
    },
  },
  {
    name: 'devices',
    title: 'char device 1,3 and block device 7,0 (and large numbers) keep their numbers, modes and owners, and survive rename, link, unlink, chmod and chown; anyone but root gets EPERM (but for a 0,0 whiteout)',
    actors: [ROOT, USER_A_SHARED],
    body: async (c, actor) => {
      const steps: Step[] = [
        { op: 'mknod', path: 'null', mode: S_IFCHR | 0o666, major: 1, minor: 3 },
        { op: 'mknod', path: 'loop0', mode: S_IFBLK | 0o660, major: 7, minor: 0 },
        { op: 'mknod', path: 'big', mode: S_IFCHR | 0o600, major: 4095, minor: 1048575 }, // the largest numbers dev_t has
        { op: 'mknod', path: 'nvme', mode: S_IFBLK | 0o640, major: 259, minor: 65539 },
        { op: 'mknod', path: 'zero', mode: S_IFCHR | 0o644, major: 0, minor: 0 }, // 0,0 is a whiteout: anyone may make one
        ...['null', 'loop0', 'big', 'nvme', 'zero'].map((path): Step => ({ op: 'lstat', path })),
        { op: 'mknod', path: 'work', mode: S_IFCHR | 0o644, major: 1, minor: 5 },
        ...manipulate('work', actor),
        { op: 'mknod', path: 'bwork', mode: S_IFBLK | 0o644, major: 7, minor: 1 },
        ...manipulate('bwork', actor),
        { op: 'listdir', path: '.' },
      ];
      const r = await c.run(steps, actor);
      if (actor.uid === 0) {
        expect(statOf(steps, r.oracle, 'null')).toMatchObject({ type: 'chr', mode: 0o644, rdev_major: 1, rdev_minor: 3, uid: 0, gid: 0 });
        expect(statOf(steps, r.oracle, 'loop0')).toMatchObject({ type: 'blk', mode: 0o640, rdev_major: 7, rdev_minor: 0 });
        expect(statOf(steps, r.oracle, 'big')).toMatchObject({ type: 'chr', rdev_major: 4095, rdev_minor: 1048575 });
        expect(statOf(steps, r.oracle, 'nvme')).toMatchObject({ type: 'blk', rdev_major: 259, rdev_minor: 65539 });
        const start = steps.findIndex((s) => s.op === 'rename');
        expect(r.oracle.slice(start, start + MANIPULATED.length).map(outcome)).toEqual(MANIPULATED);
      } else {
        expect(r.oracle.slice(0, 5).map(outcome)).toEqual(['EPERM', 'EPERM', 'EPERM', 'EPERM', 'ok']);
      }
    },
  },
  {
    name: 'devices-given',
    title: 'devices root made and gave away: owners, modes and numbers as anyone sees them; the new owner may chmod but not chown them',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup([
        { op: 'mknod', path: 'tty', mode: S_IFCHR | 0o620, major: 5, minor: 0 },
        { op: 'chown', path: 'tty', uid: USER_A.uid, gid: SHARED_GID },
        { op: 'mknod', path: 'disk', mode: S_IFBLK | 0o600, major: 8, minor: 16 },
        { op: 'chown', path: 'disk', uid: USER_B.uid, gid: USER_B.gid },
        { op: 'mkfifo', path: 'fifo', mode: 0o600 },
        { op: 'chown', path: 'fifo', uid: USER_A.uid, gid: USER_A.gid },
      ]);
      const steps: Step[] = [
        ...['tty', 'disk', 'fifo'].map((path): Step => ({ op: 'lstat', path })),
        { op: 'chmod', path: 'tty', mode: 0o600 }, // its owner (or root): ok
        { op: 'chmod', path: 'disk', mode: 0o666 }, // USER_A: EPERM
        { op: 'chown', path: 'tty', uid: USER_B.uid, gid: -1 }, // USER_A: EPERM
        { op: 'chown', path: 'fifo', uid: -1, gid: USER_A.gid }, // its owner, to its own group: ok
        { op: 'rename', src: 'disk', dst: 'disk2' }, // the directory is 0777: ok
        ...['tty', 'disk2', 'fifo'].map((path): Step => ({ op: 'lstat', path })),
      ];
      const r = await c.run(steps, actor);
      expect(statOf(steps, r.oracle, 'disk2')).toMatchObject({ type: 'blk', rdev_major: 8, rdev_minor: 16, uid: USER_B.uid });
      expect(r.oracle.slice(3, 8).map(outcome)).toEqual(actor.uid === 0 ? ['ok', 'ok', 'ok', 'ok', 'ok'] : ['ok', 'EPERM', 'EPERM', 'ok', 'ok']);
    },
  },
  {
    name: 'fifo-data',
    title: 'a FIFO passes data: one process O_RDWR, and a writer process to a reader process',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const steps: Step[] = [
        { op: 'mkfifo', path: 'pipe', mode: 0o600 },
        { op: 'fifo', path: 'pipe', how: 'rdwr', data: 'one process, both ends' },
        { op: 'fifo', path: 'pipe', how: 'pair', data: 'from a writer process to a reader process' },
        { op: 'fifo', path: 'pipe', how: 'pair', data: 'x'.repeat(60_000) }, // nearly a whole pipe buffer
        { op: 'rename', src: 'pipe', dst: 'pipe2' },
        { op: 'fifo', path: 'pipe2', how: 'pair', data: 'after a rename' },
        { op: 'lstat', path: 'pipe2' }, // size stays 0: nothing is stored
      ];
      const r = await c.run(steps, actor);
      expect(valueOf(r.oracle[1])).toBe('one process, both ends');
      expect(valueOf(r.oracle[2])).toBe('from a writer process to a reader process');
      expect(valueOf(r.oracle[5])).toBe('after a rename');
      expect(statOf(steps, r.oracle, 'pipe2')).toMatchObject({ type: 'fifo', size: 0, uid: actor.uid });
    },
  },
];
