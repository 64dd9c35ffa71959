import type { TimeSpec } from './posix.js';

/**
 * Times as the wire carries them (nanoseconds since the epoch, in decimal) and
 * as utimensat(2) takes them ({sec, nsec}, nsec in 0..999,999,999, also before
 * 1970), without passing through a double, which would round them.
 */

const NS_PER_S = 1_000_000_000n;

export function nsToTimeSpec(ns: bigint): { sec: number; nsec: number } {
  let sec = ns / NS_PER_S;
  let nsec = ns % NS_PER_S;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += NS_PER_S;
  }
  return { sec: Number(sec), nsec: Number(nsec) };
}

/** A time from milliseconds (requests and manifests of older senders). */
export function msToNs(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6));
}

/** What a utimens request asks for one time: exact nanoseconds, else milliseconds, else leave it (omit). */
export function requestedTime(ns: string | null | undefined, ms: number | null | undefined): TimeSpec {
  if (ns !== undefined) return ns === null ? 'omit' : nsToTimeSpec(BigInt(ns));
  return ms === undefined || ms === null ? 'omit' : nsToTimeSpec(msToNs(ms));
}
