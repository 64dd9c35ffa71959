import { expect } from 'vitest';
import {
  ROOT,
  USER_A,
  USER_B,
  outcome,
  runPosix,
  snapshotWithOwners,
  valueOf,
  type Actor,
  type ConformanceCase,
  type OwnedTree,
  type PosixCase,
  type Result,
  type StatValue,
  type Step,
} from '../../helpers/posix.js';

/**
 * Times as ext4 keeps them. The two file systems run at different instants,
 * so times the file system takes from its clock are compared as relations
 * (unchanged, later, earlier, equal to a time set, "now" between the ctimes
 * around it), never as absolute values; times a test sets explicitly must read
 * back exactly, on the mount and in both peers' trees.
 *
 * Before every operation a `tick` step makes sure the clock has moved on, so
 * that "later" is a real relation even when two steps fall into one clock tick.
 * The mount may answer a stat from either peer: every relation must hold
 * whichever peer answered.
 */

const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

/** Explicit times (ns since 1970, decimal): with nanoseconds, before 1970, after 2038, far after. */
export const T = {
  billion: '1000000000123456789', // 2001-09-09 01:46:40.123456789
  before1970: '-999999999012345679', // -1000000000 s + 987654321 ns: 1938-04-24
  after2038: '2147483648999999999', // 2^31 s + 999999999 ns: just past the 32-bit end
  year2100: '4102444800000000005', // 2100-01-01 + 5 ns
  year2300: '10413792000000000007', // past 2262: beyond 64-bit nanoseconds, inside ext4's range (to 2446)
  year2446: '15021158400999999999', // 2446-01-01, ext4's last year
  year1600: '-11676096000000000001', // before 1678 and before ext4's first time (1901-12-13): clamped
  year3000: '32503680000000000003', // after ext4's last time (2446-05-10): clamped
  baseA: '1234567890111111111',
  baseM: '1234567890222222222',
};

type Rel = 'same' | 'later' | 'earlier';
const KEYS = ['atime', 'mtime', 'ctime'] as const;
type Key = (typeof KEYS)[number];

/** One name watched across an operation: stat before (at `before`) and after (at `after`, default the same path). */
interface Watch {
  before: string;
  after?: string;
  /** What ext4 is expected to do (checked on the oracle; the mount is compared with the oracle for every key). */
  expect: Partial<Record<Key, Rel>>;
}

/** An operation and the names whose times it should or should not touch. */
interface Probe {
  what: string;
  ops: Step[];
  watch: Watch[];
}

interface Laid {
  probe: Probe;
  /** Per watch: the step index of its stat before and after. */
  at: { before: number; after: number }[];
}

/** The steps of a list of probes: stat every watched name, tick, operate, stat again. */
function layOut(probes: Probe[]): { steps: Step[]; laid: Laid[] } {
  const steps: Step[] = [];
  const laid: Laid[] = [];
  for (const probe of probes) {
    const before = probe.watch.map((w) => steps.push({ op: 'lstat', path: w.before }) - 1);
    steps.push({ op: 'tick' }, ...probe.ops);
    const after = probe.watch.map((w) => steps.push({ op: 'lstat', path: w.after ?? w.before }) - 1);
    laid.push({ probe, at: before.map((b, i) => ({ before: b, after: after[i]! })) });
  }
  return { steps, laid };
}

function relation(before: string, after: string): Rel {
  const [b, a] = [BigInt(before), BigInt(after)];
  return a === b ? 'same' : a > b ? 'later' : 'earlier';
}

/** A stat result's value, or null when the step failed (its difference is reported by the step comparison). */
function statAt(results: Result[], i: number): StatValue | null {
  const r = results[i];
  return r && 'ok' in r ? (r.value as StatValue) : null;
}

/** Every probe's relations on one side: "what: name key" -> relation (and the raw times for messages). */
function relations(laid: Laid[], results: Result[]): Map<string, { rel: Rel | 'no stat'; raw: string }> {
  const out = new Map<string, { rel: Rel | 'no stat'; raw: string }>();
  for (const { probe, at } of laid) {
    probe.watch.forEach((w, i) => {
      const [b, a] = [statAt(results, at[i]!.before), statAt(results, at[i]!.after)];
      for (const key of KEYS) {
        const label = `${probe.what}: ${w.after && w.after !== w.before ? `${w.before} (now ${w.after})` : w.before} ${key}`;
        if (!b || !a) out.set(label, { rel: 'no stat', raw: '' });
        else out.set(label, { rel: relation(b[`${key}_ns`], a[`${key}_ns`]), raw: `${b[`${key}_ns`]} -> ${a[`${key}_ns`]}` });
      }
    });
  }
  return out;
}

