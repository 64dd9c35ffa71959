import { describe, expect, it } from 'vitest';
import { LatencyWindow } from '../../src/mount/peers/latency.js';

describe('LatencyWindow', () => {
  it('is exact while small: every query sees every sample', () => {
    const w = new LatencyWindow(2048, () => 0);
    expect(w.percentile(50)).toBeNull();
    for (const us of [500, 100, 300]) w.add(us);
    expect(w.percentile(50)).toBe(300);
    w.add(50);
    w.add(60);
    expect(w.percentile(50)).toBe(100);
    expect(w.percentile(99)).toBe(500);
  });

  it('keeps a large window\'s order for a few adds or a second, then sorts again', () => {
    let now = 1_000;
    const w = new LatencyWindow(512, () => now);
    for (let i = 0; i < 512; i++) w.add(1000);
    expect(w.percentile(50)).toBe(1000);
    // A handful of new samples do not re-sort (the hot path stays cheap)...
    for (let i = 0; i < 10; i++) w.add(1);
    expect(w.percentile(0)).toBe(1000);
    // ...a second later they do.
    now += 1000;
    expect(w.percentile(0)).toBe(1);
    // And so do enough new samples, without the clock moving.
    for (let i = 0; i < 300; i++) w.add(5);
    expect(w.percentile(50)).toBe(5);
  });

  it('rolls: only the newest `size` samples count', () => {
    const w = new LatencyWindow(100, () => 0);
    for (let i = 0; i < 100; i++) w.add(9_000);
    for (let i = 0; i < 100; i++) w.add(10);
    expect(w.percentile(99)).toBe(10);
  });
});
