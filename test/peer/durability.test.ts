import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { Flusher } from '../../src/peer/durability.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/** The peer's background flush and barrier (unit, on a real directory: syncfs runs for real). */

afterEach(() => cleanupTmp());

function flusher(running: Map<string, number[]> = new Map(), recorded = new Map<string, number>()) {
  const dir = tmpDir('mirrorfs-flush-');
  mkdirSync(join(dir, 'state'));
  const records: Array<Map<string, number>> = [];
  const f = new Flusher({
    dirs: [dir, join(dir, 'state')],
    intervalMs: 60_000,
    log: createLogger('test', 'silent'),
    runningSeqs: (m) => running.get(m) ?? [],
    record: (points) => records.push(new Map(points)),
    recorded,
  });
  return { f, records };
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

  it('a seq still being applied holds the durable point below it', async () => {
    const running = new Map([['m', [3]]]);
    const { f } = flusher(running);
    f.noteApplied('m', 2);
    f.noteApplied('m', 4); // 3 is still running
    await f.flush();
    expect(f.report('m').durableThrough).toBe(2);
    running.set('m', []);
    f.noteApplied('m', 3);
    await f.flush();
    expect(f.report('m').durableThrough).toBe(4);
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
    const { f } = flusher(new Map(), new Map([['m', 7]]));
    expect(f.report('m')).toEqual({ appliedThrough: 7, durableThrough: 7, oldestUndurableAgeMs: null });
    f.noteApplied('m', 8);
    expect(await f.stop()).toBe(true);
    expect(f.report('m').durableThrough).toBe(8);
    await expect(f.flush()).rejects.toThrow(/stopped/);
  });
});
