import { MirrorError } from '../protocol/errors.js';
import type { ControlRequest, HandshakeResult } from '../protocol/ops.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { canKeepInodeIds } from '../store/inode-ids.js';
import type { PeerContext } from './context.js';
import type { Principal } from './principal.js';
import { X509Certificate } from 'node:crypto';
import { handshakeProofRefusal } from '../security/handshake-proof.js';

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

/** The newest epoch a peer that never had an owner accepts: it joins a set at that set's epoch, but not at an absurd one. */
export const MAX_FIRST_EPOCH = 2 ** 31 - 1;

/**
 * Why a handshake is refused, or null. Refused: an older epoch; the same epoch
 * held by another mount, or taken by another certificate; an epoch more than
 * one ahead of this peer's (MFS_EPOCH_SKIP: the client steps through the ones
 * between, so every epoch this peer holds was taken by a certificate that had
 * the right to); a first epoch past MAX_FIRST_EPOCH. `key`: the certificate
 * asking (null in cleartext).
 */
export function handshakeRefusal(now: OwnerSnapshot & { ownerKey: string | null }, req: { mount: string; epoch: number }, key: string | null): MirrorError | null {
  const { epoch, owner, ownerSince, ownerKey } = now;
  if (req.epoch < epoch) {
    return new MirrorError('MFS_FENCED', `epoch ${req.epoch} is older than this peer's epoch ${epoch} (owned by ${owner} since ${ownerSince})`);
  }
  if (req.epoch === epoch && owner !== null && owner !== req.mount) {
    return new MirrorError('MFS_NOT_OWNER', `peer is owned by mount ${owner} since ${ownerSince} at epoch ${epoch}`);
  }
  if (req.epoch === epoch && ownerKey !== null && key !== null && key !== ownerKey) {
    return new MirrorError('MFS_NOT_OWNER', `epoch ${epoch} was taken by certificate ${ownerKey}, not ${key}: another certificate takes over at the next epoch (mount --takeover)`);
  }
  if (owner === null && req.epoch > MAX_FIRST_EPOCH) {
    return new MirrorError('MFS_MALFORMED', `epoch ${req.epoch} is past ${MAX_FIRST_EPOCH}, the newest a peer that never had an owner accepts`);
  }
  if (owner !== null && req.epoch > epoch + 1) {
    return new MirrorError('MFS_EPOCH_SKIP', `epoch ${req.epoch} is more than one past this peer's epoch ${epoch}: a peer advances one epoch per handshake`);
  }
  return null;
}

/**
 * Make the mount the owner at its epoch (durably, when that changes), bound
 * to the certificate that asked (authorization.ts), or refuse it. The caller
 * holds the namespace lock exclusively.
 */
export function handshake(peer: PeerContext, req: Extract<ControlRequest, { op: 'handshake' }>, asker: Principal): HandshakeResult {
  const refusal = handshakeRefusal(peer.state, req, asker.fingerprint);
  if (refusal) throw refusal;
  const proof = checkProof(req, asker);
  const { epoch, owner, ownerKey } = peer.state;
  peer.leaseAt = performance.now(); // a handshake is a renewal: the new owner is alive
  const key = asker.fingerprint !== null && asker.der !== null ? { fingerprint: asker.fingerprint, der: asker.der.toString('base64'), proof } : null;
  if (req.epoch !== epoch || owner !== req.mount || (ownerKey === null && key !== null)) {
    peer.state.setOwner(req.epoch, req.mount, key);
    peer.log.info({ epoch: req.epoch, owner: req.mount, certificate: key?.fingerprint ?? null, via: asker.via?.fingerprint ?? null }, 'ownership established');
  }
  if (asker.via?.fingerprint) {
    // This relay may pass on the owner's changes for this epoch (authorization.ts); older epochs are done.
    for (const e of peer.provenRelays.keys()) if (e !== req.epoch) peer.provenRelays.delete(e);
    let relays = peer.provenRelays.get(req.epoch);
    if (!relays) peer.provenRelays.set(req.epoch, (relays = new Set()));
    relays.add(asker.via.fingerprint);
  }
  peer.inodeIds ??= peer.tree === null || canKeepInodeIds(peer.tree.root);
  return { protocol: PROTOCOL_VERSION, peer: { name: peer.opts.name, id: peer.state.peerId }, epoch: peer.state.epoch, owner: peer.state.owner, inodeIds: peer.inodeIds, unclean: peer.state.unclean };
}

/**
 * The owner's signature on the handshake (security/handshake-proof.ts): needed
 * when a relay passes it on, since the relay only names the owner's (public)
 * certificate; checked when given directly too, and kept, so this peer can
 * pass it on if it is a relay. Returns the proof to keep (null: none given).
 */
function checkProof(req: Extract<ControlRequest, { op: 'handshake' }>, asker: Principal): string | null {
  if (asker.der === null) return null; // cleartext: nothing to check against
  if (req.proof === undefined) {
    if (asker.via !== null) throw new MirrorError('MFS_ROLE', `relay ${asker.via.fingerprint} passed on a handshake for certificate ${asker.fingerprint} without that owner's signature: a relay cannot take a peer for anyone`);
    return null;
  }
  const why = handshakeProofRefusal(req.proof, req.mount, req.epoch, new X509Certificate(asker.der));
  if (why !== null) throw new MirrorError(asker.via !== null ? 'MFS_ROLE' : 'MFS_MALFORMED', `handshake of mount ${req.mount} at epoch ${req.epoch}: ${why}`);
  return req.proof;
}
