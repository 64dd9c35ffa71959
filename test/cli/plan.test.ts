import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fitAll, latencyForSeparation, parseDistance, parseDuration, separationForBudget, type Measurements } from '../../src/cli/plan.js';
import { mirrorfsCli } from '../helpers/mount.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/** `mirrorfs plan`: answers from distance measurements (here a small fixture with known lines). */

afterEach(() => cleanupTmp());

// remote: 2,000 us + 10 us/mile; bipolar: 2,000 us + 5 us/mile; cascade: flat 3,000 us.
const fixture: Measurements = {
  measured: '2026-11-25T00:00:00.000Z',
  machine: 'fixture',
  scale: 10,
  usPerMile: 5,
  results: [
    ...[300, 600, 1200].map((m) => ({ topology: 'remote', hops: 1, separationStandsForMiles: m, p50Us: 2000 + 10 * m, p99Us: 0 })),
    ...[300, 600, 1200].map((m) => ({ topology: 'bipolar', hops: 1, separationStandsForMiles: m, p50Us: 2000 + 5 * m, p99Us: 0 })),
    ...[300, 600, 1200].map((m, i) => ({ topology: 'cascade', hops: i + 1, separationStandsForMiles: m, p50Us: 3000, p99Us: 0 })),
  ],
};

describe('mirrorfs plan', () => {
  it('fits each topology and answers a budget and a separation', () => {
    const fits = fitAll(fixture);
    const remote = fits.find((f) => f.topology === 'remote')!;
    expect(remote.interceptUs).toBeCloseTo(2000);
    expect(remote.usPerMile).toBeCloseTo(10);
    const answers = separationForBudget(fits, 8000);
    expect(answers.find((a) => a.topology === 'remote')).toEqual({ topology: 'remote', maxMiles: expect.closeTo(600, 5), extrapolated: false });
    // bipolar doubles the separation for the same latency
    expect(answers.find((a) => a.topology === 'bipolar')!.maxMiles).toBeCloseTo(1200, 5);
    expect(answers.find((a) => a.topology === 'cascade')!.maxMiles).toBe('unbounded');
    expect(separationForBudget(fits, 1000).find((a) => a.topology === 'remote')!.maxMiles).toBeNull();
    expect(latencyForSeparation(fits, 2400).find((a) => a.topology === 'remote')).toEqual({ topology: 'remote', p50Us: expect.closeTo(26000, 5), extrapolated: true });
  });

  it('parses times and distances, and refuses nonsense', () => {
    expect(parseDuration('5ms')).toBe(5000);
    expect(parseDuration('800us')).toBe(800);
    expect(parseDistance('120mi')).toBe(120);
    expect(parseDistance('160.9344km')).toBeCloseTo(100);
    expect(() => parseDuration('soon')).toThrow(/expected a time/);
    expect(() => parseDistance('far')).toThrow(/expected a distance/);
  });

  it('the command prints each topology\'s answer; a missing measurements file is a clear error', async () => {
    const file = join(tmpDir('mirrorfs-plan-'), 'distance.json');
    writeFileSync(file, JSON.stringify(fixture));
    const r = await mirrorfsCli(['plan', '--budget', '8ms', '--measurements', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/one remote mirror\s+copies up to 600 miles/);
    expect(r.stdout).toMatch(/bipolar.*copies up to 1200 miles/);
    expect(r.stdout).toMatch(/cascade of relays, first-hop ack\s+met at every measured separation/);
    const rev = await mirrorfsCli(['plan', '--separation', '600mi', '--measurements', file, '--json']);
    expect(JSON.parse(rev.stdout).answers.find((a: { topology: string }) => a.topology === 'remote').p50Us).toBeCloseTo(8000);
    const missing = await mirrorfsCli(['plan', '--budget', '8ms', '--measurements', join(file, '..', 'nope.json')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read measurements.*bench-distance/);
    const neither = await mirrorfsCli(['plan', '--measurements', file]);
    expect(neither.stderr).toMatch(/one of --budget or --separation/);
  });
});
