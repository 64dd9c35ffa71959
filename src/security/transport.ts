import http2, { type ClientHttp2Session, type ClientSessionOptions, type Http2SecureServer, type Http2Server, type Http2Session, type ServerOptions } from 'node:http2';
import tls, { type TLSSocket } from 'node:tls';
import { MirrorError } from '../protocol/errors.js';
import type { Identity } from './identity.js';
import { presentedFingerprint, type Trust, type TrustVerdict } from './trust.js';
import { ALL_ROLES } from './roles.js';
import { Refusal } from '../refusal.js';

/**
 * How a node talks HTTP/2: over mutual TLS (the default: it presents its
 * identity and lets in, or talks to, only nodes its trust accepts), or in
 * cleartext, only when an operator asked for it with --insecure-cleartext.
 */
export type Transport =
  | { kind: 'tls'; identity: Identity; trust: Trust }
  | { kind: 'cleartext' };

export const CLEARTEXT: Transport = { kind: 'cleartext' };

/** The URL scheme a transport uses. */
export function schemeOf(t: Transport): 'https' | 'http' {
  return t.kind === 'tls' ? 'https' : 'http';
}

/**
 * Refuse a URL whose scheme does not match the transport, saying what to do:
 * a cleartext URL is never used silently by a node running TLS, nor the reverse.
 */
export function checkScheme(url: string, t: Transport, what: string): void {
  const scheme = url.slice(0, url.indexOf(':'));
  if (scheme === schemeOf(t)) return;
  if (scheme === 'http') throw new Refusal('TRANSPORT_MISMATCH', `${what}: ${url} is cleartext HTTP/2; use https://, or pass --insecure-cleartext on every node (unauthenticated, unencrypted: for tests on one machine only)`);
  if (scheme === 'https') throw new Refusal('TRANSPORT_MISMATCH', `${what}: ${url} is TLS, but this node runs with --insecure-cleartext; use http:// or drop the flag`);
  throw new Refusal('TRANSPORT_MISMATCH', `${what}: ${url}: expected https://HOST:PORT`);
}

/**
 * Open one HTTP/2 client session. Over TLS the handshake is finished and the
 * server's certificate judged before HTTP/2 starts, so nothing (not even the
 * token in the first request's headers) reaches a server this node does not
 * trust. Bounded by timeoutMs.
 */
export async function openSession(origin: string, t: Transport, options: ClientSessionOptions, timeoutMs: number, peerName: string): Promise<ClientHttp2Session> {
  if (t.kind === 'cleartext') return http2.connect(origin, options);
  const url = new URL(origin);
  const host = url.hostname.replace(/^\[|\]$/g, ''); // an IPv6 literal comes bracketed
  const socket = tls.connect({
    host,
    port: Number(url.port || 443),
    servername: isIpAddress(host) ? undefined : host,
    ALPNProtocols: ['h2'],
    secureContext: clientContext(t),
    // Pinned self-signed certificates do not chain to a CA: the chain and the name are judged below, by Trust.
    rejectUnauthorized: false,
  });
  socket.setNoDelay(true);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new MirrorError('MFS_TIMEOUT', `TLS handshake with peer ${peerName} (${origin}) did not finish within ${timeoutMs} ms`, { context: { peer: peerName } })), timeoutMs);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err: Error & { code?: string }) => {
        clearTimeout(timer);
        const hint = /wrong version number|WRONG_VERSION_NUMBER/.test(`${err.code} ${err.message}`)
          ? ' (it does not speak TLS: a peer started with --insecure-cleartext? then this node needs the flag and http:// too)'
          : '';
        reject(new MirrorError('MFS_UNREACHABLE', `peer ${peerName} unreachable (${origin}): ${err.code ?? ''} ${err.message}${hint}`.replace(/\s+/g, ' '), { context: { peer: peerName }, cause: err }));
      });
    });
    let verdict: TrustVerdict;
    try {
      verdict = t.trust.judge(socket);
    } catch (err) {
      throw new MirrorError('MFS_UNTRUSTED', `cannot judge peer ${peerName}'s certificate: ${(err as Error).message}`, { context: { peer: peerName } });
    }
    if (!verdict.trusted) {
      throw new MirrorError('MFS_UNTRUSTED', `peer ${peerName} (${origin}) presented certificate ${verdict.fingerprint ?? '(none)'}: ${verdict.why}. If that is the peer's new key, add the fingerprint to the trust file (docs/SECURITY.md, rotation); otherwise something between here and the peer is impersonating it`, { context: { peer: peerName } });
    }
    if (socket.alpnProtocol !== 'h2') throw new MirrorError('MFS_BAD_RESPONSE', `peer ${peerName} (${origin}) does not speak HTTP/2 over TLS (ALPN ${String(socket.alpnProtocol)})`, { context: { peer: peerName } });
  } catch (err) {
    socket.destroy();
    throw err;
  }
  return http2.connect(origin, { ...options, createConnection: () => socket });
}

