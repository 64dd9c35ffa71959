import { describe, expect, it } from 'vitest';
import { constants } from 'node:os';
import pino from 'pino';
import { LinkedNames } from '../../src/mount/fuse/linked-names.js';

/**
 * The rules of the mount's list of hard-linked names (src/mount/fuse/linked-names.ts).
 * What it is for, that stat through every name of a hard-linked file shows a change
 * made through another at once, is checked end to end through a real mount in
 * test/posix/owners.test.ts and times.test.ts.
 */

const log = pino({ level: 'silent' });
const file = (ino: number, nlink = 2) => ({ type: 'file', nlink, ino });

const ENOENT = constants.errno.ENOENT;

function names(opts: { invalidate?: (p: string) => Promise<number>; waitMs?: number } = {}) {
  const invalidated: string[] = [];
  const linked = new LinkedNames({
    invalidate: opts.invalidate ?? (async (p) => (invalidated.push(p), 0)),
    waitMs: opts.waitMs ?? 5_000,
    log,
  });
  return { linked, invalidated };
}

describe('the names of hard-linked files the kernel may hold attributes for', () => {
  it('knows the other names of a file seen with more than one link, and forgets names seen with one or as directories', () => {
    const { linked } = names();
    linked.note('/a', file(7));
    linked.note('/b', file(7));
    linked.note('/c', file(7));
    linked.note('/x', file(8, 1)); // one link: nothing to keep fresh
    expect(linked.othersOf('/a').sort()).toEqual(['/b', '/c']);
    expect(linked.othersOf('/x')).toEqual([]);
    linked.note('/c', file(7, 1)); // seen again with one link (say, after a rename onto it)
    expect(linked.othersOf('/a')).toEqual(['/b']);
    linked.note('/b', { type: 'dir', nlink: 3, ino: 7 });
    expect(linked.othersOf('/a')).toEqual([]);
    linked.note('/b', file(7));
    linked.note('/b', file(9)); // another file under that name now
    expect(linked.othersOf('/a')).toEqual([]);
  });

  it('forgets a removed name, and moves names with a rename, also below a renamed directory', () => {
    const { linked } = names();
    linked.note('/d/f', file(1));
    linked.note('/d/sub/g', file(1));
    linked.note('/h', file(1));
    linked.note('/victim', file(2));
    linked.note('/victim2', file(2));
    linked.renamed('/d', '/e');
    expect(linked.othersOf('/h').sort()).toEqual(['/e/f', '/e/sub/g']);
    linked.renamed('/h', '/victim'); // replaces one name of file 2
    expect(linked.othersOf('/victim').sort()).toEqual(['/e/f', '/e/sub/g']);
    expect(linked.othersOf('/victim2')).toEqual([]);
    linked.removed('/e/f');
    expect(linked.othersOf('/victim')).toEqual(['/e/sub/g']);
    // a directory replaced by a rename takes the names below it away
    linked.note('/t/x', file(3));
    linked.note('/y', file(3));
    linked.renamed('/s', '/t');
    expect(linked.othersOf('/y')).toEqual([]);
  });

  it('leaves both names alone when a rename names two links of one file (rename(2) does nothing then)', () => {
    const { linked } = names();
    linked.note('/a', file(1));
    linked.note('/b', file(1));
    linked.renamed('/a', '/b');
    expect(linked.othersOf('/a')).toEqual(['/b']);
    expect(linked.othersOf('/b')).toEqual(['/a']);
  });

  it('swaps names with an exchange (RENAME_EXCHANGE), and what is below two exchanged directories', () => {
    const { linked } = names();
    linked.note('/a', file(1));
    linked.note('/a2', file(1));
    linked.note('/b', file(2));
    linked.note('/b2', file(2));
    linked.note('/p/x', file(3));
    linked.note('/x3', file(3));
    linked.note('/q/sub/y', file(4));
    linked.note('/y4', file(4));
    linked.exchanged('/a', '/b');
    expect(linked.othersOf('/a2')).toEqual(['/b']);
    expect(linked.othersOf('/b2')).toEqual(['/a']);
    linked.exchanged('/p', '/q');
    expect(linked.othersOf('/x3')).toEqual(['/q/x']);
    expect(linked.othersOf('/y4')).toEqual(['/p/sub/y']);
    linked.exchanged('/a', '/a2'); // file 2's name /a becomes /a2, file 1's /a2 becomes /a
    expect(linked.othersOf('/b2')).toEqual(['/a2']);
    expect(linked.othersOf('/b')).toEqual(['/a']);
    linked.exchanged('/b', '/unseen'); // a name never noted (one link) takes the other's place
    expect(linked.othersOf('/a')).toEqual(['/unseen']);
  });

  it(`holds at most ${LinkedNames.MAX_NAMES} names, forgetting the ones noted longest ago`, () => {
    const { linked } = names();
    linked.note('/first', file(0));
    linked.note('/second', file(0));
    for (let i = 0; i < LinkedNames.MAX_NAMES - 2; i++) linked.note(`/n${i}`, file(i + 10));
    linked.note('/first', file(0)); // seen again: young again
    linked.note('/one-more', file(1)); // past the bound: /second goes
    expect(linked.othersOf('/first')).toEqual([]);
    linked.note('/second', file(0));
    expect(linked.othersOf('/first')).toEqual(['/second']);
  });

  it('refreshes nothing, without a promise, for a file with no other names', () => {
    const { linked } = names();
    expect(linked.refresh([])).toBeUndefined();
  });

  it('invalidates every given name; a name the kernel holds nothing for (-ENOENT) is no failure', async () => {
    const { linked, invalidated } = names({ invalidate: async (p) => (invalidated.push(p), p === '/unknown' ? -ENOENT : 0) });
    await linked.refresh(['/a', '/unknown']);
    expect(invalidated.sort()).toEqual(['/a', '/unknown']);
  });

  it('invalidates every given name, at most two at once', async () => {
    let running = 0;
    let most = 0;
    const released: Array<() => void> = [];
    const { linked } = names({
      invalidate: () => {
        running++;
        most = Math.max(most, running);
        return new Promise<number>((resolve) => released.push(() => { running--; resolve(0); }));
      },
    });
    const done = linked.refresh(['/a', '/b', '/c', '/d', '/e'])!;
    // release them one by one as they start
    for (let i = 0; i < 5; i++) {
      await expect.poll(() => released.length, { timeout: 5_000 }).toBeGreaterThan(i);
      released[i]!();
    }
    await done;
    expect(released.length).toBe(5);
    expect(most).toBe(LinkedNames.MAX_IN_FLIGHT);
  });

  it('answers after waitMs when an invalidation hangs (dropping pages waits for a read in flight), and the hung one still finishes later', async () => {
    let release: () => void = () => {};
    const hung = new Promise<number>((resolve) => (release = () => resolve(0)));
    const { linked } = names({ invalidate: () => hung, waitMs: 50 });
    await linked.refresh(['/stuck']); // would never resolve without the bound
    release();
    await hung;
  });

  it('queues one invalidation for a name however many changes ask for it while it waits its turn, and a new one once it has started', async () => {
    const released: Array<() => void> = [];
    const invalidated: string[] = [];
    const { linked } = names({
      invalidate: (p) => {
        invalidated.push(p);
        return new Promise<number>((resolve) => released.push(() => resolve(0)));
      },
    });
    // two slots taken, then three refreshes of /c queued behind them
    const first = linked.refresh(['/a', '/b'])!;
    const waiting = [linked.refresh(['/c'])!, linked.refresh(['/c'])!, linked.refresh(['/c'])!];
    await expect.poll(() => released.length).toBe(2);
    released[0]!();
    await expect.poll(() => released.length).toBe(3);
    // /c has started: a change after this point may postdate it, so it is invalidated again
    const again = linked.refresh(['/c'])!;
    released[1]!();
    await expect.poll(() => released.length).toBe(4);
    released[2]!();
    released[3]!();
    await Promise.all([first, ...waiting, again]);
    expect(invalidated).toEqual(['/a', '/b', '/c', '/c']);
  });

  it('a failing invalidation does not fail the change it follows', async () => {
    const { linked } = names({ invalidate: () => Promise.reject(new Error('EIO')) });
    await expect(linked.refresh(['/a'])).resolves.toBeUndefined();
  });
});
