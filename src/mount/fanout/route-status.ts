import type { PeerStatus, RelayStatus } from '../../protocol/ops.js';
import type { Member } from '../peers/member.js';

/** One hop of a route: a relay (with its queue for the next hop) or the mirror at the end. */
export interface RouteHop {
  name: string;
  relay: boolean;
  queueDepth: number;
  oldestAgeMs: number | null;
  connected: boolean | null;
  lastError: string | null;
  diverged: number;
}

/** The bound on asking a route's first hop for its status (`mirrorfs status` waits for it). */
const ROUTE_STATUS_TIMEOUT_MS = 3000;

/** A route's hops from its first hop's status, which nests each relay's next hop (or why it could not be had). */
export function hopsOf(status: PeerStatus): RouteHop[] {
  const hops: RouteHop[] = [];
  let s: PeerStatus | { error: string } | null = status;
  while (s && 'name' in s) {
    const r: RelayStatus | null = s.relay ?? null;
    hops.push({ name: s.name, relay: r !== null, queueDepth: r?.queue.depth ?? 0, oldestAgeMs: r?.queue.oldestAgeMs ?? null, connected: r?.connected ?? null, lastError: r?.lastError ?? null, diverged: r?.diverged ?? 0 });
    s = r?.next ?? null;
  }
  if (s && 'error' in s) hops.push({ name: '(unreachable)', relay: false, queueDepth: 0, oldestAgeMs: null, connected: false, lastError: s.error, diverged: 0 });
  return hops;
}

/**
 * Each route's hops as its first hop reports them (a relay lists the hops
 * after it): queue depth and age of the oldest unacknowledged change per
 * relay. Bounded; a route that does not answer says why.
 */
export async function routeStatus(members: readonly Member[]): Promise<Record<string, RouteHop[] | { error: string }>> {
  const out: Record<string, RouteHop[] | { error: string }> = {};
  await Promise.all(
    members.map(async (m) => {
      try {
        out[m.name] = hopsOf(await m.client.status(ROUTE_STATUS_TIMEOUT_MS));
      } catch (err) {
        out[m.name] = { error: (err as Error).message };
      }
    }),
  );
  return out;
}