/** Check the oracle against the probes' expectations, and record every relation where the mount differs from the oracle. */
function compareRelations(c: PosixCase, laid: Laid[], oracle: Result[], mount: Result[], actor: Actor): void {
  const o = relations(laid, oracle);
  const m = relations(laid, mount);
  const unexpected: string[] = [];
  for (const { probe } of laid) {
    for (const w of probe.watch) {
      for (const [key, want] of Object.entries(w.expect)) {
        const label = `${probe.what}: ${w.after && w.after !== w.before ? `${w.before} (now ${w.after})` : w.before} ${key}`;
        if (o.get(label)?.rel !== want) unexpected.push(`${label}: ext4 ${o.get(label)?.rel} (${o.get(label)?.raw}), the case expects ${want}`);
      }
    }
  }
  // The case's own expectations, on ext4: a failure here is the case's, not the mount's.
  expect(unexpected, 'the oracle (ext4) against what the case expects').toEqual([]);
  for (const [label, ro] of o) {
    const rm = m.get(label)!;
    if (ro.rel !== rm.rel) c.problems.push(`${label} (as ${actor.name}): oracle ${ro.rel} (${ro.raw}) but mount ${rm.rel} (${rm.raw})`);
  }
}

/** Root makes the case's starting files and gives them to the actor. */
function ownedBy(actor: Actor, steps: Step[], paths: string[]): Step[] {
  return [...steps, ...paths.map((path): Step => ({ op: 'lchown', path, uid: actor.uid, gid: actor.gid }))];
}

