import { describe, expect, it } from 'vitest';
import { Backlog, DEFAULT_MAX_LAG, parseMaxLag } from '../../src/mount/fanout/lag.js';

/** The asynchronous mode's backlog (unit): what each peer lacks, --max-lag, and the barrier's question. */

describe('Backlog', () => {
  it('counts per peer what it lacks, until each peer has each change', () => {
    const b = new Backlog(['east', 'west'], { ops: 3, bytes: 1 << 30, ageMs: 60_000 });
    b.add(1, 10);
    b.add(2, 20);
    expect(b.lagOf('east')).toMatchObject({ ops: 2, bytes: 30 });
    b.delivered('east', 1);
    b.delivered('east', 1); // twice: counted once
    expect(b.lagOf('east')).toMatchObject({ ops: 1, bytes: 20 });
    expect(b.lagOf('west')).toMatchObject({ ops: 2, bytes: 30 });
    expect(b.settledThrough(1)).toBe(false); // west still lacks 1
    b.delivered('west', 1);
    expect(b.settledThrough(1)).toBe(true);
    expect(b.settledThrough(2)).toBe(false);
    b.delivered('east', 2);
    b.delivered('west', 2);
    expect(b.empty).toBe(true);
    expect(b.lagOf('west')).toEqual({ ops: 0, bytes: 0, oldestAgeMs: null });
  });

  it('says why a change must wait once a peer is past a limit', () => {
    const b = new Backlog(['east'], { ops: 2, bytes: 100, ageMs: 60_000 });
    b.add(1, 10);
    expect(b.overLimit()).toBeNull();
    b.add(2, 10);
    expect(b.overLimit()).toMatch(/east lacks 2 changes/);
    b.delivered('east', 1);
    expect(b.overLimit()).toBeNull();
    b.delivered('east', 2);
    b.add(3, 200);
    expect(b.overLimit()).toMatch(/east lacks 200 bytes/);
  });

  it('wakes a waiter at the next delivery', async () => {
    const b = new Backlog(['east'], DEFAULT_MAX_LAG);
    b.add(1, 1);
    const woken = b.changed(60_000).then(() => 'woken');
    b.delivered('east', 1);
    expect(await woken).toBe('woken');
  });
});

describe('parseMaxLag', () => {
  it('reads changes, bytes and an age, each optional', () => {
    expect(parseMaxLag('500')).toEqual({ ...DEFAULT_MAX_LAG, ops: 500 });
    expect(parseMaxLag('64MiB, 2s')).toEqual({ ...DEFAULT_MAX_LAG, bytes: 64 * 1024 * 1024, ageMs: 2000 });
    expect(parseMaxLag('1GiB,250ms,7')).toEqual({ ops: 7, bytes: 1024 ** 3, ageMs: 250 });
  });

  it('refuses what it cannot read, saying what it takes', () => {
    expect(() => parseMaxLag('lots')).toThrow(/give changes \(10000\), bytes \(256MiB\) or an age \(30s\)/);
    expect(() => parseMaxLag('0')).toThrow(/at least 1/);
    expect(() => parseMaxLag('10KiB')).toThrow(/at least 1MiB/);
    expect(() => parseMaxLag('5ms')).toThrow(/at least 100 ms/);
  });
});
