import { expect } from 'vitest';
import { ROOT, USER_A, USER_B, outcome, resultOf, runPosix, statOf, valueOf, type Actor, type ConformanceCase, type PosixCase, type Result, type StatValue, type Step } from '../../helpers/posix.js';

/**
 * What the kernel offers beyond read and write, as ext4 answers it:
 * fallocate's modes, copy_file_range, O_DIRECT, a shared writable mmap,
 * O_APPEND from concurrent processes, O_TMPFILE, renameat2's flags, flock
 * and fcntl locks, POSIX ACLs. Contents are compared on both peers (the
 * harness's tree comparison hashes every file). Where the mount is known to
 * differ, the case says which README known limit.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/** Root makes a file of `bytes` pattern bytes and gives it to the actor. */
function patternFile(path: string, bytes: number, actor: Actor, mode = 0o644): Step[] {
  return [
    { op: 'create', path, mode },
    ...(bytes > 0 ? [{ op: 'write', path, data_len: bytes } as Step] : []),
    { op: 'chown', path, uid: actor.uid, gid: actor.gid },
  ];
}

/** The digest of the last digest step of `path` on one side. */
function digestOf(steps: Step[], results: Result[], path: string): { size: number; sha256: string; map: string } {
  return valueOf(resultOf(steps, results, 'digest', path));
}

/**
 * A POSIX access ACL (the value of system.posix_acl_access, as setfacl
 * writes it): owner rw, user 2002 r, group r, mask r, others nothing.
 */
function aclValue(): string {
  const entries: [number, number, number][] = [
    [0x01, 6, 0xffffffff], // ACL_USER_OBJ rw-
    [0x02, 4, USER_B.uid], // ACL_USER 2002 r--
    [0x04, 4, 0xffffffff], // ACL_GROUP_OBJ r--
    [0x10, 4, 0xffffffff], // ACL_MASK r--
    [0x20, 0, 0xffffffff], // ACL_OTHER ---
  ];
  const b = Buffer.alloc(4 + entries.length * 8);
  b.writeUInt32LE(2, 0); // POSIX_ACL_XATTR_VERSION
  entries.forEach(([tag, perm, id], i) => {
    b.writeUInt16LE(tag, 4 + i * 8);
    b.writeUInt16LE(perm, 6 + i * 8);
    b.writeUInt32LE(id, 8 + i * 8);
  });
  return b.toString('base64');
}

/** The lines case's raw contents: the mount's (in the order the mount applied them) and every peer's must be the same bytes. */
async function compareRawWithPeers(c: PosixCase, path: string): Promise<void> {
  const read = async (dir: string) => JSON.stringify(valueOf((await runPosix(dir, [{ op: 'digest', path }]))[0]));
  const m = await read(c.sides.mount);
  for (const p of c.sides.peers) {
    const d = await read(p.dir);
    if (d !== m) c.problems.push(`${path}: mount ${m} but ${p.label} ${d}`);
  }
}