/** The operations every file system must stamp as ext4 does, with the names each should (not) touch. */
function operationProbes(actor: Actor): Probe[] {
  const file = { mtime: 'same', ctime: 'same', atime: 'same' } as const;
  const touched = { mtime: 'later', ctime: 'later' } as const; // contents (or entries) changed
  const attr = { mtime: 'same', ctime: 'later' } as const; // only the inode changed
  const dir = (p: string): Watch => ({ before: p, expect: touched });
  const still = (p: string): Watch => ({ before: p, expect: file });
  return [
    { what: 'write', ops: [{ op: 'write', path: 'd/f', data: 'more data', offset: 4 }], watch: [{ before: 'd/f', expect: touched }, still('d')] },
    { what: 'truncate', ops: [{ op: 'truncate', path: 'd/f', size: 3 }], watch: [{ before: 'd/f', expect: touched }, still('d')] },
    { what: 'chmod', ops: [{ op: 'chmod', path: 'd/f', mode: 0o640 }], watch: [{ before: 'd/f', expect: attr }, still('d')] },
    // root gives the file away and back; a user "chowns" to its own ids (allowed, and still a change of the inode)
    {
      what: 'chown',
      ops: actor.uid === 0 ? [{ op: 'chown', path: 'd/f', uid: USER_B.uid, gid: USER_B.gid }] : [{ op: 'chown', path: 'd/f', uid: -1, gid: actor.gid }],
      watch: [{ before: 'd/f', expect: attr }, still('d')],
    },
    ...(actor.uid === 0 ? [{ what: 'chown back', ops: [{ op: 'chown', path: 'd/f', uid: actor.uid, gid: actor.gid } as Step], watch: [{ before: 'd/f', expect: attr }] }] : []),
    { what: 'setxattr', ops: [{ op: 'setxattr', path: 'd/f', name: 'user.t', value: Buffer.from('v').toString('base64') }], watch: [{ before: 'd/f', expect: attr }, still('d')] },
    { what: 'removexattr', ops: [{ op: 'removexattr', path: 'd/f', name: 'user.t' }], watch: [{ before: 'd/f', expect: attr }, still('d')] },
    { what: 'chmod of a directory', ops: [{ op: 'chmod', path: 'd2', mode: 0o750 }], watch: [{ before: 'd2', expect: attr }, still('d')] },
    { what: 'rename in a directory', ops: [{ op: 'rename', src: 'd/f', dst: 'd/f2' }], watch: [{ before: 'd/f', after: 'd/f2', expect: attr }, dir('d'), still('d2')] },
    { what: 'rename across directories', ops: [{ op: 'rename', src: 'd/f2', dst: 'd2/f3' }], watch: [{ before: 'd/f2', after: 'd2/f3', expect: attr }, dir('d'), dir('d2')] },
    { what: 'rename onto an existing name', ops: [{ op: 'rename', src: 'd2/f3', dst: 'd/victim' }], watch: [{ before: 'd2/f3', after: 'd/victim', expect: attr }, dir('d'), dir('d2')] },
    { what: 'rename of a directory across directories', ops: [{ op: 'rename', src: 'd2/sub', dst: 'd/sub' }], watch: [{ before: 'd2/sub', after: 'd/sub', expect: { ctime: 'later' } }, dir('d'), dir('d2')] },
    { what: 'create', ops: [{ op: 'create', path: 'd/new', mode: 0o644 }], watch: [dir('d'), still('d/victim')] },
    { what: 'mkdir', ops: [{ op: 'mkdir', path: 'd/newdir', mode: 0o755 }], watch: [dir('d')] },
    { what: 'rmdir', ops: [{ op: 'rmdir', path: 'd/newdir' }], watch: [dir('d')] },
    { what: 'symlink', ops: [{ op: 'symlink', target: 'victim', path: 'd/sl' }], watch: [dir('d'), still('d/victim')] },
    { what: 'mknod of a regular file', ops: [{ op: 'mknod', path: 'd/node', mode: S_IFREG | 0o644 }], watch: [dir('d')] },
    { what: 'mkfifo', ops: [{ op: 'mkfifo', path: 'd/fifo', mode: 0o644 }], watch: [dir('d')] },
    ...(actor.uid === 0 ? [{ what: 'mknod of a device', ops: [{ op: 'mknod', path: 'd/null', mode: S_IFCHR | 0o644, major: 1, minor: 3 } as Step], watch: [dir('d')] }] : []),
    { what: 'unlink', ops: [{ op: 'unlink', path: 'd/new' }], watch: [dir('d')] },
    { what: 'unlink of a symlink', ops: [{ op: 'unlink', path: 'd/sl' }], watch: [dir('d'), still('d/victim')] },
    // what must not change anything
    { what: 'stat, open for writing, listdir', ops: [{ op: 'stat', path: 'd/victim' }, { op: 'open', path: 'd/victim', flags: 'w' }, { op: 'listdir', path: 'd2' }], watch: [{ before: 'd/victim', expect: { mtime: 'same', ctime: 'same' } }, still('d')] },
    { what: 'a failed create (EEXIST)', ops: [{ op: 'mkdir', path: 'd/sub', mode: 0o755 }], watch: [still('d')] },
  ];
}

/** Operations on a hard-linked file: the inode's ctime changes under every name. */
function hardLinkProbes(): Probe[] {
  const attr = { mtime: 'same', ctime: 'later' } as const;
  const touched = { mtime: 'later', ctime: 'later' } as const;
  return [
    { what: 'link', ops: [{ op: 'link', src: 'd/f', dst: 'd2/h' }], watch: [{ before: 'd/f', expect: attr }, { before: 'd', expect: { mtime: 'same', ctime: 'same' } }, { before: 'd2', expect: touched }] },
    { what: 'chmod through the new name', ops: [{ op: 'chmod', path: 'd2/h', mode: 0o600 }], watch: [{ before: 'd/f', expect: attr }] },
    { what: 'unlink of one of two names', ops: [{ op: 'unlink', path: 'd2/h' }], watch: [{ before: 'd/f', expect: attr }, { before: 'd2', expect: touched }] },
    {
      what: 'rename onto one name of a hard-linked file',
      ops: [{ op: 'rename', src: 'd/g', dst: 'd/victim' }],
      // the replaced file lives on under its second name: its inode changed (one link fewer)
      watch: [{ before: 'd/g', after: 'd/victim', expect: attr }, { before: 'd/victim-link', expect: attr }, { before: 'd', expect: touched }],
    },
  ];
}

/** The nine combinations of an explicit time, UTIME_NOW and UTIME_OMIT for atime and mtime. */
const COMBOS: { atime: string; mtime: string }[] = [];
for (const atime of [T.billion, 'now', 'omit']) for (const mtime of [T.year2100, 'now', 'omit']) COMBOS.push({ atime, mtime });

/**
 * A time after utimensat, classified: the value set, the value kept (OMIT), or
 * "now" (UTIME_NOW: no earlier than the ctime before the call, no later than the ctime after it).
 */