/**
 * One client TLS context per identity and CA, made once: building one parses
 * the key and certificates (about 10 ms of CPU here), and a node reconnects
 * often while a peer is down.
 */
const clientContexts = new WeakMap<Identity, { ca: Buffer | undefined; context: tls.SecureContext }>();

function clientContext(t: Extract<Transport, { kind: 'tls' }>): tls.SecureContext {
  const cached = clientContexts.get(t.identity);
  if (cached && cached.ca === t.trust.ca) return cached.context;
  const context = tls.createSecureContext({ key: t.identity.key, cert: t.identity.cert, ca: t.trust.ca, minVersion: 'TLSv1.3' });
  clientContexts.set(t.identity, { ca: t.trust.ca, context });
  return context;
}

/**
 * The server side: an HTTP/2 server over mutual TLS (the client must present
 * a certificate its trust accepts; judged per session, see sessionVerdict) or
 * in cleartext.
 */
export function createServer(t: Transport, options: ServerOptions, handshakeTimeoutMs?: number): Http2Server | Http2SecureServer {
  if (t.kind === 'cleartext') return http2.createServer(options);
  return http2.createSecureServer({
    ...options,
    // A connection that never finishes TLS is closed after this (Node's default: two minutes).
    ...(handshakeTimeoutMs === undefined ? {} : { handshakeTimeout: handshakeTimeoutMs }),
    key: t.identity.key,
    cert: t.identity.cert,
    ca: t.trust.ca,
    requestCert: true,
    // Judged per session by Trust (pins need no chain); an untrusted client gets MFS_AUTH_CERT answers, not a silent reset.
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
    allowHTTP1: false,
  });
}

const CLEARTEXT_VERDICT: SessionVerdict = { trusted: true, fingerprint: null, why: 'cleartext', roles: ALL_ROLES, generation: 0, der: null };

/** A verdict on a session's client, the trust generation it was judged under, and its certificate (DER; null in cleartext). */
export type SessionVerdict = TrustVerdict & { generation: number; der: Buffer | null };

/**
 * Judge the client of a server session (always trusted over cleartext: there
 * is nothing to judge), again whenever the trust file changed since `cached`
 * was judged: a fingerprint removed cuts off connections already open.
 */
export function sessionVerdict(t: Transport, session: Http2Session, cached: SessionVerdict | undefined): SessionVerdict {
  if (t.kind === 'cleartext') return CLEARTEXT_VERDICT;
  const socket = session.socket as TLSSocket;
  try {
    const generation = t.trust.currentGeneration();
    if (cached && cached.generation === generation) return cached;
    const verdict = t.trust.judge(socket);
    return { ...verdict, generation: t.trust.generation, der: verdict.trusted ? socket.getPeerCertificate().raw : null };
  } catch (err) {
    // Refuse (fail closed) but keep the fingerprint: the client is told its certificate, the reason stays in the peer's log.
    return { trusted: false, fingerprint: presentedFingerprint(socket), why: `the trust file cannot be read: ${(err as Error).message}`, roles: new Set(), generation: -1, der: null };
  }
}

function isIpAddress(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':');
}
