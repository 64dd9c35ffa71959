import type { Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { encodeError } from '../protocol/codec.js';
import { MirrorError, toMirrorError } from '../protocol/errors.js';
import { isMutation, type Request } from '../protocol/ops.js';
import { H2_MAX_CONCURRENT_STREAMS, ROUTES } from '../protocol/version.js';
import { admit, checkTrusted, refuseStream } from './admission.js';
import { authorize } from './authorization.js';
import { sessionPrincipal } from './principal.js';
import { ServedChannel } from './channel.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, type PeerContext } from './context.js';
import { mutate } from './exactly-once.js';
import { resend } from './resend.js';
import { control } from './control.js';
import { answerParts, decodeCall, endSession, outcomeErrno, readBody } from './http.js';

/**
 * How calls arrive: changes on a call channel (many calls on one long-lived
 * stream, channel.ts), everything else as one request per stream. Both count
 * each call in the metrics.
 */

/** Answers a channel holds for a client that does not read them before it stops reading calls. */
const CHANNEL_UNSENT_BYTES = 8 * 1024 * 1024;

/** Run one decoded operation and answer it on its stream; resolves with the errno of an error outcome (null: it succeeded). */
export type Dispatch = (stream: ServerHttp2Stream, req: Request, payload: Buffer) => Promise<string | null>;

/** A call channel: admitted once (the certificate is judged again for each call), then each envelope is a call. */
export function openChannel(peer: PeerContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  try {
    admit(peer, stream, headers);
  } catch (err) {
    return refuseStream(peer, stream, err);
  }
  // One channel per connection, so the bound on calls at once is per connection as it was with
  // a stream each. A client opens another only when it is done with the first: the older goes.
  for (const old of peer.channels) if (old.session === stream.session) old.close();
  const channel = new ServedChannel(stream, (frame, ch) => answerChannelCall(peer, frame, ch), {
    maxInFlight: H2_MAX_CONCURRENT_STREAMS,
    maxUnsentBytes: CHANNEL_UNSENT_BYTES,
    stallMs: peer.opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    logger: peer.log,
    framePool: peer.forwarder ? undefined : peer.frameBuffers,
  });
  peer.channels.add(channel);
  stream.once('close', () => peer.channels.delete(channel));
}

/** Close a session (idle, or refused for its certificate): its channel first, then the session, destroyed if it lingers. */
export function closeSession(peer: PeerContext, session: Http2Session): void {
  for (const channel of peer.channels) if (channel.session === session) channel.close();
  endSession(session);
}

/** One call from a channel: a change only (answers to reads may be large; they keep a stream each). Never rejects. */
async function answerChannelCall(peer: PeerContext, frame: Buffer, channel: ServedChannel): Promise<Buffer[]> {
  const session = channel.session;
  peer.inFlight++;
  peer.channelCalls++;
  let op: string | null = null;
  const started = performance.now();
  try {
    if (peer.shuttingDown) throw new MirrorError('MFS_SHUTTING_DOWN');
    checkTrusted(peer, session);
    const { req, payload } = decodeCall(frame);
    op = req.op;
    const principal = sessionPrincipal(peer, session);
    authorize(peer, principal, req);
    let result: unknown;
    if (req.op === 'fsync') result = { ok: true, result: await control(peer, req, session, principal) }; // the durability barrier: on the write path
    else if (req.op === 'resend') result = { ok: true, result: await resend(peer, req, payload, session) }; // catch-up's changes, many to a call
    else if (!isMutation(req)) throw new MirrorError('MFS_MALFORMED', `only changes, resend and fsync travel on the call channel, not ${req.op}: send it to ${ROUTES.call}`);
    else result = (await mutate(peer, req, payload, session)).result;
    const { parts, failed } = answerParts(result);
    const errno = failed ?? outcomeErrno(result);
    peer.metrics.observe(op, (performance.now() - started) / 1000, errno === null && req.op === 'write' ? payload.length : 0, errno);
    return parts;
  } catch (err) {
    const e = toMirrorError(err, {});
    if (e.code === 'MFS_INTERNAL') peer.log.error({ err }, 'internal error handling a channel call');
    else if (e.code === 'MFS_TIMEOUT') peer.log.warn({ err: e.message }, 'channel call refused: it waited too long (see the message)');
    if (op !== null) peer.metrics.observe(op, (performance.now() - started) / 1000, 0, e.errno);
    if (e.httpStatus !== 200) peer.metrics.refused(e.code, e.errno);
    if (session && peer.refusedSessions.has(session)) {
      // Refused for its certificate: this call is answered, then the channel ends with the same reason and the connection is closed.
      setImmediate(() => {
        channel.refuse(e); // resets the channel itself if the client does not close it
        endSession(session);
      });
    }
    return [encodeError(e)];
  } finally {
    peer.inFlight--;
  }
}

/** One call on its own stream (POST /v1/call): its body read and decoded, then run by `dispatch`. */
export async function handleCall(peer: PeerContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, dispatch: Dispatch): Promise<void> {
  const { req, payload } = decodeCall(await readBody(stream, headers));
  const started = performance.now();
  const written = req.op === 'write' ? payload.length : 0;
  try {
    const errno = await dispatch(stream, req, payload);
    peer.metrics.observe(req.op, (performance.now() - started) / 1000, errno === null ? written : 0, errno);
  } catch (err) {
    peer.metrics.observe(req.op, (performance.now() - started) / 1000, 0, toMirrorError(err, {}).errno);
    throw err;
  }
}