function classify(given: string, base: string, value: string, ctimeBefore: string, ctimeAfter: string): string {
  if (given !== 'now' && given !== 'omit') return value === given ? 'the time set' : `not the time set (${value})`;
  if (given === 'omit') return value === base ? 'kept' : `changed (${base} -> ${value})`;
  const v = BigInt(value);
  return v >= BigInt(ctimeBefore) && v <= BigInt(ctimeAfter) ? 'now' : `not now (${value}, ctime ${ctimeBefore} -> ${ctimeAfter})`;
}

/** Explicit mtimes (far from the present: set by the test) of a tree, by path. */
function explicitMtimes(tree: OwnedTree): Map<string, string> {
  const now = BigInt(Date.now()) * 1_000_000n;
  const day = 24n * 3600n * 1_000_000_000n;
  const out = new Map<string, string>();
  for (const [path, e] of tree) {
    if (e.mtime_ns === undefined) continue;
    const t = BigInt(e.mtime_ns);
    if ((t > now ? t - now : now - t) > day) out.set(path, e.mtime_ns);
  }
  return out;
}

/** The explicit mtimes of the oracle, the mount and both peers must be the same, to the nanosecond. */
async function compareExplicitMtimes(c: PosixCase): Promise<void> {
  const { oracle, mount, peers } = c.sides;
  const [o, m, ...ps] = await Promise.all([oracle, mount, ...peers.map((p) => p.dir)].map(async (d) => explicitMtimes(await snapshotWithOwners(d, { mtimes: true }))));
  const show = (x: Map<string, string>) => JSON.stringify(Object.fromEntries([...x].sort()));
  if (show(o!) !== show(m!)) c.problems.push(`explicit mtimes: oracle ${show(o!)} but mount ${show(m!)}`);
  peers.forEach((p, i) => {
    if (show(m!) !== show(ps[i]!)) c.problems.push(`explicit mtimes: mount ${show(m!)} but ${p.label} ${show(ps[i]!)}`);
  });
  expect(o!.size, 'the oracle keeps explicit mtimes').toBeGreaterThan(0);
}

/**
 * utimensat with explicit pairs (atime, mtime) on a file and on a directory,
 * each read back exactly; a file per pair is left with it, for the peers' trees.
 */
function explicitCase(name: string, title: string, pairs: [string, string][]): ConformanceCase {
  return {
    name,
    title,
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(ownedBy(actor, [{ op: 'create', path: 'f', mode: 0o644 }, { op: 'write', path: 'f', data: 'x' }, { op: 'mkdir', path: 'd', mode: 0o755 }], ['f', 'd']));
      const steps: Step[] = [];
      for (const path of ['f', 'd']) for (const [a, m] of pairs) steps.push({ op: 'utime', path, atime_ns: a, mtime_ns: m }, { op: 'lstat', path });
      pairs.forEach(([a, m], i) => steps.push({ op: 'create', path: `kept${i}`, mode: 0o644 }, { op: 'utime', path: `kept${i}`, atime_ns: a, mtime_ns: m }, { op: 'lstat', path: `kept${i}` }));
      const r = await c.run(steps, actor);
      steps.forEach((s, i) => {
        if (s.op === 'utime') expect(valueOf<StatValue>(r.oracle[i + 1]), `ext4 after ${JSON.stringify(s)}`).toMatchObject({ atime_ns: s.atime_ns, mtime_ns: s.mtime_ns });
      });
      await compareExplicitMtimes(c);
    },
  };
}

/** Times outside ext4's range: each side's kernel clamps them to it, and the mount must clamp alike. */
function clampedCase(): ConformanceCase {
  return {
    name: 'clamped',
    title: 'utimensat: times outside ext4\'s range (1600, 3000) are clamped to it as on ext4, on the mount and on the peers',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(ownedBy(actor, [{ op: 'create', path: 'f', mode: 0o644 }, { op: 'mkdir', path: 'd', mode: 0o755 }], ['f', 'd']));
      const steps: Step[] = [
        { op: 'utime', path: 'f', atime_ns: T.year1600, mtime_ns: T.year3000 },
        { op: 'lstat', path: 'f' },
        { op: 'utime', path: 'd', atime_ns: T.year3000, mtime_ns: T.year1600 },
        { op: 'lstat', path: 'd' },
      ];
      const r = await c.run(steps, actor);
      const f = valueOf<StatValue>(r.oracle[1]);
      // ext4 clamps (1901-12-13T20:45:52Z and 2446-05-10T22:38:55Z); the harness compares the mount's answers with these
      expect([BigInt(f.atime_ns) / 1_000_000_000n, BigInt(f.mtime_ns) / 1_000_000_000n]).toEqual([-(2n ** 31n), 2n ** 34n - 2n ** 31n - 1n]);
      await compareExplicitMtimes(c);
    },
  };
}

