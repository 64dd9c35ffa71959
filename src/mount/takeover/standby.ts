import type { Logger } from '../../log.js';
import { PeerClient } from '../../client/peer-client.js';
import type { PeerSpec } from '../peers/config.js';

/**
 * `mirrorfs standby` waits here until the primary's lease has lapsed on every
 * peer: each peer reports how long ago the owner last renewed it (by its own
 * clock), and the standby takes over only when every peer answers and every
 * one says longer than the grace period. A primary cut off from the standby
 * but not from the peers keeps renewing, so no takeover happens; a peer that
 * does not answer holds the takeover back (it could not be fenced anyway).
 */

const POLL_MS = 500;
const STATUS_TIMEOUT_MS = 2000;
/** How often "still held" is logged while the primary is alive. */
const REPORT_EVERY_MS = 10_000;

export async function waitForLapsedLease(peers: PeerSpec[], graceMs: number, log: Logger): Promise<void> {
  const clients = peers.map((p) => new PeerClient(p.url, { name: p.name, token: p.token, transport: p.transport, timeoutMs: STATUS_TIMEOUT_MS }));
  let lastReport = 0;
  let lastState = '';
  try {
    for (;;) {
      const answers = await Promise.allSettled(clients.map((c) => c.status()));
      const down = answers.flatMap((a, i) => (a.status === 'rejected' ? [`${peers[i]!.name}: ${(a.reason as Error).message}`] : []));
      const statuses = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
      const youngest = statuses.length === 0 ? null : Math.min(...statuses.map((s) => s.leaseAgeMs));
      const owners = [...new Set(statuses.map((s) => s.owner ?? '(none)'))].join(', ');
      let state: string;
      if (down.length > 0) state = `waiting: not every peer answers (${down.join('; ')})`;
      else if (youngest !== null && youngest >= graceMs) {
        log.warn({ owner: owners, leaseAgeMs: youngest, graceMs }, 'standby: the primary\'s lease has lapsed on every peer; taking over');
        return;
      } else state = `the primary (${owners}) holds the lease`;
      if (state !== lastState || Date.now() - lastReport >= REPORT_EVERY_MS) {
        log.info({ leaseAgeMs: youngest, graceMs }, `standby: ${state}`);
        lastState = state;
        lastReport = Date.now();
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}
