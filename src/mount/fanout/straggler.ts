import { STRAGGLER, mostAgreeing, type Outcome } from './ack-policy.js';

/** The shortest straggler window: peers not yet measured, or very fast, still get this long. */
const STRAGGLER_MIN_MS = 50;

/**
 * With ack quorum or N: every outcome, or, once `required` peers committed the
 * same outcome, those that arrive within a short straggler window (`windowMs`,
 * asked at that moment). A peer that has not answered by then counts as
 * STRAGGLER, lacking the change (it is journaled for it and it is caught up),
 * so a stopped or slow peer costs the application one short wait rather than
 * the peer timeout on every call.
 */
export function enoughOutcomes(pending: Promise<Outcome>[], required: number, windowMs: () => number): Promise<Outcome[]> {
  return new Promise((resolve) => {
    const results: Array<Outcome | undefined> = pending.map(() => undefined);
    let timer: NodeJS.Timeout | null = null;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      resolve(results.map((r) => r ?? STRAGGLER));
    };
    pending.forEach((p, i) =>
      void p.then((o) => {
        results[i] = o;
        if (results.every((r) => r !== undefined)) return finish();
        if (!timer && !finished && mostAgreeing(results) >= required) timer = setTimeout(finish, windowMs());
      }),
    );
  });
}

/**
 * How long to wait for the remaining peers once enough committed: a few times
 * the slowest in-step peer's p99, at least STRAGGLER_MIN_MS, never more than
 * the peer timeout (the bound on each call anyway).
 */
export function stragglerWindowMs(members: ReadonlyArray<{ readonly inStep: boolean; readonly latencyP99Ms: number }>, peerTimeoutMs: number): number {
  const p99s = members.filter((m) => m.inStep).map((m) => m.latencyP99Ms);
  return Math.min(peerTimeoutMs, Math.max(STRAGGLER_MIN_MS, 3 * Math.max(0, ...p99s)));
}
