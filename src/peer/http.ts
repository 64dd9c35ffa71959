import http2, { type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { MAX_FRAME_BYTES, decodeFrame, encodeError, encodeFrameParts, encodeResponseParts, writeParts, type ResponseHeader } from '../protocol/codec.js';
import { MirrorError, toMirrorError } from '../protocol/errors.js';
import { requestSchema, type Request } from '../protocol/ops.js';
import { PROTOCOL_HEADER, PROTOCOL_VERSION } from '../protocol/version.js';
import { ndjsonEndLine } from '../protocol/ndjson-end.js';

/** The peer's HTTP/2 answers and request bodies: how frames, JSON and NDJSON go out, and how a call comes in. */

const FRAME_TYPE = 'application/x-mirrorfs-frame';
/** How long a closing channel or session may take to hand over its last bytes before it is destroyed. */
export const CHANNEL_FLUSH_MS = 2000;

/**
 * Answer with a frame whose header is an outcome ({ok, result} or {ok: false, error}).
 * Returns the errno of an error answer sent in its place when the outcome could not be
 * encoded (for the metrics), else null.
 */
export function respondFrame(stream: ServerHttp2Stream, outcome: unknown, payload?: Buffer): string | null {
  if (stream.destroyed) return null;
  // Encoded before the status goes out: an answer that cannot be encoded becomes an error answer, not a cut stream.
  const { parts, failed } = answerParts(outcome, payload);
  stream.respond({ ':status': 200, 'content-type': FRAME_TYPE, [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) });
  writeParts(stream, parts);
  return failed;
}

/** The errno of an error outcome ({ok: false}), for the metrics; null for a success. */
export function outcomeErrno(result: unknown): string | null {
  const outcome = result as { ok?: boolean; error?: { errno?: string } };
  return outcome.ok === false ? (outcome.error?.errno ?? 'EIO') : null;
}

/** Close a session gracefully, destroyed if it still lingers after CHANNEL_FLUSH_MS. */
export function endSession(session: Http2Session): void {
  if (session.closed || session.destroyed) return;
  session.close();
  setTimeout(() => session.destroy(), CHANNEL_FLUSH_MS).unref();
}

/** An outcome's answer frame, or an error frame in its place when it cannot be encoded (`failed`: that errno). */
export function answerParts(outcome: unknown, payload?: Buffer): { parts: Buffer[]; failed: string | null } {
  try {
    return { parts: encodeResponseParts(outcome as ResponseHeader, payload), failed: null };
  } catch (err) {
    const e = toMirrorError(err, {});
    return { parts: encodeFrameParts({ ok: false, error: e.toWire() }), failed: e.errno };
  }
}

/** A call's frame decoded and its request validated (MFS_MALFORMED says what is wrong). */
export function decodeCall(body: Buffer): { req: Request; payload: Buffer } {
  const frame = decodeFrame(body);
  const parsed = requestSchema.safeParse(frame.header);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MirrorError('MFS_MALFORMED', `invalid request: ${issue ? `${issue.path.join('.') || 'op'}: ${issue.message}` : 'unknown'}`);
  }
  return { req: parsed.data as Request, payload: frame.payload };
}

export function respondJson(stream: ServerHttp2Stream, body: unknown): void {
  stream.respond({ ':status': 200, 'content-type': 'application/json', [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) });
  stream.end(JSON.stringify(body));
}

/** The status line of an answer in newline-delimited JSON (a manifest); the lines follow with writeNdjson. */
export function respondNdjson(stream: ServerHttp2Stream): void {
  stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson', [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) });
}

/**
 * One JSON line per entry, then the end line (protocol/ndjson-end.ts), at the pace the client reads (a manifest can be
 * long: nothing is buffered beyond the stream's window). Stops when the stream
 * is gone, also while it waits for the client to read (a stream closed or reset
 * then never drains, and the walk holds the shared namespace lock); the caller ends it.
 */
export async function writeNdjson(stream: ServerHttp2Stream, entries: Iterable<unknown> | AsyncIterable<unknown>): Promise<void> {
  let lines = 0;
  for await (const entry of entries) {
    if (stream.destroyed || stream.closed) return;
    lines++;
    if (!stream.write(`${JSON.stringify(entry)}\n`)) await drainedOrGone(stream);
  }
  // Only a complete answer says so (protocol/ndjson-end.ts): one cut short by a failure above has no end line.
  if (!stream.destroyed && !stream.closed) stream.write(ndjsonEndLine(lines));
}

/** Resolves when the stream can take more, or is closed: whichever comes first. */
function drainedOrGone(stream: ServerHttp2Stream): Promise<void> {
  if (stream.destroyed || stream.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

export function respondError(stream: ServerHttp2Stream, err: MirrorError): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    // A reset the reader sees as one (RST_STREAM INTERNAL_ERROR): close(code) would end the
    // answer first, and a manifest cut short would pass for a whole one.
    stream.destroy(err);
    return;
  }
  stream.respond({ ':status': err.httpStatus, 'content-type': FRAME_TYPE, [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) });
  stream.end(encodeError(err));
}

/** Read a request body, refusing (before buffering it) anything over the frame limit. */
export function readBody(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<Buffer> {
  const declared = Number(headers['content-length'] ?? NaN);
  if (declared > MAX_FRAME_BYTES) {
    return Promise.reject(new MirrorError('MFS_TOO_LARGE', `body of ${declared} bytes exceeds the limit of ${MAX_FRAME_BYTES}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FRAME_BYTES) {
        stream.removeAllListeners('data');
        stream.pause();
        reject(new MirrorError('MFS_TOO_LARGE', `body exceeds the limit of ${MAX_FRAME_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    stream.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    stream.once('aborted', () => reject(new MirrorError('MFS_MALFORMED', 'request aborted by the client')));
  });
}
