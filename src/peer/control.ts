import type { Http2Session } from 'node:http2';
import { MirrorError, toMirrorError } from '../protocol/errors.js';
import type { ControlRequest } from '../protocol/ops.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { checkExact, type PeerContext } from './context.js';
import { checkOwnership, handshake } from './ownership.js';
import { handshakeNextHop } from './relay-proxy.js';
import { adopt } from './repair.js';
import { flushEntry } from '../store/apply.js';
import type { Principal } from './principal.js';

/**
 * The control requests answered with a JSON result: the handshake, the
 * owner's lease and bookkeeping (reconciled, settle, adopt, clean), the
 * durability barrier (fsync), and what catch-up and reconciliation read
 * (progress, history, committed). Repair and pull,
 * which carry data or run long, are answered by repair.ts.
 */
export async function control(peer: PeerContext, req: ControlRequest, session: Http2Session | undefined, asker: Principal): Promise<unknown> {
  if (req.op === 'progress') return peer.state.progress(req.mount);
  if (req.op === 'reconciled') {
    checkOwnership(peer, req);
    peer.state.markReconciled(req.owners);
    return { unreconciled: peer.state.unreconciled };
  }
  if (req.op === 'lease') {
    checkOwnership(peer, req);
    peer.leaseAt = performance.now();
    // Where this copy stands for the owner, about every second (mirrorfs status shows it).
    return { leaseAgeMs: 0, durability: peer.flusher.report(req.mount), unclean: peer.state.unclean !== null };
  }
  if (req.op === 'fsync') {
    // Anyone trusted may ask (it changes nothing); an unclean copy has nothing durable to promise until it is repaired.
    checkExact(peer);
    // A pure relay: its queue is durable (FULL) before it answers a change, and it forwards each
    // change as durable, so every hop holds it on stable storage. Waiting here for the far end
    // would make every fsync fail while a far link is cut; ack mode end-to-end waits for it.
    if (!peer.copy) return peer.flusher.report(req.mount);
    if (req.path !== undefined && peer.durableCopy) {
      // One entry, as fsync would flush it locally; under the shared lock, so no rename moves it meanwhile.
      const flushed = await peer.lock.run(false, () => flushEntry(peer.durableCopy!, req.path!, req.datasync === true).then(() => true, (err: unknown) => {
        const errno = toMirrorError(err).errno;
        if (errno === 'ENOENT' || errno === 'ENOTDIR') return false; // gone since (renamed or removed): flush everything instead
        throw err;
      }));
      if (flushed) return peer.flusher.report(req.mount);
    }
    // A barrier: everything applied before it arrived, on stable storage.
    await peer.flusher.flush();
    return peer.flusher.report(req.mount);
  }
  if (req.op === 'repairing') {
    checkOwnership(peer, req);
    // Nothing here counts as durable for anyone until the resync is verified (`clean`).
    if (req.resync === true) peer.state.markUnclean('a full resync of this copy began and was not finished and verified', { nothingDurable: true });
    if (!peer.state.unclean) return { unclean: false };
    if (!session) throw new MirrorError('MFS_MALFORMED', 'repairing must come on the session that repairs');
    peer.repairSession = session;
    peer.log.warn({ mount: req.mount, epoch: req.epoch, since: peer.state.unclean.since }, 'the owner is repairing this copy after the unclean restart: only its session is served until it is clean');
    return { unclean: true };
  }
  if (req.op === 'clean') {
    checkOwnership(peer, req);
    peer.repairSession = null;
    if (peer.state.unclean) {
      // What the repair wrote, on stable storage before this copy counts again.
      await peer.flusher.flush();
      peer.log.warn({ mount: req.mount, epoch: req.epoch, since: peer.state.unclean.since }, 'the owner repaired this copy after the unclean restart: serving again');
      peer.state.markExact();
    }
    return { unclean: false };
  }
  if (req.op === 'committed') {
    // A mirror commits before it answers: whatever it acknowledged is committed. A relay asks down the chain.
    if (!peer.forwarder) return { holdsFrom: null };
    return { holdsFrom: await peer.forwarder.committed(req.mount, req.seq, req.known, Date.now() + req.waitMs) };
  }
  if (req.op === 'history') return peer.state.history(req.mount, req.after, req.limit);
  if (req.op === 'adopt') return adopt(peer, req);
  if (req.op === 'settle') {
    checkOwnership(peer, req);
    peer.state.settle(req.mount, req.seq);
    peer.flusher.noteSettled(req.mount, req.seq);
    return { settledThrough: peer.state.settledThrough(req.mount) };
  }
  if (req.op === 'repair' || req.op === 'pull' || req.op === 'resend') throw new MirrorError('MFS_INTERNAL', `${req.op} is not a control request`);
  if (req.protocol !== PROTOCOL_VERSION) {
    throw new MirrorError('MFS_PROTOCOL_MISMATCH', `peer speaks mirrorfs protocol ${PROTOCOL_VERSION}, mount speaks ${req.protocol}`);
  }
  // Exclusively: a change of owner waits for every operation already admitted
  // under the old epoch, so none of them lands after the new owner is told it
  // owns the peer. A relay passes the handshake down inside the same lock: a
  // change of the old epoch still being queued is then queued before it looks.
  return peer.lock.run(true, async () => {
    if (peer.forwarder) await handshakeNextHop(peer, req, asker.der);
    return handshake(peer, req, asker);
  });
}