export const timesCases: ConformanceCase[] = [
  {
    name: 'operations',
    title: 'each operation changes mtime/ctime of its file and parents as ext4 does, and nothing else',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(
        ownedBy(
          actor,
          [
            { op: 'mkdir', path: 'd', mode: 0o755 },
            { op: 'mkdir', path: 'd2', mode: 0o755 },
            { op: 'mkdir', path: 'd2/sub', mode: 0o755 },
            { op: 'create', path: 'd/f', mode: 0o644 },
            { op: 'write', path: 'd/f', data: 'some data' },
            { op: 'create', path: 'd/victim', mode: 0o644 },
          ],
          ['d', 'd2', 'd2/sub', 'd/f', 'd/victim'],
        ),
      );
      const { steps, laid } = layOut(operationProbes(actor));
      const r = await c.run(steps, actor);
      compareRelations(c, laid, r.oracle, r.mount, actor);
    },
  },
  {
    name: 'hardlinks',
    title: 'link, unlink of one name and rename onto one name change the ctime of the file under every name',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(
        ownedBy(
          actor,
          [
            { op: 'mkdir', path: 'd', mode: 0o755 },
            { op: 'mkdir', path: 'd2', mode: 0o755 },
            { op: 'create', path: 'd/f', mode: 0o644 },
            { op: 'create', path: 'd/g', mode: 0o644 },
            { op: 'create', path: 'd/victim', mode: 0o644 },
          ],
          ['d', 'd2', 'd/f', 'd/g', 'd/victim'],
        ),
      );
      await c.setup([{ op: 'link', src: 'd/victim', dst: 'd/victim-link' }], actor);
      const { steps, laid } = layOut(hardLinkProbes());
      const r = await c.run(steps, actor);
      compareRelations(c, laid, r.oracle, r.mount, actor);
    },
  },
  explicitCase('explicit', 'utimensat: explicit times with nanoseconds, at 0, just after 2038 and in 2100 read back exactly (file and directory), and the peers keep them', [
    [T.billion, T.billion],
    [T.after2038, T.year2100],
    [T.year2100, T.billion],
    ['0', '1'],
    [T.baseA, T.after2038],
  ]),
  explicitCase('beyond-int64-ns', 'utimensat: times after 2262 (beyond 64-bit nanoseconds) read back exactly to ext4\'s last year, and the peers keep them', [
    [T.year2300, T.year2446],
    [T.billion, T.year2300],
  ]),
  clampedCase(),
  explicitCase('before-1970', 'utimensat: explicit times before 1970 read back exactly (file and directory), and the peers keep them', [
    [T.before1970, T.after2038],
    [T.after2038, T.before1970],
    ['-1', '-1000000000'], // 1969-12-31 23:59:59.999999999, and one second before 1970
    [T.before1970, T.before1970],
  ]),
  {
    name: 'utime-combinations',
    title: 'utimensat: every combination of an explicit time, UTIME_NOW and UTIME_OMIT for atime and mtime (UTIME_NOW: between the ctimes around the call, as ext4 stamps it)',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(ownedBy(actor, [{ op: 'create', path: 'f', mode: 0o644 }, { op: 'write', path: 'f', data: 'x' }], ['f']));
      const steps: Step[] = [];
      // each combination, from the same starting times
      const combo: { at: number; atime: string; mtime: string }[] = [];
      for (const { atime, mtime } of COMBOS) {
        steps.push({ op: 'utime', path: 'f', atime_ns: T.baseA, mtime_ns: T.baseM }, { op: 'lstat', path: 'f' }, { op: 'tick' }, { op: 'utime', path: 'f', atime_ns: atime, mtime_ns: mtime }, { op: 'lstat', path: 'f' });
        combo.push({ at: steps.length - 1, atime, mtime });
      }
      // and the file left with explicit times, for the peers' trees
      steps.push({ op: 'utime', path: 'f', atime_ns: T.billion, mtime_ns: T.year2100 }, { op: 'lstat', path: 'f' });
      const r = await c.run(steps, actor);
      for (const { at, atime, mtime } of combo) {
        const kinds = (results: Result[]) => {
          const [before, after] = [statAt(results, at - 3), statAt(results, at)];
          if (!before || !after) return 'no stat';
          const ctime = relation(before.ctime_ns, after.ctime_ns);
          return `atime ${classify(atime, T.baseA, after.atime_ns, before.ctime_ns, after.ctime_ns)}, mtime ${classify(mtime, T.baseM, after.mtime_ns, before.ctime_ns, after.ctime_ns)}, ctime ${ctime}`;
        };
        const [ko, km] = [kinds(r.oracle), kinds(r.mount)];
        const omitBoth = atime === 'omit' && mtime === 'omit';
        expect(ko, `ext4 after utime(${atime}, ${mtime})`).toBe(`atime ${atime === 'now' ? 'now' : atime === 'omit' ? 'kept' : 'the time set'}, mtime ${mtime === 'now' ? 'now' : mtime === 'omit' ? 'kept' : 'the time set'}, ctime ${omitBoth ? 'same' : 'later'}`);
        if (ko !== km) c.problems.push(`utime(atime ${atime}, mtime ${mtime}) as ${actor.name}: oracle ${ko} but mount ${km}`);
      }
      await compareExplicitMtimes(c);
    },
  },
  {
    name: 'utime-others',
    title: 'only the owner (or root) sets explicit times; anyone who may write sets them to now',
    actors: [USER_A],
    body: async (c, actor) => {
      await c.setup([
        { op: 'create', path: 'mine', mode: 0o644 },
        { op: 'chown', path: 'mine', uid: actor.uid, gid: actor.gid },
        { op: 'create', path: 'shared', mode: 0o644 },
        { op: 'chmod', path: 'shared', mode: 0o666 },
        { op: 'create', path: 'readonly', mode: 0o644 },
        ...['mine', 'shared', 'readonly'].map((path): Step => ({ op: 'utime', path, atime_ns: T.baseA, mtime_ns: T.baseM })),
      ]);
      const steps: Step[] = [
        { op: 'utime', path: 'shared', atime_ns: T.billion, mtime_ns: T.billion }, // EPERM: not the owner
        { op: 'utime', path: 'shared', atime_ns: 'now', mtime_ns: 'now' }, // allowed: may write
        { op: 'utime', path: 'shared', atime_ns: 'omit', mtime_ns: 'now' }, // EPERM: only both-now needs no ownership
        { op: 'utime', path: 'readonly', atime_ns: 'now', mtime_ns: 'now' }, // EACCES
        { op: 'utime', path: 'mine', atime_ns: T.billion, mtime_ns: T.after2038 },
        ...['mine', 'shared', 'readonly'].map((path): Step => ({ op: 'lstat', path })),
      ];
      const r = await c.run(steps, actor);
      expect(r.oracle.slice(0, 5).map(outcome)).toEqual(['EPERM', 'ok', 'EPERM', 'EACCES', 'ok']);
      await compareExplicitMtimes(c);
    },
  },
  {
    name: 'symlink-nofollow',
    title: 'utimensat with AT_SYMLINK_NOFOLLOW sets the symlink\'s own times and leaves its target\'s alone',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(
        ownedBy(
          actor,
          [
            { op: 'create', path: 'target', mode: 0o644 },
            { op: 'symlink', target: 'target', path: 'l' },
            { op: 'symlink', target: 'absent', path: 'dangling' },
            { op: 'utime', path: 'target', atime_ns: T.baseA, mtime_ns: T.baseA },
          ],
          ['target', 'l', 'dangling'],
        ),
      );
      // Nothing here follows the link before the last step: following it reads it, which updates its atime (relatime; the atime case's business).
      const steps: Step[] = [
        { op: 'utime', path: 'l', atime_ns: T.billion, mtime_ns: T.baseM, nofollow: true },
        { op: 'lstat', path: 'l' },
        { op: 'lstat', path: 'target' }, // untouched
        { op: 'utime', path: 'dangling', atime_ns: T.after2038, mtime_ns: T.year2100, nofollow: true },
        { op: 'lstat', path: 'dangling' },
        { op: 'utime', path: 'l', atime_ns: 'omit', mtime_ns: T.after2038, nofollow: true },
        { op: 'lstat', path: 'l' },
        { op: 'lstat', path: 'target' },
        { op: 'utime', path: 'dangling', atime_ns: T.billion, mtime_ns: T.billion }, // follows: ENOENT
        { op: 'utime', path: 'l', atime_ns: T.year2100, mtime_ns: T.year2100 }, // follows: the target's times
        { op: 'lstat', path: 'target' },
      ];
      const r = await c.run(steps, actor);
      expect(valueOf<StatValue>(r.oracle[1])).toMatchObject({ atime_ns: T.billion, mtime_ns: T.baseM });
      expect(valueOf<StatValue>(r.oracle[2])).toMatchObject({ atime_ns: T.baseA, mtime_ns: T.baseA });
      expect(valueOf<StatValue>(r.oracle[4])).toMatchObject({ atime_ns: T.after2038, mtime_ns: T.year2100 });
      expect(valueOf<StatValue>(r.oracle[6])).toMatchObject({ atime_ns: T.billion, mtime_ns: T.after2038 });
      expect(valueOf<StatValue>(r.oracle[7])).toMatchObject({ atime_ns: T.baseA, mtime_ns: T.baseA });
      expect(outcome(r.oracle[8])).toBe('ENOENT');
      expect(valueOf<StatValue>(r.oracle[10])).toMatchObject({ atime_ns: T.year2100, mtime_ns: T.year2100 });
      await compareExplicitMtimes(c);
    },
  },
  {
    name: 'atime',
    title: 'a read updates atime as ext4\'s relatime does (when atime is not after mtime), a second read does not; so do listing a directory and following a symlink; every peer\'s copy is stamped too',
    actors: [ROOT, USER_A],
    body: async (c, actor) => {
      await c.setup(
        ownedBy(
          actor,
          [
            { op: 'create', path: 'f', mode: 0o644 },
            { op: 'write', path: 'f', data: 'data to read' },
            { op: 'utime', path: 'f', atime_ns: T.baseA, mtime_ns: T.baseM },
            { op: 'symlink', target: 'f', path: 'l' },
            { op: 'utime', path: 'l', atime_ns: T.baseA, mtime_ns: T.baseM, nofollow: true },
            { op: 'mkdir', path: 'd', mode: 0o755 },
            { op: 'create', path: 'd/x', mode: 0o644 },
            { op: 'utime', path: 'd', atime_ns: T.baseA, mtime_ns: T.baseM },
          ],
          ['f', 'l', 'd'],
        ),
      );
      const { steps, laid } = layOut([
        { what: 'first read', ops: [{ op: 'read', path: 'f' }], watch: [{ before: 'f', expect: { atime: 'later', mtime: 'same', ctime: 'same' } }] },
        { what: 'second read', ops: [{ op: 'read', path: 'f' }], watch: [{ before: 'f', expect: { atime: 'same', mtime: 'same', ctime: 'same' } }] },
        // following a symlink reads it
        { what: 'following a symlink', ops: [{ op: 'stat', path: 'l' }], watch: [{ before: 'l', expect: { atime: 'later', mtime: 'same', ctime: 'same' } }] },
        { what: 'listing a directory', ops: [{ op: 'listdir', path: 'd' }], watch: [{ before: 'd', expect: { atime: 'later', mtime: 'same', ctime: 'same' } }] },
        { what: 'listing it again', ops: [{ op: 'listdir', path: 'd' }], watch: [{ before: 'd', expect: { atime: 'same', mtime: 'same', ctime: 'same' } }] },
        // a change makes atime not after mtime again: the next read stamps it
        { what: 'a write, then a read', ops: [{ op: 'write', path: 'f', data: 'more', offset: 0 }, { op: 'read', path: 'f' }], watch: [{ before: 'f', expect: { atime: 'later', mtime: 'later', ctime: 'later' } }] },
      ]);
      const r = await c.run(steps, actor);
      compareRelations(c, laid, r.oracle, r.mount, actor);
      // Every copy was stamped, not only the one that served the reads: each peer's atimes are past the times set.
      for (const peer of c.sides.peers) {
        const seen = await runPosix(peer.dir, ['f', 'l', 'd'].map((path): Step => ({ op: 'lstat', path })));
        const atimes = seen.map((x) => BigInt(valueOf<StatValue>(x).atime_ns));
        expect(atimes.map((a) => a > BigInt(T.baseM)), `${peer.label}: atime of f, l and d stamped`).toEqual([true, true, true]);
      }
    },
  },
];
