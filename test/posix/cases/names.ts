import { expect } from 'vitest';
import { ROOT, USER_A, outcome, valueOf, type ConformanceCase, type Step } from '../../helpers/posix.js';

/**
 * Length limits of names and paths as ext4 answers them: a component of
 * NAME_MAX = 255 bytes works everywhere, 256 bytes is ENAMETOOLONG (also in
 * multibyte UTF-8, where the limit is bytes, not characters); a relative path
 * of 4,000 bytes below the case directory works, and so does one of
 * PATH_MAX - 1 = 4,095 bytes below the mount point; one longer than that below
 * the mount point is a known limit. Names that are not UTF-8 are bytes like
 * any other (as names, symlink targets and xattr names).
 *
 * The driver runs in the case directory, so every path here is relative to it.
 */

const S_IFREG = 0o100000;

/** A name of exactly `bytes` bytes: `unit` repeated, filled up with ASCII "x". */
function nameOf(bytes: number, unit = 'n', prefix = ''): string {
  let s = prefix;
  while (Buffer.byteLength(s + unit) <= bytes) s += unit;
  s += 'x'.repeat(bytes - Buffer.byteLength(s));
  if (Buffer.byteLength(s) !== bytes) throw new Error(`nameOf(${bytes}) made ${Buffer.byteLength(s)} bytes`);
  return s;
}

const b64 = (b: Buffer) => b.toString('base64');

/** Linux's PATH_MAX: the longest path a system call takes, with its NUL. */
const PATH_MAX = 4096;

/** A chain of `levels` directories of `compBytes`-byte names, then a file name filling the path to `total` bytes. */
export function deepPath(total: number, levels: number, compBytes = 250): { dirs: string[]; file: string; other: string } {
  const comps = Array.from({ length: levels }, (_, i) => nameOf(compBytes, 'd', `${i}-`));
  const dirs = comps.map((_, i) => comps.slice(0, i + 1).join('/'));
  const dir = dirs[dirs.length - 1]!;
  const fileBytes = total - Buffer.byteLength(dir) - 1;
  if (fileBytes < 2 || fileBytes > 255) throw new Error(`deepPath(${total}, ${levels}): a file name of ${fileBytes} bytes`);
  const file = `${dir}/${nameOf(fileBytes, 'f')}`;
  const other = `${dir}/${nameOf(fileBytes, 'g')}`;
  if (Buffer.byteLength(file) !== total) throw new Error('deepPath: wrong length');
  return { dirs, file, other };
}