export const extrasCases: ConformanceCase[] = [
  {
    name: 'fallocate',
    title: 'fallocate: mode 0 extends the size, KEEP_SIZE allocates blocks only, PUNCH_HOLE|KEEP_SIZE and ZERO_RANGE zero a range; bad arguments as ext4 answers them',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup([...patternFile('f', 64 * KiB, actor), ...patternFile('grow', 0, actor), ...patternFile('keep', 0, actor), ...patternFile('z', 16 * KiB, actor)]);
      // Allocated blocks are compared as relations (at least the range allocated, fewer after a punch):
      // their exact count depends on how the extents fell on the disk (two peers share one here).
      const blocks = async (paths: string[]) => {
        const steps = paths.map((path): Step => ({ op: 'stat', path, blocks: true }));
        const [o, m] = await Promise.all([runPosix(c.sides.oracle, steps, actor), runPosix(c.sides.mount, steps, actor)]);
        const of = (rs: Result[]) => Object.fromEntries(paths.map((p, i) => [p, valueOf<StatValue & { blocks: number }>(rs[i])]));
        return { oracle: of(o), mount: of(m) };
      };
      const first = await c.run([
        // mode 0: the size grows, the new range reads as zeros
        { op: 'fallocate', path: 'grow', mode: 0, offset: 0, length: MiB },
        { op: 'stat', path: 'grow' },
        { op: 'fallocate', path: 'grow', mode: 0, offset: 2 * MiB, length: 4 * KiB },
        { op: 'stat', path: 'grow' },
        { op: 'digest', path: 'grow', block: 64 * KiB },
        // KEEP_SIZE: blocks, not size
        { op: 'fallocate', path: 'keep', mode: ['keep_size'], offset: 0, length: MiB },
        { op: 'stat', path: 'keep' },
        { op: 'digest', path: 'keep' },
      ], actor);
      const before = await blocks(['grow', 'keep', 'f']);
      const steps: Step[] = [
        // PUNCH_HOLE|KEEP_SIZE: two blocks of data become a hole
        { op: 'fallocate', path: 'f', mode: ['punch_hole', 'keep_size'], offset: 4 * KiB, length: 8 * KiB },
        { op: 'stat', path: 'f' },
        { op: 'digest', path: 'f' },
        // an unaligned punch zeroes the partial blocks too
        { op: 'fallocate', path: 'f', mode: ['punch_hole', 'keep_size'], offset: 20_000, length: 10_000 },
        { op: 'digest', path: 'f' },
        // ZERO_RANGE inside the file, then past its end (the size grows), then past it with KEEP_SIZE
        { op: 'fallocate', path: 'z', mode: ['zero_range'], offset: 4 * KiB, length: 4 * KiB },
        { op: 'digest', path: 'z' },
        { op: 'fallocate', path: 'z', mode: ['zero_range'], offset: 12 * KiB, length: 12 * KiB },
        { op: 'stat', path: 'z' },
        { op: 'digest', path: 'z' },
        { op: 'fallocate', path: 'z', mode: ['zero_range', 'keep_size'], offset: 24 * KiB, length: 8 * KiB },
        { op: 'stat', path: 'z' },
        // refused as ext4 refuses them
        { op: 'fallocate', path: 'f', mode: ['punch_hole'], offset: 0, length: 4 * KiB }, // PUNCH_HOLE needs KEEP_SIZE: EOPNOTSUPP (python names it ENOTSUP: the same number)
        { op: 'fallocate', path: 'f', mode: 0, offset: 0, length: 0 }, // EINVAL
        { op: 'fallocate', path: 'f', mode: 0, offset: -1, length: 4 * KiB }, // EINVAL
        { op: 'read', path: 'keep' },
      ];
      const r = await c.run(steps, actor);
      const after = await blocks(['f']);
      const relations = (side: 'oracle' | 'mount') => {
        const [b, a] = [before[side], after[side]];
        return {
          'grow: at least 1 MiB + 4 KiB allocated': b.grow!.blocks * 512 >= MiB + 4 * KiB,
          'keep: size 0, at least 1 MiB allocated': b.keep!.size === 0 && b.keep!.blocks * 512 >= MiB,
          'f: at least 64 KiB allocated before the punch': b.f!.blocks * 512 >= 64 * KiB,
          'f: fewer blocks after the punches': a.f!.blocks < b.f!.blocks,
        };
      };
      expect(relations('oracle'), `ext4's blocks: before ${JSON.stringify(before.oracle)}, after ${JSON.stringify(after.oracle)}`).toEqual({
        'grow: at least 1 MiB + 4 KiB allocated': true,
        'keep: size 0, at least 1 MiB allocated': true,
        'f: at least 64 KiB allocated before the punch': true,
        'f: fewer blocks after the punches': true,
      });
      const m = relations('mount');
      for (const [what, ok] of Object.entries(m)) {
        if (!ok) c.problems.push(`blocks: ${what}: true on the oracle but not on the mount (mount before ${JSON.stringify(Object.fromEntries(Object.entries(before.mount).map(([k, v]) => [k, { size: v.size, blocks: v.blocks }])))}, after f ${after.mount.f!.blocks})`);
      }
      expect(valueOf<StatValue>(first.oracle[3]).size).toBe(2 * MiB + 4 * KiB);
      expect(valueOf<{ map: string }>(first.oracle[4]).map).toBe('z33');
      expect(valueOf<StatValue>(first.oracle[6]).size).toBe(0);
      expect(valueOf<{ map: string }>(r.oracle[2]).map).toBe('d1 z2 d13');
      expect(valueOf<{ map: string }>(r.oracle[4]).map).toBe('d1 z2 d2 z2 d9'); // 20000..30000: the whole of blocks 5 and 6, parts of 4 and 7
      expect(valueOf<{ size: number; map: string }>(r.oracle[9])).toMatchObject({ size: 24 * KiB, map: 'd1 z1 d1 z3' });
      expect(valueOf<StatValue>(r.oracle[11]).size).toBe(24 * KiB);
      expect(r.oracle.slice(12, 15).map(outcome)).toEqual(['ENOTSUP', 'EINVAL', 'EINVAL']); // ENOTSUP is EOPNOTSUPP on Linux
    },
  },
  {
    name: 'fallocate-collapse-insert',
    title: 'fallocate COLLAPSE_RANGE removes a block-aligned range and INSERT_RANGE inserts a hole, as ext4 does',
    actors: [ROOT, USER_A],
    knownLimit: 'README known limits: fallocate collapse/insert range',
    body: async (c, actor) => {
      await c.setup(patternFile('f', 64 * KiB, actor));
      const steps: Step[] = [
        { op: 'fallocate', path: 'f', mode: ['collapse_range'], offset: 4 * KiB, length: 8 * KiB },
        { op: 'digest', path: 'f' },
        { op: 'fallocate', path: 'f', mode: ['insert_range'], offset: 0, length: 4 * KiB },
        { op: 'digest', path: 'f' },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.map(outcome)).toEqual(['ok', 'ok', 'ok', 'ok']);
      expect(valueOf(r.oracle[3])).toMatchObject({ size: 60 * KiB, map: 'z1 d14' });
    },
  },
  {
    name: 'copy-file-range',
    title: 'copy_file_range copies whole files and ranges at offsets, also past the end of the destination',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup([...patternFile('src', 300_000, actor), ...patternFile('whole', 0, actor), ...patternFile('part', 10_000, actor)]);
      const steps: Step[] = [
        { op: 'copyrange', src: 'src', dst: 'whole', length: 300_000 },
        { op: 'copyrange', src: 'src', dst: 'part', length: 5000, src_offset: 1000, dst_offset: 2000 },
        { op: 'copyrange', src: 'src', dst: 'part', length: 4096, src_offset: 0, dst_offset: 100_000 }, // a hole between
        { op: 'copyrange', src: 'src', dst: 'part', length: 1000, src_offset: 299_500, dst_offset: 0 }, // only 500 bytes are left
        { op: 'digest', path: 'src' },
        { op: 'digest', path: 'whole' },
        { op: 'digest', path: 'part' },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.slice(0, 4).map((x) => valueOf(x))).toEqual([300_000, 5000, 4096, 500]);
      expect(digestOf(steps, r.oracle, 'whole').sha256).toBe(digestOf(steps, r.oracle, 'src').sha256);
      expect(digestOf(steps, r.oracle, 'part').size).toBe(104_096);
    },
  },
  {
    name: 'o-direct',
    title: 'O_DIRECT writes and reads of aligned 4 KiB buffers',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup([...patternFile('f', 0, actor), ...patternFile('g', 20_000, actor)]);
      const steps: Step[] = [
        { op: 'directio', path: 'f', data_len: 4096, offset: 0 },
        { op: 'directio', path: 'f', data_len: 8192, offset: 8192 },
        { op: 'directio', path: 'g', data_len: 4096, offset: 4096 }, // over existing data
        { op: 'stat', path: 'f' },
        { op: 'digest', path: 'f' },
        { op: 'digest', path: 'g' },
        { op: 'read', path: 'f' }, // through the page cache, after the direct writes
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.slice(0, 3).map((x) => valueOf(x))).toEqual([
        { written: 4096, read: 4096, equal: true },
        { written: 8192, read: 8192, equal: true },
        { written: 4096, read: 4096, equal: true },
      ]);
      expect(digestOf(steps, r.oracle, 'f').map).toBe('d1 z1 d2');
    },
  },
  {
    name: 'mmap',
    title: 'a shared writable mmap: bytes written and msync()ed read back, and reach both peers',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(patternFile('f', 3 * 4096 + 100, actor));
      const steps: Step[] = [
        { op: 'mmapwrite', path: 'f', offset: 100, data: 'MAPPED' },
        { op: 'mmapwrite', path: 'f', offset: 5000, data: 'second page' },
        { op: 'mmapwrite', path: 'f', offset: 3 * 4096 + 90, data: 'the tail' }, // in the last, partial page
        { op: 'read', path: 'f' },
        { op: 'digest', path: 'f' },
        { op: 'stat', path: 'f' },
      ];
      const r = await c.run(steps, actor);
      const text = valueOf<string>(r.oracle[3]);
      expect([text.slice(100, 106), text.slice(5000, 5011), text.slice(3 * 4096 + 90, 3 * 4096 + 98)]).toEqual(['MAPPED', 'second page', 'the tail']);
    },
  },
  {
    name: 'append-concurrent',
    title: 'O_APPEND from 4 processes at once, 200 lines each: every line there exactly once, on the mount and both peers',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(patternFile('log', 0, actor));
      const r = await c.run([{ op: 'appendprocs', path: 'log', procs: 4, lines: 200 }, { op: 'lines', path: 'log' }, { op: 'stat', path: 'log' }], actor);
      expect(valueOf(r.oracle[0])).toEqual([0, 0, 0, 0]);
      expect(valueOf(r.oracle[1])).toMatchObject({ count: 800, distinct: 800 });
      // the peers hold the mount's bytes in the mount's order
      await compareRawWithPeers(c, 'log');
      // then sorted on both sides, so the trees compare (the order of the appends is a race)
      await c.run([{ op: 'sortlines', path: 'log' }], actor);
    },
  },
  {
    name: 'tmpfile',
    title: 'O_TMPFILE makes an unnamed file, which linkat gives a name',
    actors: [ROOT, USER_A],
    knownLimit: 'README known limits: O_TMPFILE',
    body: async (c, actor) => {
      const steps: Step[] = [
        { op: 'tmpfile', path: '.', mode: 0o600, data: 'never named' },
        { op: 'tmpfile', path: '.', mode: 0o640, data: 'named later', link: 'named' },
        { op: 'read', path: 'named' },
        { op: 'lstat', path: 'named' },
        { op: 'listdir', path: '.' },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.map(outcome)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
      expect(valueOf(r.oracle[4])).toEqual(['named']);
      expect(statOf(steps, r.oracle, 'named')).toMatchObject({ mode: 0o640, uid: actor.uid, nlink: 1 });
    },
  },
  {
    name: 'renameat2-noreplace',
    title: 'renameat2: RENAME_NOREPLACE onto an absent name renames (a file, and a directory into another directory)',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup([...patternFile('a', 10, actor), { op: 'mkdir', path: 'd', mode: 0o755 }, { op: 'chown', path: 'd', uid: actor.uid, gid: actor.gid }, { op: 'mkdir', path: 'e', mode: 0o777 }, { op: 'chmod', path: 'e', mode: 0o777 }]);
      const steps: Step[] = [
        { op: 'rename2', src: 'a', dst: 'a2', flags: 'noreplace' },
        { op: 'rename2', src: 'd', dst: 'e/d2', flags: 'noreplace' },
        { op: 'digest', path: 'a2' },
        { op: 'lstat', path: 'e/d2' },
        { op: 'lstat', path: 'a' },
        { op: 'listdir', path: '.' },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.map(outcome)).toEqual(['ok', 'ok', 'ok', 'ok', 'ENOENT', 'ok']);
    },
  },
  {
    name: 'renameat2-exchange',
    title: 'renameat2: RENAME_EXCHANGE swaps two names (files, a file with a directory, directories with what is below them, across directories, two links of one file); ENOENT without a second name, EINVAL into its own subdirectory',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const dir = (path: string): Step[] => [{ op: 'mkdir', path, mode: 0o755 }, { op: 'chown', path, uid: actor.uid, gid: actor.gid }];
      await c.setup([
        ...patternFile('b', 20, actor),
        ...patternFile('c', 30, actor),
        ...dir('d'),
        ...dir('p'),
        ...patternFile('p/inner', 40, actor),
        ...dir('q'),
        ...dir('q/sub'),
        ...patternFile('q/sub/deep', 50, actor),
        ...patternFile('q/x', 60, actor),
        ...patternFile('h', 70, actor),
        { op: 'link', src: 'h', dst: 'h2' },
      ]);
      const steps: Step[] = [
        { op: 'lstat', path: 'b' }, // attributes the kernel then holds for b and c: the swap must replace them
        { op: 'lstat', path: 'c' },
        { op: 'rename2', src: 'b', dst: 'c', flags: 'exchange' },
        { op: 'digest', path: 'b' },
        { op: 'digest', path: 'c' },
        { op: 'rename2', src: 'c', dst: 'd', flags: 'exchange' }, // a file and a directory
        { op: 'lstat', path: 'c' },
        { op: 'lstat', path: 'd' },
        { op: 'rename2', src: 'p', dst: 'q', flags: 'exchange' }, // two directories: what is below moves with them
        { op: 'digest', path: 'q/inner' },
        { op: 'digest', path: 'p/sub/deep' },
        { op: 'digest', path: 'p/x' },
        { op: 'lstat', path: 'p/inner' }, // gone with the directory that held it
        { op: 'rename2', src: 'b', dst: 'p/sub/deep', flags: 'exchange' }, // across directories
        { op: 'digest', path: 'b' },
        { op: 'digest', path: 'p/sub/deep' },
        { op: 'rename2', src: 'h', dst: 'h2', flags: 'exchange' }, // two names of one file: nothing changes
        { op: 'lstat', path: 'h' },
        { op: 'rename2', src: 'b', dst: 'absent', flags: 'exchange' }, // nothing to swap with
        { op: 'rename2', src: 'p', dst: 'p/sub', flags: 'exchange' }, // into its own subdirectory
        { op: 'listdir', path: '.' },
        { op: 'listdir', path: 'p' },
        { op: 'listdir', path: 'q' },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.map(outcome)).toEqual([...Array(12).fill('ok'), 'ENOENT', ...Array(5).fill('ok'), 'ENOENT', 'EINVAL', 'ok', 'ok', 'ok']);
      const size = (i: number) => valueOf<{ size: number }>(r.oracle[i]).size;
      expect([3, 4].map(size)).toEqual([30, 20]);
      expect(statOf(steps, r.oracle, 'c').type).toBe('dir');
      expect([9, 10, 11, 14, 15].map(size)).toEqual([40, 50, 60, 50, 30]);
      expect(valueOf(r.oracle[20])).toEqual(expect.arrayContaining(['b', 'c', 'd', 'h', 'h2', 'p', 'q']));
    },
  },
  {
    name: 'renameat2-noreplace-existing',
    title: 'renameat2 RENAME_NOREPLACE onto an existing name gives EEXIST and changes nothing',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup([...patternFile('a', 10, actor), ...patternFile('b', 20, actor), { op: 'mkdir', path: 'd', mode: 0o755 }, { op: 'chown', path: 'd', uid: actor.uid, gid: actor.gid }]);
      const steps: Step[] = [
        { op: 'rename2', src: 'a', dst: 'b', flags: 'noreplace' },
        { op: 'rename2', src: 'a', dst: 'd', flags: 'noreplace' },
        { op: 'rename2', src: 'd', dst: 'a', flags: 'noreplace' },
        { op: 'rename2', src: 'a', dst: 'a', flags: 'noreplace' },
        { op: 'digest', path: 'a' },
        { op: 'digest', path: 'b' },
        { op: 'listdir', path: '.' },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.slice(0, 4).map(outcome)).toEqual(['EEXIST', 'EEXIST', 'EEXIST', 'EEXIST']);
    },
  },
  {
    name: 'locks',
    title: 'flock and fcntl locks: another process\'s non-blocking lock conflicts (EAGAIN) while one is held, and succeeds after it is released',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(patternFile('f', 100, actor));
      const steps: Step[] = [
        { op: 'lock', path: 'f', kind: 'flock' },
        { op: 'lock', path: 'f', kind: 'fcntl' },
      ];
      const r = await c.run(steps, actor);
      for (const x of r.oracle) expect(valueOf(x)).toEqual({ while_held: 'EAGAIN', after_release: 'ok' });
    },
  },
  {
    name: 'posix-acl',
    title: 'POSIX ACLs: system.posix_acl_access is stored, keeps the mode in step and is enforced (a named user\'s read, through both names of a hard-linked file, then a chmod that masks it); a default ACL is inherited by files, directories and nodes and overrides the umask; without one the umask applies',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup([...patternFile('f', 100, actor, 0o640), { op: 'mkdir', path: 'd', mode: 0o755 }, { op: 'chown', path: 'd', uid: actor.uid, gid: actor.gid }]);
      await c.setup([{ op: 'link', src: 'f', dst: 'f-link' }], actor);
      // Before any ACL: the named user is "other" to f, through either name (the kernel now holds "no ACL" for both)
      const before = await c.run([{ op: 'read', path: 'f' }, { op: 'read', path: 'f-link' }], USER_B);
      expect(before.oracle.map(outcome)).toEqual(['EACCES', 'EACCES']);
      const acl = aclValue();
      const steps: Step[] = [
        { op: 'setxattr', path: 'f', name: 'system.posix_acl_access', value: acl },
        { op: 'getxattr', path: 'f', name: 'system.posix_acl_access' },
        { op: 'lstat', path: 'f' },
        { op: 'setxattr', path: 'd', name: 'system.posix_acl_default', value: acl },
        { op: 'umask', mask: 0o077 }, // ignored under a default ACL, applied elsewhere
        { op: 'create', path: 'd/inherits', mode: 0o666 },
        { op: 'getxattr', path: 'd/inherits', name: 'system.posix_acl_access' },
        { op: 'lstat', path: 'd/inherits' },
        { op: 'mkdir', path: 'd/sub', mode: 0o777 }, // a directory inherits the default ACL as its own default too
        { op: 'getxattr', path: 'd/sub', name: 'system.posix_acl_default' },
        { op: 'lstat', path: 'd/sub' },
        { op: 'mkfifo', path: 'd/fifo', mode: 0o666 },
        { op: 'lstat', path: 'd/fifo' },
        { op: 'create', path: 'plain', mode: 0o666 },
        { op: 'lstat', path: 'plain' },
        { op: 'getxattr', path: 'plain', name: 'system.posix_acl_access' },
        { op: 'umask', mask: 0o022 },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.map(outcome)).toEqual([...new Array(15).fill('ok'), 'ENODATA', 'ok']);
      expect(valueOf(r.oracle[1])).toBe(acl);
      expect([2, 7, 10, 12, 14].map((i) => valueOf<StatValue>(r.oracle[i]).mode & 0o7777)).toEqual([0o640, 0o640, 0o640, 0o640, 0o600]);
      // the named user (2002) may read; as group "other" it could not
      const reader = await c.run([{ op: 'read', path: 'f-link' }, { op: 'read', path: 'f' }, { op: 'read', path: 'd/inherits' }], USER_B);
      expect(reader.oracle.map(outcome)).toEqual(['ok', 'ok', 'ok']);
      // a chmod masks the named user out (the ACL's mask follows the group bits); removing the default ACL ends inheritance
      const after = await c.run(
        [
          { op: 'chmod', path: 'f', mode: 0o600 },
          { op: 'getxattr', path: 'f', name: 'system.posix_acl_access' },
          { op: 'removexattr', path: 'd', name: 'system.posix_acl_default' },
          { op: 'create', path: 'd/after', mode: 0o666 },
          { op: 'lstat', path: 'd/after' },
          { op: 'getxattr', path: 'd/after', name: 'system.posix_acl_access' },
        ],
        actor,
      );
      expect(after.oracle.map(outcome)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ENODATA']);
      expect(valueOf(after.oracle[1])).not.toBe(acl);
      const denied = await c.run([{ op: 'read', path: 'f-link' }, { op: 'read', path: 'f' }, { op: 'read', path: 'd/inherits' }], USER_B);
      expect(denied.oracle.map(outcome)).toEqual(['EACCES', 'EACCES', 'ok']);
    },
  },
];
