import type { Logger } from '../../log.js';
import { PeerClient } from '../../client/peer-client.js';
import type { Member } from './member.js';
import { Refusal } from '../../refusal.js';

/**
 * Diverse routes (para. 15): a peer given as URL1|URL2 is reached over the
 * first route that works, and the client switches when one fails, re-sending
 * the same stamped request (the peer answers a re-send from its record).
 *
 * Checked at mount time, for every peer with more than one route: every
 * reachable route leads to the same peer (same identity, relay or mirror).
 * Routes through different relays to one mirror are refused that way too, and
 * must be: a relay acknowledges a change before the far mirror has it, so after
 * a switch a later change sent through the other relay could reach the mirror
 * before an earlier one still queued at the first, and the copies would
 * diverge. Several network paths to the same relay share its one queue.
 * A route unreachable now is allowed (that is what the other routes are for),
 * with a warning: its identity is unchecked.
 */
export async function checkRoutes(members: Member[], log: Logger): Promise<void> {
  for (const m of members) {
    if (m.client.routes.length < 2) continue;
    const ids = new Map<string, string>();
    for (const route of m.client.routes) {
      const probe = new PeerClient(route, { name: `${m.name} via ${route}`, token: m.spec.token, transport: m.spec.transport, timeoutMs: 3000 });
      try {
        ids.set(route, (await probe.status()).id);
      } catch (err) {
        log.warn({ peer: m.name, route, err: (err as Error).message }, 'route unreachable at mount time; its identity is not checked');
      } finally {
        await probe.close();
      }
    }
    if (new Set(ids.values()).size > 1) {
      throw new Refusal('ROUTES_DISAGREE', `peer ${m.name}: its routes lead to different peers (${[...ids].map(([r, id]) => `${r} -> ${id}`).join(', ')}); every route must reach the same peer (routes through different relays would let changes overtake each other)`);
    }
  }
}
