import type { Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { MirrorError, toMirrorError } from '../protocol/errors.js';
import { X509Certificate } from 'node:crypto';
import { H2_CONNECTION_WINDOW_BYTES, ORIGIN_HEADER, PROTOCOL_HEADER, PROTOCOL_VERSION, TICKET_HEADER } from '../protocol/version.js';
import { ticketRefusal } from '../security/pull-ticket.js';
import { sessionVerdict, type SessionVerdict } from '../security/transport.js';
import type { PeerContext } from './context.js';
import { respondError } from './http.js';

/** Who gets in: the client's certificate, the protocol version, the token (or a pull ticket); and how a refusal is answered. */

/**
 * Let a request (or a channel) in, or throw the refusal: shutting down,
 * certificate, protocol version, token (or a pull ticket: then it resolves
 * `{ ticketed: true }`, and the request may only read).
 */
export function admit(peer: PeerContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): { ticketed: boolean } {
  if (peer.shuttingDown) throw new MirrorError('MFS_SHUTTING_DOWN');
  // The certificate first: an untrusted client learns nothing, not even whether its token is right.
  checkTrusted(peer, stream.session);
  const version = headers[PROTOCOL_HEADER];
  if (version !== String(PROTOCOL_VERSION)) {
    throw new MirrorError('MFS_PROTOCOL_MISMATCH', `peer speaks mirrorfs protocol ${PROTOCOL_VERSION}, client sent ${version === undefined ? 'no version' : JSON.stringify(version)}; run the same mirrorfs version on both sides`);
  }
  const tokenRight = peer.auth.check(headers.authorization);
  const ticketed = !tokenRight && headers.authorization === undefined && ticketAdmits(peer, stream.session, headers);
  if (!tokenRight && !ticketed) {
    peer.log.warn({ path: headers[':path'] }, 'refused request with missing or wrong token');
    // Answered, then the connection is closed: it proved nothing, so it holds nothing.
    if (stream.session && !peer.admittedSessions.has(stream.session)) peer.refusedSessions.add(stream.session);
    throw new MirrorError('MFS_AUTH', 'missing or wrong token (Authorization: Bearer ...)');
  }
  const session = stream.session;
  if (session && !peer.admittedSessions.has(session)) {
    peer.admittedSessions.add(session);
    peer.connections.admitted(session.socket?.remoteAddress, session.socket?.remotePort);
    // Only now the large window: a connection that proved nothing may not have the peer buffer 64 MiB of it.
    session.setLocalWindowSize(H2_CONNECTION_WINDOW_BYTES);
  }
  return { ticketed };
}

/**
 * A peer pulling for this peer's owner shows the owner's ticket instead of
 * this peer's token (security/pull-ticket.ts): its certificate has the `peer`
 * role here, it names the owner's certificate as its origin, and the owner
 * signed the ticket for it, for this peer, at the current epoch.
 */
function ticketAdmits(peer: PeerContext, session: Http2Session | undefined, headers: IncomingHttpHeaders): boolean {
  const ticket = headers[TICKET_HEADER];
  if (typeof ticket !== 'string' || !session || peer.opts.transport.kind === 'cleartext') return false;
  const verdict = verdictOf(peer, session);
  const ownerCert = peer.state.ownerCertNow;
  let why: string | null;
  if (!verdict.roles.has('peer')) why = `certificate ${verdict.fingerprint} does not have the peer role here`;
  else if (ownerCert === null) why = 'this peer\'s epoch is not bound to a certificate (its owner handshook before ownership was bound, or in cleartext)';
  else if (headers[ORIGIN_HEADER] !== ownerCert) why = 'the request does not name this peer\'s owner as its origin';
  else why = ticketRefusal(ticket, { cert: new X509Certificate(Buffer.from(ownerCert, 'base64')), mount: peer.state.owner, epoch: peer.state.epoch, peerId: peer.state.peerId }, verdict.fingerprint);
  if (why !== null) peer.log.warn({ fingerprint: verdict.fingerprint, why }, 'refused a pull ticket');
  return why === null;
}

/** Refuse a session whose client certificate is not (or no longer) trusted. */
export function checkTrusted(peer: PeerContext, session: Http2Session | undefined): void {
  const verdict = session ? verdictOf(peer, session) : undefined;
  if (verdict?.trusted) return;
  // Answered, then the connection is closed: the client reconnects (and is judged again) on its next call.
  if (session) peer.refusedSessions.add(session);
  throw new MirrorError('MFS_AUTH_CERT', `this peer does not trust the client certificate ${verdict?.fingerprint ?? '(none)'}; add its fingerprint to the peer's trust file (docs/SECURITY.md)`);
}

/** A refusal answered on a request's own stream, counted; a session refused for its certificate is then closed. */
export function refuseStream(peer: PeerContext, stream: ServerHttp2Stream, err: unknown): void {
  const e = toMirrorError(err, {});
  if (e.code === 'MFS_INTERNAL') peer.log.error({ err }, 'internal error handling request');
  else if (e.code === 'MFS_TIMEOUT') peer.log.warn({ err: e.message }, 'request refused: it waited too long (see the message)');
  if (e.httpStatus !== 200) peer.metrics.refused(e.code, e.errno);
  respondError(stream, e);
  if (stream.session && peer.refusedSessions.has(stream.session)) stream.session.close();
}

/** Certificates already warned about for naming no roles (once per process each). */
const warnedUnnamed = new Set<string>();

/** The (possibly cached) verdict on a session's client; a new refusal is logged once. */
export function verdictOf(peer: PeerContext, session: Http2Session): SessionVerdict {
  const cached = peer.verdicts.get(session);
  const verdict = sessionVerdict(peer.opts.transport, session, cached);
  if (verdict !== cached) {
    peer.verdicts.set(session, verdict);
    if (verdict.trusted && verdict.rolesUnnamed && verdict.fingerprint !== null && !warnedUnnamed.has(verdict.fingerprint)) {
      warnedUnnamed.add(verdict.fingerprint);
      peer.log.warn({ fingerprint: verdict.fingerprint, why: verdict.why }, 'this certificate\'s trust line (or CA certificate) names no roles, so it may act in every role, a mount\'s too: name its roles (roles=mount|standby|relay|peer|reader, docs/SECURITY.md)');
    }
    if (!verdict.trusted) {
      const fields = { fingerprint: verdict.fingerprint, why: verdict.why, remote: session.socket?.remoteAddress };
      if (verdict.generation === -1) peer.log.error(fields, 'refusing a client: the trust file cannot be read');
      else peer.log.warn(fields, 'refusing a client whose certificate is not trusted');
    }
  }
  return verdict;
}
