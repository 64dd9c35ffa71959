import { MirrorError } from '../protocol/errors.js';
import { isMutation, readSchemas, type Request } from '../protocol/ops.js';
import { OWNER_ROLES, READER_ROLES, describeRoles, hasAny, type Role } from '../security/roles.js';
import type { PeerContext } from './context.js';
import { judgeOrigin, type Principal } from './principal.js';

/**
 * What each role may ask of a peer (docs/SECURITY.md, "Roles"), checked
 * before an operation runs. Trust says who a client is; this says what it may
 * do. Ownership is bound to the certificate that took the epoch: another
 * trusted key cannot act as the owner by quoting its mount id and epoch.
 */

/** Operations stamped with the owner's (mount, epoch): only the owner, or a relay passing on the owner's, may send them. */
const OWNER_OPS: ReadonlySet<string> = new Set(['lease', 'reconciled', 'settle', 'clean', 'repairing', 'adopt', 'repair', 'pull', 'resend']);
/** Bookkeeping reads a relay makes of its next hop, and a reader may look at. */
const INFO_OPS: ReadonlySet<string> = new Set(['progress', 'history', 'committed']);
const INFO_ROLES: readonly Role[] = [...READER_ROLES, 'relay'];
/** What a pull ticket opens. */
const READ_OPS: ReadonlySet<string> = new Set(Object.keys(readSchemas));
/** The durability barrier: on the write path, from the owner or a relay. */
const FSYNC_ROLES: readonly Role[] = [...OWNER_ROLES, 'relay'];

/** Refuse a request its principal's roles do not allow. */
export function authorize(peer: PeerContext, p: Principal, req: Request): void {
  if (isMutation(req) || OWNER_OPS.has(req.op)) return authorizeOwner(peer, p, req as Request & { mount: string; epoch: number });
  if (p.ticketed) {
    // A pulling peer admitted by its owner's ticket reads, and nothing else.
    if (!READ_OPS.has(req.op)) throw refusal(p, `${req.op} with a pull ticket (it opens reads only)`);
    return authorizeRead(p, req.op);
  }
  if (req.op === 'handshake') {
    if (p.via !== null && !p.via.roles.has('relay')) throw refusal(p, 'a handshake passed on by a certificate that is not a relay');
    if (!hasAny(p.roles, OWNER_ROLES)) throw refusal(p, 'a handshake (taking ownership): only a mount or standby certificate may');
    return; // a relay's must carry the owner's signature too (ownership.ts)
  }
  if (req.op === 'fsync') {
    if (!hasAny(p.roles, FSYNC_ROLES) && !p.via?.roles.has('relay')) throw refusal(p, 'fsync');
    return;
  }
  if (INFO_OPS.has(req.op)) {
    if (!hasAny(p.roles, INFO_ROLES)) throw refusal(p, req.op);
    return;
  }
  authorizeRead(p, req.op);
}

/** Reads of the tree (files, listings, the manifest): a mount, standby or reader, or a relay or peer acting for one. */
export function authorizeRead(p: Principal, what: string): void {
  if (!hasAny(p.roles, READER_ROLES)) throw refusal(p, `${what} (reading the tree)`);
}

/**
 * An owner-stamped operation: from the certificate that took the epoch (still
 * a mount or standby here), or from a relay that passed that owner's signed
 * handshake on to this peer for this epoch (on its call channel, or naming the
 * owner as its origin). Stamps of another epoch or mount pass here and are
 * refused by ownership.ts.
 */
function authorizeOwner(peer: PeerContext, p: Principal, req: { op: string; mount: string; epoch: number }): void {
  const { ownerKey, owner, epoch } = peer.state;
  const relay = p.via !== null ? (p.via.roles.has('relay') ? p.via.fingerprint : null) : p.roles.has('relay') ? p.fingerprint : null;
  if (p.via !== null && relay === null) throw refusal(p, `${req.op} passed on by a certificate that is not a relay`);
  const stampIsCurrent = req.mount === owner && req.epoch === epoch;
  if (ownerKey === null || p.fingerprint === null || !stampIsCurrent) {
    // Unbound (cleartext, or an epoch taken before ownership was bound) or not the current stamp: ownership.ts decides.
    if (!hasAny(p.roles, OWNER_ROLES) && relay === null) throw refusal(p, `${req.op} (changing or owning the peer)`);
    return;
  }
  if (p.via === null && p.fingerprint === ownerKey) {
    if (!hasAny(p.roles, OWNER_ROLES)) throw refusal(p, `${req.op} (it took epoch ${epoch}, but is no longer a mount or standby here)`);
    return;
  }
  if (relay !== null && (p.via === null || p.fingerprint === ownerKey)) {
    if (!peer.provenRelays.get(epoch)?.has(relay)) {
      // The forwarder answers this by passing the owner's signed handshake on again (forwarder.ts).
      throw new MirrorError('MFS_NO_HANDSHAKE', `relay ${relay} has not passed on the owner's signed handshake for epoch ${epoch} here: handshake first`);
    }
    // Only while the certificate that took the epoch is still trusted here as an owner.
    const der = peer.state.ownerCertNow;
    if (der !== null) {
      const verdict = judgeOrigin(peer, der, Buffer.from(der, 'base64'));
      if (!verdict.trusted || !hasAny(verdict.roles, OWNER_ROLES)) {
        throw new MirrorError('MFS_ROLE', `the certificate that took epoch ${epoch} (${ownerKey}) is no longer trusted here as a mount or standby (${verdict.why}); a relay cannot pass on its changes`);
      }
    }
    return;
  }
  if (!hasAny(p.roles, OWNER_ROLES) && relay === null) throw refusal(p, `${req.op} (changing or owning the peer)`);
  throw new MirrorError('MFS_NOT_OWNER', `mount ${owner} took epoch ${epoch} with certificate ${ownerKey}; this ${req.op} comes from certificate ${p.fingerprint}, which did not`);
}

function refusal(p: Principal, what: string): MirrorError {
  const who = p.via ? `certificate ${p.fingerprint} (${describeRoles(p.roles)}, acted for by ${p.via.fingerprint})` : `certificate ${p.fingerprint} (${describeRoles(p.roles)})`;
  return new MirrorError('MFS_ROLE', `${who} may not ask for ${what}: give it the role in this peer's trust file (roles=..., docs/SECURITY.md)`);
}
