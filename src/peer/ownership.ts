import { MirrorError } from '../protocol/errors.js';
import type { ControlRequest, HandshakeResult } from '../protocol/ops.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { canKeepInodeIds } from '../store/inode-ids.js';
import type { PeerContext } from './context.js';

/**
 * Ownership: one mount at one epoch owns the peer (docs/TAKEOVER.md). A
 * handshake makes a mount the owner at a newer epoch; every change, repair and
 * owner's control request is refused unless it carries the owner's stamp.
 */

/** Who owns the peer now (PeerState's fields of that name). */
export interface OwnerSnapshot {
  epoch: number;
  owner: string | null;
  ownerSince: string | null;
}

/**
 * Why an operation stamped (mount, epoch) is refused, or null when it comes
 * from the owner at the current epoch. `fencedDownstreamEpoch`: the newest
 * epoch of that mount a relay's next hop refused for good (undefined: none).
 */
export function ownershipRefusal(now: OwnerSnapshot, fencedDownstreamEpoch: number | undefined, req: { mount: string; epoch: number }): MirrorError | null {
  const { epoch, owner } = now;
  if (req.epoch < epoch) return new MirrorError('MFS_FENCED', `operation from epoch ${req.epoch}, peer is at epoch ${epoch}, owned by mount ${owner} since ${now.ownerSince}`);
  if (req.epoch <= (fencedDownstreamEpoch ?? -1)) return new MirrorError('MFS_FENCED', `operation from epoch ${req.epoch}: this relay's next hop refuses that epoch (another mount took it over)`);
  if (req.epoch > epoch) return new MirrorError('MFS_NO_HANDSHAKE', `operation from epoch ${req.epoch}, peer is at epoch ${epoch}: handshake first`);
  if (req.mount !== owner) return new MirrorError('MFS_NOT_OWNER', `operation from mount ${req.mount}, peer is owned by ${owner} at epoch ${epoch}`);
  return null;
}

/** Refuse an operation whose stamp is not the current owner's epoch. */
export function checkOwnership(peer: PeerContext, req: { mount: string; epoch: number }): void {
  const refusal = ownershipRefusal(peer.state, peer.fencedDownstream.get(req.mount), req);
  if (refusal) throw refusal;
}

/** Why a handshake is refused (an older epoch, or the same epoch held by another mount), or null. */
export function handshakeRefusal(now: OwnerSnapshot, req: { mount: string; epoch: number }): MirrorError | null {
  const { epoch, owner, ownerSince } = now;
  if (req.epoch < epoch) {
    return new MirrorError('MFS_FENCED', `epoch ${req.epoch} is older than this peer's epoch ${epoch} (owned by ${owner} since ${ownerSince})`);
  }
  if (req.epoch === epoch && owner !== null && owner !== req.mount) {
    return new MirrorError('MFS_NOT_OWNER', `peer is owned by mount ${owner} since ${ownerSince} at epoch ${epoch}`);
  }
  return null;
}

/** Make the mount the owner at its epoch (durably, when that changes), or refuse it. The caller holds the namespace lock exclusively. */
export function handshake(peer: PeerContext, req: Extract<ControlRequest, { op: 'handshake' }>): HandshakeResult {
  const refusal = handshakeRefusal(peer.state, req);
  if (refusal) throw refusal;
  const { epoch, owner } = peer.state;
  peer.leaseAt = performance.now(); // a handshake is a renewal: the new owner is alive
  if (req.epoch !== epoch || owner !== req.mount) {
    peer.state.setOwner(req.epoch, req.mount);
    peer.log.info({ epoch: req.epoch, owner: req.mount }, 'ownership established');
  }
  peer.inodeIds ??= peer.tree === null || canKeepInodeIds(peer.tree.root);
  return { protocol: PROTOCOL_VERSION, peer: { name: peer.opts.name, id: peer.state.peerId }, epoch: peer.state.epoch, owner: peer.state.owner, inodeIds: peer.inodeIds, unclean: peer.state.unclean };
}
