import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { Flusher } from '../../src/peer/durability.js';
import { PeerState } from '../../src/peer/state.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/** The peer's background flush and barrier (unit, on a real directory: syncfs runs for real). */

afterEach(() => cleanupTmp());

function flusher(opts: { recorded?: Map<string, number>; syncfs?: (fd: number) => Promise<void> } = {}) {
  const dir = tmpDir('mirrorfs-flush-');
  mkdirSync(join(dir, 'state'));
  const records: Array<Map<string, number>> = [];
  const failures: Error[] = [];
  const f = new Flusher({
    dirs: [dir, join(dir, 'state')],
    intervalMs: 60_000,
    log: createLogger('test', 'silent'),
    contiguousFrom: () => 0,
    record: (points) => records.push(new Map(points)),
    recorded: opts.recorded ?? new Map(),
    onFailure: (err) => failures.push(err),
    syncfs: opts.syncfs,
  });
  return { f, records, failures };
}

describe('Flusher', () => {
  it('a barrier makes what was applied durable and records the durable point', async () => {
    const { f, records } = flusher();
    f.noteApplied('m', 1);
    f.noteApplied('m', 2);
    expect(f.report('m')).toMatchObject({ appliedThrough: 2, durableThrough: 0 });
    expect(f.report('m').oldestUndurableAgeMs).not.toBeNull();
    await f.flush();
    expect(f.report('m')).toEqual({ appliedThrough: 2, durableThrough: 2, oldestUndurableAgeMs: null });
    expect(records.at(-1)).toEqual(new Map([['m', 2]]));
    expect(f.stats.flushes).toBe(1);
    await f.stop();
  });

  it('a seq not yet applied (running, or still on its way) holds the applied and durable points below it', async () => {
    const { f } = flusher();
    f.noteApplied('m', 1);
    f.noteApplied('m', 2);
    f.noteApplied('m', 4); // 3 is not here yet
    expect(f.report('m').appliedThrough).toBe(2);
    await f.flush();
    expect(f.report('m').durableThrough).toBe(2);
    f.noteApplied('m', 3);
    expect(f.report('m').appliedThrough).toBe(4);
    await f.flush();
    expect(f.report('m').durableThrough).toBe(4);
    // The owner settled the history through 9 (a rebuilt copy): no gap below it is waited for.
    f.noteApplied('m', 10);
    f.noteSettled('m', 9);
    expect(f.report('m').appliedThrough).toBe(10);
    await f.stop();
  });

  it('a failed flush is reported, leaves the durable point where it was, and does not crash a queued barrier', async () => {
    let fail = true;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { f, failures } = flusher({ syncfs: async () => {
      await gate;
      if (fail) throw Object.assign(new Error('EIO: i/o error, syncfs'), { code: 'EIO' });
    } });
    f.noteApplied('m', 1);
    const first = f.flush();
    const queued = f.flush(); // waits for the next flush, which fails too
    release();
    await expect(first).rejects.toThrow(/EIO/);
    await expect(queued).rejects.toThrow(/EIO/);
    expect(failures.length).toBeGreaterThanOrEqual(1);
    expect(f.stats.failures).toBeGreaterThanOrEqual(1);
    expect(f.report('m').durableThrough).toBe(0);
    expect(f.report('m').oldestUndurableAgeMs).not.toBeNull();
    fail = false;
    await f.flush();
    expect(f.report('m').durableThrough).toBe(1);
    await f.stop();
  });

  it('barriers that arrive while a flush runs share the next one (group commit)', async () => {
    const { f } = flusher();
    f.noteApplied('m', 1);
    const first = f.flush();
    f.noteApplied('m', 2);
    const [second, third] = [f.flush(), f.flush()];
    expect(second).toBe(third);
    await Promise.all([first, second]);
    expect(f.stats.flushes).toBe(2);
    expect(f.report('m').durableThrough).toBe(2);
    await f.stop();
  });

  it('starts from the durable points recorded before, and stops with a last flush', async () => {
    const { f } = flusher({ recorded: new Map([['m', 7]]) });
    expect(f.report('m')).toEqual({ appliedThrough: 7, durableThrough: 7, oldestUndurableAgeMs: null });
    f.noteApplied('m', 8);
    expect(await f.stop()).toBe(true);
    expect(f.report('m').durableThrough).toBe(8);
    await expect(f.flush()).rejects.toThrow(/stopped/);
  });
});

describe('the unclean rule (PeerState): only a machine crash with something applied and not yet flushed makes a copy unclean', () => {
  function start(file: string, boot: string): { state: PeerState; unclean: boolean } {
    const state = new PeerState(file);
    return { state, unclean: state.beginRun(boot, true) !== null };
  }

  it('a crash after an unflushed change is unclean; a flush that covered it clears the mark; a change still being applied when the flush began does not', () => {
    const file = join(tmpDir('mirrorfs-state-'), 'peer.db');
    let { state } = start(file, 'boot-1');
    // Before any flush: a new state is taken as possibly holding unflushed changes.
    state.close(false);
    expect(start(file, 'boot-2').unclean).toBe(true);

    const file2 = join(tmpDir('mirrorfs-state-'), 'peer.db');
    ({ state } = start(file2, 'boot-1'));
    state.undurableFlushed(state.undurableFlushStarts()); // a flush with nothing applied: clean from here
    state.close(false); // the process dies (no clean stop)...
    let next = start(file2, 'boot-2'); // ...and the machine with it: nothing was unflushed
    expect(next.unclean).toBe(false);
    state = next.state;
    state.noteUndurable(); // an applied-level change starts
    const during = state.undurableFlushStarts(); // a flush begins while it is still being applied
    state.undurableDone();
    state.undurableFlushed(during); // that flush may have missed it: the mark stays
    state.close(false);
    next = start(file2, 'boot-3');
    expect(next.unclean).toBe(true);
    next.state.close(false);

    const file3 = join(tmpDir('mirrorfs-state-'), 'peer.db');
    ({ state } = start(file3, 'boot-1'));
    state.noteUndurable();
    state.undurableDone();
    const covering = state.undurableFlushStarts();
    state.undurableFlushed(covering); // covered it, and nothing came since
    state.close(false);
    next = start(file3, 'boot-2');
    expect(next.unclean).toBe(false);
    state = next.state;
    state.noteUndurable();
    state.undurableDone();
    const before = state.undurableFlushStarts();
    state.noteUndurable(); // one more after the flush began
    state.undurableDone();
    state.undurableFlushed(before);
    state.close(false);
    expect(start(file3, 'boot-3').unclean).toBe(true);
  });
});
