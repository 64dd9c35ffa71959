import type { Http2Session, IncomingHttpHeaders } from 'node:http2';
import { MirrorError } from '../protocol/errors.js';
import { ORIGIN_HEADER } from '../protocol/version.js';
import { describeRoles, type Roles } from '../security/roles.js';
import type { TrustVerdict } from '../security/trust.js';
import { verdictOf } from './admission.js';
import type { PeerContext } from './context.js';

/**
 * Who a request acts as. Usually the client's own certificate; a relay passing
 * on what a mount asked, or a peer pulling for its owner, names that
 * certificate in `mirrorfs-origin` (DER, base64), and this peer judges it by
 * its own trust: a key the relay trusts but this peer does not gets nothing
 * here (docs/SECURITY.md, "No trust through a relay").
 */
export interface Principal {
  /** The certificate acted as (null in cleartext). */
  fingerprint: string | null;
  /** Its roles here. */
  roles: Roles;
  /** Its certificate, DER (null in cleartext): what a relay names when it passes the request on. */
  der: Buffer | null;
  /** The client's own certificate when it acts for another (a relay, a pulling peer); null when it acts for itself. */
  via: { fingerprint: string | null; roles: Roles } | null;
  /** Admitted by its owner's pull ticket instead of the token: it may read, nothing else (authorization.ts). */
  ticketed: boolean;
}

/** An origin certificate is at most this long (base64): a P-256 self-signed one is about 700 bytes. */
const MAX_ORIGIN_CHARS = 16 * 1024;
/** Origins judged under the current trust generation, kept for the relays' and pulls' next requests. */
const ORIGINS_CACHED = 64;

/** The principal of a session (a call channel carries no origin: a relay's changes act as the relay). */
export function sessionPrincipal(peer: PeerContext, session: Http2Session | undefined): Principal {
  if (!session) return { fingerprint: null, roles: new Set(), der: null, via: null, ticketed: false };
  const v = verdictOf(peer, session);
  return { fingerprint: v.fingerprint, roles: v.roles, der: v.der, via: null, ticketed: false };
}

/**
 * The principal of one request on its own stream: the session's, or the
 * origin it names. A relay may name one; a peer only with its owner's pull
 * ticket (`ticketed`: admission.ts checked it, and the origin is the owner).
 */
export function requestPrincipal(peer: PeerContext, session: Http2Session | undefined, headers: IncomingHttpHeaders, ticketed: boolean): Principal {
  const own = sessionPrincipal(peer, session);
  const origin = headers[ORIGIN_HEADER];
  // In cleartext nothing is judged: there is no certificate to name.
  if (origin === undefined || peer.opts.transport.kind === 'cleartext') return own;
  if (!own.roles.has('relay') && !(ticketed && own.roles.has('peer'))) {
    throw new MirrorError('MFS_ROLE', `certificate ${own.fingerprint} (${describeRoles(own.roles)}) may not act for another certificate: only a relay may, or a peer with its owner's pull ticket (docs/SECURITY.md, roles)`);
  }
  if (typeof origin !== 'string' || origin.length > MAX_ORIGIN_CHARS) throw new MirrorError('MFS_MALFORMED', `${ORIGIN_HEADER}: one base64 certificate of at most ${MAX_ORIGIN_CHARS} characters`);
  const der = Buffer.from(origin, 'base64');
  const verdict = judgeOrigin(peer, origin, der);
  if (!verdict.trusted) {
    throw new MirrorError('MFS_ROLE', `certificate ${own.fingerprint} acts for certificate ${verdict.fingerprint ?? '(unreadable)'}, which this peer does not trust (${verdict.why}): nothing passes through a relay or a pull that this peer would not let in itself`);
  }
  return { fingerprint: verdict.fingerprint, roles: verdict.roles, der, via: { fingerprint: own.fingerprint, roles: own.roles }, ticketed };
}

/** Judge a certificate by this peer's trust (cached per trust generation). */
export function judgeOrigin(peer: PeerContext, key: string, der: Buffer): TrustVerdict {
  const t = peer.opts.transport;
  if (t.kind === 'cleartext') return { trusted: true, fingerprint: null, why: 'cleartext', roles: new Set() };
  const generation = t.trust.currentGeneration();
  if (peer.origins.generation !== generation) {
    peer.origins.generation = generation;
    peer.origins.verdicts.clear();
  }
  let verdict = peer.origins.verdicts.get(key);
  if (!verdict) {
    verdict = t.trust.judgeCertificate(der);
    if (peer.origins.verdicts.size >= ORIGINS_CACHED) peer.origins.verdicts.delete(peer.origins.verdicts.keys().next().value!);
    peer.origins.verdicts.set(key, verdict);
  }
  return verdict;
}
