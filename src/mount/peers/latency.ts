/** Adds after which a cached order is sorted again (a few % of a full window). */
const RESORT_AFTER_ADDS = 32;
/** Age after which a cached order is sorted again, however few samples came. */
const RESORT_AFTER_MS = 1000;
/** Windows this small are sorted on every query (cheap, and exact for tests and status). */
const ALWAYS_EXACT_BELOW = 128;

/**
 * A rolling window of latency samples (µs) for p50/p99; bounded memory.
 *
 * Queried on hot paths (every read picks the peer with the lowest p50), so the
 * sorted order is cached and redone only after RESORT_AFTER_ADDS new samples
 * or RESORT_AFTER_MS: sorting 2,048 samples on every comparison took half the
 * mount's CPU during a sequential read (profiled, session 8).
 */
export class LatencyWindow {
  private readonly samples: Float64Array;
  private next = 0;
  private count = 0;
  private sorted: Float64Array | null = null;
  private addsSinceSort = 0;
  private sortedAtMs = 0;

  constructor(size = 2048, private readonly now: () => number = () => performance.now()) {
    this.samples = new Float64Array(size);
  }

  add(us: number): void {
    this.samples[this.next] = us;
    this.next = (this.next + 1) % this.samples.length;
    if (this.count < this.samples.length) this.count++;
    this.addsSinceSort++;
  }

  percentile(p: number): number | null {
    if (this.count === 0) return null;
    const sorted = this.order();
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
  }

  private order(): Float64Array {
    const now = this.now();
    const stale = this.sorted === null || (this.addsSinceSort > 0 && (this.count < ALWAYS_EXACT_BELOW || this.addsSinceSort >= RESORT_AFTER_ADDS || now - this.sortedAtMs >= RESORT_AFTER_MS));
    if (stale) {
      this.sorted = this.samples.slice(0, this.count).sort(); // a typed array sorts numerically
      this.addsSinceSort = 0;
      this.sortedAtMs = now;
    }
    return this.sorted!;
  }
}

/** One second of a peer's change latencies, summarised for the status page's chart. */
export interface LatencyPoint {
  /** Start of the second (ms since the epoch). */
  t: number;
  p50Us: number;
  p99Us: number;
  count: number;
}

/**
 * Per-second latency of a peer's changes over the last few minutes (the status
 * page's live chart): samples of the current second are kept until it ends,
 * then summarised into one point. Bounded: seconds points, 512 samples a second.
 */
export class LatencySeries {
  private readonly points: LatencyPoint[] = [];
  private second = 0;
  private samples: number[] = [];

  constructor(private readonly seconds = 300) {}

  add(us: number, now = Date.now()): void {
    const second = Math.floor(now / 1000) * 1000;
    if (second !== this.second) this.close(second);
    if (this.samples.length < 512) this.samples.push(us);
  }

  /** The points of the finished seconds, oldest first. */
  snapshot(now = Date.now()): LatencyPoint[] {
    const second = Math.floor(now / 1000) * 1000;
    if (second !== this.second) this.close(second);
    return this.points.slice();
  }

  private close(next: number): void {
    if (this.samples.length > 0) {
      const sorted = this.samples.sort((a, b) => a - b);
      const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
      this.points.push({ t: this.second, p50Us: Math.round(at(0.5)), p99Us: Math.round(at(0.99)), count: sorted.length });
      while (this.points.length > this.seconds) this.points.shift();
    }
    this.samples = [];
    this.second = next;
  }
}
