import { describe, expect, it } from 'vitest';
import { AccessTimes, type AtimeMode } from '../../src/mount/fuse/access-times.js';
import type { WireStat } from '../../src/protocol/ops.js';

/** The bookkeeping of atime stamps (the stamping itself: test/posix/times.test.ts, case atime). */

const MS = 1_000_000n;
const DAY_MS = 24 * 60 * 60 * 1000;

function setup(mode: AtimeMode = 'relatime') {
  let now = 1_800_000_000_000;
  const sent: string[] = [];
  let release: (() => void) | null = null;
  let hold = false;
  const times = new AccessTimes({
    mode,
    now: () => now,
    access: (path) => {
      sent.push(path);
      return hold ? new Promise<void>((r) => (release = r)) : Promise.resolve();
    },
  });
  return {
    times,
    sent,
    advance: (ms: number) => (now += ms),
    now: () => now,
    holdAccesses: () => (hold = true),
    /** Let the held access finish; later ones finish at once. */
    releaseAccess: () => {
      hold = false;
      release?.();
    },
  };
}

/** Attributes with these times (ms since the epoch). */
function stat(atimeMs: number, mtimeMs: number, ctimeMs = mtimeMs): WireStat {
  const ns = (ms: number) => (BigInt(ms) * MS).toString();
  return { type: 'file', mode: 0o100644, uid: 0, gid: 0, size: 1, nlink: 1, ino: 1, blocks: 0, rdev: 0, atimeMs, mtimeMs, ctimeMs, atimeNs: ns(atimeMs), mtimeNs: ns(mtimeMs), ctimeNs: ns(ctimeMs) };
}

describe('AccessTimes (relatime)', () => {
  it('stamps a name on its first read, not on the next, and again after a change to it', async () => {
    const { times, sent } = setup();
    await times.read('f');
    await times.read('f');
    expect(sent).toEqual(['f']);
    times.changed('f');
    await times.read('f');
    expect(sent).toEqual(['f', 'f']);
  });

  it('trusts a getattr answer whose atime is after mtime and ctime, and is less than a day old', async () => {
    const { times, sent, now, advance } = setup();
    const since = times.mark();
    times.noteStat('fresh', stat(now() - 1000, now() - 5000), since);
    times.noteStat('stale', stat(now() - 5000, now() - 1000), since); // atime before mtime
    times.noteStat('same', stat(now() - 1000, now() - 5000, now() - 1000), since); // atime == ctime: relatime stamps
    await Promise.all(['fresh', 'stale', 'same'].map((p) => times.read(p)));
    expect(sent.sort()).toEqual(['same', 'stale']);
    advance(DAY_MS); // a day after that atime: stamped again
    await times.read('fresh');
    expect(sent).toContain('fresh');
  });

  it('ignores a getattr answer asked before a change to that name (it may show the state before it)', async () => {
    const { times, sent, now } = setup();
    const since = times.mark();
    times.changed('f');
    times.noteStat('f', stat(now() - 1000, now() - 5000), since);
    await times.read('f');
    expect(sent).toEqual(['f']);
  });

  it('forgets a fresh name when a later getattr shows atime not after mtime (a change another way, or answered late)', async () => {
    const { times, sent, now } = setup();
    await times.read('f');
    times.noteStat('f', stat(now() - 5000, now() - 1000), times.mark());
    await times.read('f');
    expect(sent).toEqual(['f', 'f']);
  });

  it('after a rename, names under either directory are stamped again; others are not', async () => {
    const { times, sent } = setup();
    for (const p of ['a/f', 'a/sub/g', 'b/h', 'ab/k', 'a']) await times.read(p);
    times.changedBelow('a', 'b');
    for (const p of ['a/f', 'a/sub/g', 'b/h', 'ab/k', 'a']) await times.read(p);
    expect(sent.slice(5)).toEqual(['a/f', 'a/sub/g', 'b/h']);
  });

  it('keeps the names read most recently when it must forget some', async () => {
    const { times, sent } = setup();
    await times.read('hot');
    for (let i = 0; i < AccessTimes.MAX_NAMES - 1; i++) await times.read(`n${i}`);
    await times.read('hot'); // a hit: now the newest
    await times.read('one-more'); // forgets the oldest, n0
    sent.length = 0;
    await times.read('hot');
    await times.read('n0');
    expect(sent).toEqual(['n0']);
  });

  it('shares one access among concurrent reads, and keeps none fresh that a change overtook', async () => {
    const s = setup();
    s.holdAccesses();
    const first = s.times.read('f');
    const second = s.times.read('f');
    expect(s.sent).toEqual(['f']);
    s.times.changed('f'); // a write while the access is in flight
    s.releaseAccess();
    await Promise.all([first, second]);
    await s.times.read('f'); // stamped again: the write came after the access began
    expect(s.sent).toEqual(['f', 'f']);
  });

  it('a failed access is tried again on the next read', async () => {
    let fail = true;
    const sent: string[] = [];
    const times = new AccessTimes({
      mode: 'relatime',
      access: async (p) => {
        sent.push(p);
        if (fail) throw new Error('peer down');
      },
    });
    await expect(times.read('f')).rejects.toThrow('peer down');
    fail = false;
    await times.read('f');
    await times.read('f');
    expect(sent).toEqual(['f', 'f']);
  });

  it('holds at most MAX_NAMES names, forgetting the oldest', async () => {
    const { times } = setup();
    for (let i = 0; i < AccessTimes.MAX_NAMES + 10; i++) await times.read(`n${i}`);
    expect(times.size).toBe(AccessTimes.MAX_NAMES);
  });
});

describe('AccessTimes (other modes)', () => {
  it('nodiratime leaves directories alone and still stamps files', async () => {
    const sent: string[] = [];
    const times = new AccessTimes({ mode: 'relatime', noDirectories: true, access: async (p) => void sent.push(p) });
    await times.read('d', 'directory');
    await times.read('f', 'file');
    expect(sent).toEqual(['f']);
  });

  it('noatime never stamps', async () => {
    const never = setup('noatime');
    await never.times.read('f');
    never.times.changed('f');
    await never.times.read('f');
    expect(never.sent).toEqual([]);
  });
});
