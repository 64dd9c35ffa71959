import { PeerClient } from '../client/peer-client.js';
import { MirrorError, isNoAnswer, toMirrorError } from '../protocol/errors.js';
import type { ControlRequest, Request } from '../protocol/ops.js';
import { Forwarder } from '../relay/forwarder.js';
import type { RelayQueue } from '../relay/queue.js';
import { checkScheme } from '../security/transport.js';
import { NEXT_HOP_TIMEOUT_MS, PULL_CALL_TIMEOUT_MS, type PeerContext, type PeerServerOptions } from './context.js';

/**
 * The peer's side of relaying: the Forwarder that sends the queue on
 * (relay/forwarder.ts), and what a relay passes to its next hop itself: a
 * handshake, and a pure relay's reads, repairs and pulls.
 */

/**
 * The forwarder to a relay's next hop (null: not a relay). When the next hop
 * refuses a mount's epoch for good, `fencedDownstream` records it and this
 * relay refuses that epoch too (ownership.ts).
 */
export function createForwarder(opts: PeerServerOptions, queue: RelayQueue, fencedDownstream: Map<string, number>, ownerCert: (epoch: number) => { der: string; proof: string | null } | null): Forwarder | null {
  const { forwardTo, transport, logger: log } = opts;
  if (!forwardTo) return null;
  for (const route of forwardTo.url.split('|')) checkScheme(route, transport, 'next hop');
  return new Forwarder(queue, new PeerClient(forwardTo.url, {
    name: `next hop ${forwardTo.url}`,
    token: forwardTo.token,
    transport,
    timeoutMs: forwardTo.timeoutMs ?? NEXT_HOP_TIMEOUT_MS,
    onFailover: (from, to, reason) => log.warn({ from, to, reason }, 'route to the next hop failed; using the next route'),
  }), log, forwardTo.maxQueueBytes, (mount, epoch) => {
    fencedDownstream.set(mount, Math.max(epoch, fencedDownstream.get(mount) ?? 0));
    log.error({ mount, epoch }, 'the next hop refuses this mount\'s epoch (another mount took it over): this relay refuses that epoch too from now on');
  }, (epoch) => {
    const owner = ownerCert(epoch);
    return owner === null ? null : { origin: Buffer.from(owner.der, 'base64'), proof: owner.proof };
  });
}

/**
 * A relay passes a handshake on, so ownership (and fencing) holds end to end:
 * a refusal downstream is the relay's refusal. An unreachable next hop does
 * not stop the mount: changes queue here until the link returns.
 */
export async function handshakeNextHop(peer: PeerContext, req: Extract<ControlRequest, { op: 'handshake' }>, origin: Buffer | null): Promise<void> {
  const forwarder = peer.forwarder!;
  try {
    // Not waited for: the mount's own handshake is bounded by its peer timeout. Passed on for the
    // certificate that asked here, with the owner's signature (security/handshake-proof.ts).
    const told = await forwarder.handshakeWhenOlderDrained(req.mount, req.epoch, 0, origin === null ? null : { origin, proof: req.proof ?? null });
    if (!told) peer.log.warn({ to: forwarder.to, epoch: req.epoch }, 'handshake: changes of an older epoch are still queued; the next hop is told the new epoch after they reach it');
  } catch (err) {
    const e = toMirrorError(err, { op: 'handshake' });
    if (isNoAnswer(e) || e.code === 'MFS_SHUTTING_DOWN') {
      peer.log.warn({ to: forwarder.to, err: e.message }, 'handshake: next hop unreachable; changes will queue here until it returns');
      return;
    }
    throw new MirrorError(e.code, `next hop ${forwarder.to} refused: ${e.message}`, { errno: e.errno });
  }
}

/**
 * A request a pure relay cannot answer itself: sent to the next hop once
 * everything queued here has reached it, naming the certificate it came from
 * (`origin`), which the next hop judges by its own trust.
 */
export async function viaNextHop(peer: PeerContext, req: Request, payload: Buffer, origin: Buffer | null): Promise<{ result?: unknown; payload?: Buffer }> {
  const forwarder = peer.forwarder!;
  // Read-your-writes: what this relay acknowledged before the request reaches the next hop first
  // (statfs describes space, not content: it need not wait).
  if (req.op !== 'statfs') await forwarder.waitQueuedBeforeNow(NEXT_HOP_TIMEOUT_MS);
  const out = await forwarder.call(req, payload, req.op === 'pull' ? PULL_CALL_TIMEOUT_MS * 60 : undefined, origin);
  return { result: out.result, payload: out.payload.length > 0 ? out.payload : undefined };
}
