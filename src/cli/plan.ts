import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * `mirrorfs plan`: the distance question answered from measurements
 * (scripts/bench-distance.mjs writes them): for a write-latency budget, how far
 * apart can the copies be in each topology; or, for a separation, what write
 * latency to expect. Each topology's p50 latency is fitted as a straight line
 * against separation (least squares); answers outside the measured range are
 * marked as extrapolated.
 */

const measurementsSchema = z.object({
  measured: z.string(),
  machine: z.string(),
  scale: z.number(),
  usPerMile: z.number(),
  results: z.array(z.object({ topology: z.string(), hops: z.number(), separationStandsForMiles: z.number(), p50Us: z.number(), p99Us: z.number() })).min(1),
});
export type Measurements = z.infer<typeof measurementsSchema>;

export const TOPOLOGY_NAMES: Record<string, string> = {
  remote: 'one remote mirror',
  bipolar: 'bipolar (two mirrors, opposite directions)',
  cascade: 'cascade of relays, first-hop ack',
  'cascade-e2e': 'cascade of relays, end-to-end (write + fsync)',
};

export interface Fit {
  topology: string;
  /** Latency (µs) at zero separation. */
  interceptUs: number;
  /** Added latency (µs) per mile of separation. */
  usPerMile: number;
  minMiles: number;
  maxMiles: number;
}

export function loadMeasurements(file: string): Measurements {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read measurements ${file}: ${(err as Error).message} (run node scripts/bench-distance.mjs to make them)`);
  }
  const parsed = measurementsSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${file} is not a distance-benchmark result: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

export function fitAll(m: Measurements): Fit[] {
  const byTopology = new Map<string, Array<{ x: number; y: number }>>();
  for (const r of m.results) {
    const list = byTopology.get(r.topology) ?? [];
    list.push({ x: r.separationStandsForMiles, y: r.p50Us });
    byTopology.set(r.topology, list);
  }
  return [...byTopology].map(([topology, pts]) => {
    const n = pts.length;
    const mx = pts.reduce((s, p) => s + p.x, 0) / n;
    const my = pts.reduce((s, p) => s + p.y, 0) / n;
    const sxx = pts.reduce((s, p) => s + (p.x - mx) ** 2, 0);
    const slope = sxx === 0 ? 0 : pts.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0) / sxx;
    return { topology, interceptUs: my - slope * mx, usPerMile: slope, minMiles: Math.min(...pts.map((p) => p.x)), maxMiles: Math.max(...pts.map((p) => p.x)) };
  });
}

export interface BudgetAnswer {
  topology: string;
  /** Farthest separation meeting the budget, or null when even zero separation does not. 'unbounded' when latency does not grow with distance in the measurements. */
  maxMiles: number | 'unbounded' | null;
  extrapolated: boolean;
}

export function separationForBudget(fits: Fit[], budgetUs: number): BudgetAnswer[] {
  return fits.map((f) => {
    if (f.usPerMile <= 0) return { topology: f.topology, maxMiles: f.interceptUs <= budgetUs ? 'unbounded' : null, extrapolated: true };
    const miles = (budgetUs - f.interceptUs) / f.usPerMile;
    if (miles < 0) return { topology: f.topology, maxMiles: null, extrapolated: f.minMiles > 0 };
    return { topology: f.topology, maxMiles: miles, extrapolated: miles > f.maxMiles || miles < f.minMiles };
  });
}

export function latencyForSeparation(fits: Fit[], miles: number): Array<{ topology: string; p50Us: number; extrapolated: boolean }> {
  return fits.map((f) => ({ topology: f.topology, p50Us: f.interceptUs + f.usPerMile * miles, extrapolated: miles > f.maxMiles || miles < f.minMiles }));
}

/** "5ms", "800us", "2s", or a bare number of milliseconds -> µs. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s)?\s*$/i.exec(text);
  if (!m) throw new Error(`${JSON.stringify(text)}: expected a time such as 5ms or 800us`);
  const n = Number(m[1]);
  const unit = (m[2] ?? 'ms').toLowerCase();
  return unit === 's' ? n * 1e6 : unit === 'ms' ? n * 1000 : n;
}

/** "120mi", "120 miles", "193km", or a bare number of miles -> miles. */
export function parseDistance(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(mi|miles?|km)?\s*$/i.exec(text);
  if (!m) throw new Error(`${JSON.stringify(text)}: expected a distance such as 120mi or 200km`);
  const n = Number(m[1]);
  return (m[2] ?? 'mi').toLowerCase() === 'km' ? n / 1.609344 : n;
}