export const namesCases: ConformanceCase[] = [
  {
    name: 'name-255',
    title: 'a 255-byte name works for create, mkdir, rename, symlink, link, stat, listdir and unlink',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const [a, b, d, s, l, x] = ['a', 'b', 'd', 's', 'l', 'x'].map((p) => nameOf(255, p));
      const steps: Step[] = [
        { op: 'create', path: a!, mode: 0o644 },
        { op: 'write', path: a!, data: 'long name' },
        { op: 'lstat', path: a! },
        { op: 'mkdir', path: d!, mode: 0o755 },
        { op: 'create', path: `${d}/${a}`, mode: 0o600 },
        { op: 'mkdir', path: `${d}/${d}`, mode: 0o700 },
        { op: 'rename', src: a!, dst: b! },
        { op: 'rename', src: `${d}/${a}`, dst: `${d}/${d}/${b}` },
        { op: 'symlink', target: b!, path: s! }, // a 255-byte name pointing at a 255-byte name
        { op: 'readlink', path: s! },
        { op: 'stat', path: s! },
        { op: 'link', src: b!, dst: l! },
        { op: 'lstat', path: l! },
        { op: 'mknod', path: x!, mode: S_IFREG | 0o644 },
        { op: 'mkfifo', path: `${d}/${x}`, mode: 0o644 },
        { op: 'setxattr', path: b!, name: 'user.long', value: b64(Buffer.from(a!)) },
        { op: 'listdir', path: '.' },
        { op: 'listdir', path: d! },
        { op: 'unlink', path: l! },
        { op: 'unlink', path: x! },
        { op: 'rmdir', path: `${d}/${d}/${b}` }, // ENOTDIR: a file
        { op: 'lstat', path: `${d}/${d}/${b}` },
        { op: 'read', path: b! },
      ];
      const r = await c.run(steps, actor);
      const failed = steps.map((s, i) => [s, r.oracle[i]] as const).filter(([s, res], i) => i !== 20 && outcome(res) !== 'ok').map(([s, res]) => `${s.op}: ${outcome(res)}`);
      expect(failed, 'every step works on ext4').toEqual([]);
      expect(outcome(r.oracle[20])).toBe('ENOTDIR');
    },
  },
  {
    name: 'name-256',
    title: 'a 256-byte name gives ENAMETOOLONG for lookup, create, mkdir, mknod, symlink, link and rename target',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const long = nameOf(256, 'z');
      await c.setup([
        { op: 'create', path: 'f', mode: 0o644 },
        { op: 'mkdir', path: 'd', mode: 0o777 },
      ]);
      const steps: Step[] = [
        { op: 'lstat', path: long },
        { op: 'stat', path: `d/${long}` },
        { op: 'lstat', path: `${long}/f` }, // a long directory component in the middle
        { op: 'access', path: long, mode: 'f' },
        { op: 'create', path: long, mode: 0o644 },
        { op: 'create', path: `d/${long}`, mode: 0o644 },
        { op: 'mkdir', path: long, mode: 0o755 },
        { op: 'mkfifo', path: long, mode: 0o644 },
        { op: 'mknod', path: long, mode: S_IFREG | 0o644 },
        { op: 'symlink', target: 'f', path: long },
        { op: 'symlink', target: long, path: 'to-long' }, // a long target is fine: it is not looked up
        { op: 'readlink', path: 'to-long' },
        { op: 'stat', path: 'to-long' }, // following it: ENAMETOOLONG
        { op: 'link', src: 'f', dst: long },
        { op: 'rename', src: 'f', dst: long },
        { op: 'rename', src: 'f', dst: `d/${long}` },
        { op: 'rename', src: long, dst: 'g' },
        { op: 'unlink', path: long },
        { op: 'rmdir', path: long },
        { op: 'setxattr', path: long, name: 'user.x', value: b64(Buffer.from('x')) },
        { op: 'listdir', path: '.' },
      ];
      const r = await c.run(steps, actor);
      const byStep = steps.map((s, i) => `${i} ${s.op}: ${outcome(r.oracle[i])}`);
      const expected = steps.map((s, i) => `${i} ${s.op}: ${[10, 11, 20].includes(i) ? 'ok' : 'ENAMETOOLONG'}`);
      expect(byStep).toEqual(expected);
      expect(valueOf(r.oracle[20])).toEqual(['d', 'f', 'to-long']);
    },
  },
  {
    name: 'multibyte-255',
    title: 'multibyte UTF-8 names of exactly 255 bytes work; 256 bytes of them give ENAMETOOLONG',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const ok = [nameOf(255, 'é'), nameOf(255, '€'), nameOf(255, '😀'), nameOf(255, 'ü€😀 ')];
      const bad = [nameOf(256, 'é'), nameOf(256, '€'), nameOf(256, '😀')];
      // 85 × '€' is 255 bytes exactly; 64 × '😀' is 256
      expect([ok[1], bad[2]].map((s) => [...s!].length)).toEqual([85, 64]);
      const steps: Step[] = [
        ...ok.flatMap((n, i): Step[] => [
          { op: 'create', path: n, mode: 0o644 },
          { op: 'write', path: n, data: `name ${i}` },
          { op: 'lstat', path: n },
        ]),
        { op: 'mkdir', path: `d${ok[0]}`.slice(0, -1), mode: 0o755 }, // 'd' + 254 bytes of é…x: 255
        { op: 'rename', src: ok[1]!, dst: `${`d${ok[0]}`.slice(0, -1)}/${ok[2]}` },
        { op: 'symlink', target: ok[3]!, path: nameOf(255, '€', 's') },
        { op: 'readlink', path: nameOf(255, '€', 's') },
        { op: 'link', src: ok[0]!, dst: nameOf(255, 'é', 'h') },
        { op: 'lstat', path: nameOf(255, 'é', 'h') },
        { op: 'unlink', path: nameOf(255, 'é', 'h') }, // (the other name's attributes: the hard-link known limit, tested elsewhere)
        ...bad.flatMap((n): Step[] => [
          { op: 'create', path: n, mode: 0o644 },
          { op: 'mkdir', path: n, mode: 0o755 },
          { op: 'lstat', path: n },
          { op: 'rename', src: ok[3]!, dst: n },
        ]),
        { op: 'listdir', path: '.' },
      ];
      const r = await c.run(steps, actor);
      const firstBad = ok.length * 3 + 7;
      expect(r.oracle.slice(0, firstBad).map(outcome)).toEqual(new Array(firstBad).fill('ok'));
      expect(r.oracle.slice(firstBad, -1).map(outcome)).toEqual(new Array(bad.length * 4).fill('ENAMETOOLONG'));
    },
  },
  {
    name: 'deep-4000',
    title: 'a relative path of 4,000 bytes below the case directory works for mkdir, create, write, read, stat, rename and unlink',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const { dirs, file, other } = deepPath(4000, 15);
      const steps: Step[] = [
        ...dirs.map((path): Step => ({ op: 'mkdir', path, mode: 0o755 })),
        { op: 'create', path: file, mode: 0o644 },
        { op: 'write', path: file, data: 'deep down' },
        { op: 'read', path: file },
        { op: 'lstat', path: file },
        { op: 'rename', src: file, dst: other },
        { op: 'read', path: other },
        { op: 'unlink', path: other },
        { op: 'lstat', path: other },
        // one left for the trees (the peers must hold it too)
        { op: 'create', path: file, mode: 0o600 },
        { op: 'write', path: file, data: 'kept' },
        { op: 'listdir', path: dirs[dirs.length - 1]! },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.map(outcome)).toEqual(steps.map((_, i) => (i === dirs.length + 7 ? 'ENOENT' : 'ok')));
      expect(valueOf(r.oracle[dirs.length + 2])).toBe('deep down');
    },
  },
  {
    name: 'deep-4095',
    title: 'a path of PATH_MAX - 1 = 4,095 bytes below the mount point works for mkdir, create, write, read, stat, rename and unlink; 4,096 bytes is ENAMETOOLONG',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      // Relative to the case directory, so that with the case directory's name it is 4,095 bytes below the mount point.
      const { dirs, file, other } = deepPath(PATH_MAX - 1 - Buffer.byteLength(c.name) - 1, 16);
      const tooLong = file + 'x'.repeat(PATH_MAX - Buffer.byteLength(file)); // 4,096 bytes: too long for any system call
      const steps: Step[] = [
        ...dirs.map((path): Step => ({ op: 'mkdir', path, mode: 0o755 })),
        { op: 'create', path: file, mode: 0o644 },
        { op: 'write', path: file, data: 'at the limit' },
        { op: 'read', path: file },
        { op: 'lstat', path: file },
        { op: 'rename', src: file, dst: other },
        { op: 'read', path: other },
        { op: 'lstat', path: tooLong },
        // one left for the trees (the peers must hold it too)
        { op: 'chmod', path: other, mode: 0o600 },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.map(outcome)).toEqual(steps.map((s) => (s === steps[dirs.length + 6] ? 'ENAMETOOLONG' : 'ok')));
      expect(valueOf(r.oracle[dirs.length + 5])).toBe('at the limit');
    },
  },
  {
    name: 'deeper-than-path-max',
    title: 'a relative path of 4,095 bytes below a directory of the mount (so more than PATH_MAX below the mount point) works for create, write, read, stat and unlink',
    actors: [ROOT],
    knownLimit: 'README known limits: paths longer than PATH_MAX below the mount point give ENAMETOOLONG',
    body: async (c, actor) => {
      const { dirs, file } = deepPath(PATH_MAX - 1, 16);
      const steps: Step[] = [
        ...dirs.map((path): Step => ({ op: 'mkdir', path, mode: 0o755 })),
        { op: 'create', path: file, mode: 0o644 },
        { op: 'write', path: file, data: 'past the limit' },
        { op: 'read', path: file },
        { op: 'lstat', path: file },
        { op: 'unlink', path: file }, // gone again: a tree walk could not reach it
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.map(outcome)).toEqual(steps.map(() => 'ok'));
    },
  },
  {
    name: 'non-utf8',
    title: 'names that are not UTF-8 (caf\\xe9, \\xff, mixed with valid UTF-8, U+FFFD itself) work as any other name, also as symlink targets and xattr names',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const raw = (...bytes: number[]) => Buffer.from(bytes);
      const cafe = raw(0x63, 0x61, 0x66, 0xe9); // caf\xe9 (Latin-1)
      const cafeUtf8 = Buffer.from('café'); // the same word in UTF-8: another name
      const replacement = Buffer.from('caf\uFFFD'); // U+FFFD spelt out in UTF-8: yet another
      const dir = raw(0x64, 0xff); // d\xff
      const mixed = Buffer.concat([Buffer.from('é-'), raw(0xe9, 0xc3), Buffer.from('-€'), raw(0xed, 0xa0, 0x80)]); // valid, lone bytes, a cut sequence, an encoded surrogate
      const under = (d: Buffer, n: Buffer) => Buffer.concat([d, Buffer.from('/'), n]);
      const steps: Step[] = [
        { op: 'create', path_b64: b64(cafe), mode: 0o644 },
        { op: 'write', path_b64: b64(cafe), data: 'latin-1 name' },
        { op: 'create', path_b64: b64(cafeUtf8), mode: 0o644 },
        { op: 'write', path_b64: b64(cafeUtf8), data: 'utf-8 name' },
        { op: 'create', path_b64: b64(replacement), mode: 0o644 },
        { op: 'lstat', path_b64: b64(cafe) },
        { op: 'read', path_b64: b64(cafe) },
        { op: 'read', path_b64: b64(cafeUtf8) },
        { op: 'mkdir', path_b64: b64(dir), mode: 0o755 },
        { op: 'create', path_b64: b64(under(dir, mixed)), mode: 0o600 },
        { op: 'write', path_b64: b64(under(dir, mixed)), data: 'mixed' },
        { op: 'listdir', path: '.' },
        { op: 'listdir', path_b64: b64(dir) },
        { op: 'link', src_b64: b64(cafe), dst_b64: b64(under(dir, raw(0x68, 0xe9))) }, // d\xff/h\xe9
        { op: 'rename', src_b64: b64(cafe), dst_b64: b64(raw(0x63, 0x61, 0x66, 0xe9, 0x32)) }, // caf\xe92
        { op: 'lstat', path_b64: b64(under(dir, raw(0x68, 0xe9))) },
        { op: 'symlink', target_b64: b64(under(dir, mixed)), path_b64: b64(raw(0x6c, 0xe9)) },
        { op: 'readlink', path_b64: b64(raw(0x6c, 0xe9)) },
        { op: 'read', path_b64: b64(raw(0x6c, 0xe9)) }, // followed by the kernel: the bytes must name the file
        { op: 'mkfifo', path_b64: b64(under(dir, raw(0x66, 0xfe))), mode: 0o644 },
        { op: 'setxattr', path_b64: b64(cafeUtf8), name: 'user.n\udce9', value: b64(Buffer.from('v1')) }, // user.n\xe9 (as Python and the wire spell it)
        { op: 'setxattr', path_b64: b64(cafeUtf8), name: 'user.né', value: b64(Buffer.from('v2')) },
        { op: 'listxattr', path_b64: b64(cafeUtf8) },
        { op: 'getxattr', path_b64: b64(cafeUtf8), name: 'user.n\udce9' },
        { op: 'getxattr', path_b64: b64(cafeUtf8), name: 'user.né' },
        { op: 'removexattr', path_b64: b64(cafeUtf8), name: 'user.né' },
        { op: 'unlink', path_b64: b64(replacement) },
        { op: 'rmdir', path_b64: b64(dir) }, // ENOTEMPTY
        { op: 'listdir', path: '.' },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.map(outcome)).toEqual(steps.map((_, i) => (i === steps.length - 2 ? 'ENOTEMPTY' : 'ok')));
      expect(valueOf(r.oracle[7])).toBe('utf-8 name');
      expect(valueOf<unknown[]>(r.oracle[11])).toHaveLength(4);
    },
  },
  {
    name: 'non-utf8-255',
    title: 'a name of 255 bytes that are not UTF-8 works (the limit counts bytes); 256 such bytes give ENAMETOOLONG',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      const ok = Buffer.alloc(255, 0xe9);
      const bad = Buffer.alloc(256, 0xe9);
      const steps: Step[] = [
        { op: 'create', path_b64: b64(ok), mode: 0o644 },
        { op: 'write', path_b64: b64(ok), data: '255 bytes' },
        { op: 'lstat', path_b64: b64(ok) },
        { op: 'mkdir', path_b64: b64(Buffer.alloc(255, 0xfa)), mode: 0o755 },
        { op: 'rename', src_b64: b64(ok), dst_b64: b64(Buffer.concat([Buffer.alloc(255, 0xfa), Buffer.from('/'), ok])) },
        { op: 'create', path_b64: b64(bad), mode: 0o644 },
        { op: 'lstat', path_b64: b64(bad) },
        { op: 'listdir', path: '.' },
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.map(outcome)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ENAMETOOLONG', 'ENAMETOOLONG', 'ok']);
    },
  },
];
