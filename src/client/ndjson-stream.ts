import http2, { type ClientHttp2Stream } from 'node:http2';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { MirrorError } from '../protocol/errors.js';
import { ndjsonEndCount } from '../protocol/ndjson-end.js';

export interface NdjsonReadOptions {
  peer: string;
  what: string;
  /** Bound on each wait for the peer (its answer's start, then each piece), not on the whole answer: a manifest of a large tree takes minutes. */
  idleMs: number;
  /** The error an answer other than 200 stands for (its body holds the peer's error frame). */
  refusal: (body: Buffer, status: number) => Error;
  /** Stops the reading at once: the stream is cancelled and the read throws (it never looks like the end of the answer). */
  signal?: AbortSignal;
}

/** A refusal's body is one error frame: more than this is not read. */
const MAX_REFUSAL_BYTES = 64 * 1024;

/**
 * The most of an answer taken from the stream at once. A stream's own iterator takes all it
 * has buffered (`read()`), which for a reader slower than the peer is its whole HTTP/2 window:
 * a peer pulling a tree of a million files got one 32 MiB Buffer, decoded it into a 32 MiB
 * string and held both with the next pieces arriving, about 100 MiB above its usual peak
 * (a heap snapshot, session 21).
 */
export const PIECE_BYTES = 256 * 1024;

/**
 * Read an answer of JSON lines (a manifest) one line at a time as it
 * arrives, with HTTP/2 flow control holding the peer back while the caller
 * is busy: memory holds one piece of the answer, not the answer. Stopping
 * early (break, return) cancels the stream.
 */
export async function* readNdjson<T>(stream: ClientHttp2Stream, opts: NdjsonReadOptions): AsyncGenerator<T> {
  const context = { peer: opts.peer, op: opts.what };
  // An error while the caller works between two lines has no reader yet: the next read reports it (the stream keeps it).
  stream.on('error', () => undefined);
  const unreachable = (err: Error & { code?: string }) =>
    new MirrorError('MFS_UNREACHABLE', `peer ${opts.peer} unreachable for ${opts.what}: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' '), { context, cause: err });
  const iterator = boundedPieces(stream, PIECE_BYTES);
  const cancel = () => {
    if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
  };
  opts.signal?.addEventListener('abort', cancel, { once: true });
  // Not a MirrorError: nothing went wrong with the peer, the reader asked to stop.
  const stopped = () => Object.assign(new Error(`reading ${opts.what} from peer ${opts.peer} was stopped`), { name: 'AbortError' });
  const next = async (): Promise<IteratorResult<Buffer>> => {
    if (opts.signal?.aborted) throw stopped();
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new MirrorError('MFS_TIMEOUT', `peer ${opts.peer} sent nothing of ${opts.what} for ${opts.idleMs} ms`, { context })), opts.idleMs);
    });
    try {
      const piece = await Promise.race([iterator.next(), idle]);
      if (opts.signal?.aborted) throw stopped(); // a cancelled stream ends: that is not the end of the answer
      return piece;
    } catch (err) {
      if (opts.signal?.aborted) throw stopped();
      throw err instanceof MirrorError ? err : unreachable(err as Error);
    } finally {
      clearTimeout(timer);
    }
  };
  try {
    const status = await responseStatus(stream, opts.idleMs, context, unreachable);
    if (status !== 200) {
      const chunks: Buffer[] = [];
      let bytes = 0;
      for (let piece = await next(); !piece.done && bytes < MAX_REFUSAL_BYTES; piece = await next()) {
        chunks.push(piece.value);
        bytes += piece.value.length;
      }
      throw opts.refusal(Buffer.concat(chunks), status);
    }
    const decoder = new StringDecoder('utf8');
    let partial = '';
    // A manifest cut short must not pass for a whole one (what it lacks would look removed):
    // only its end line says it is complete (protocol/ndjson-end.ts).
    let lines = 0;
    let ended = false;
    const take = (line: string): { value: T } | null => {
      const value = parseLine<T>(line, context);
      if (ended) throw new MirrorError('MFS_BAD_RESPONSE', `peer ${opts.peer} sent more of ${opts.what} after its end line`, { context });
      const endCount = ndjsonEndCount(value);
      if (endCount === null) {
        lines++;
        return { value };
      }
      if (endCount !== lines) throw new MirrorError('MFS_BAD_RESPONSE', `peer ${opts.peer} ended ${opts.what} after ${lines} lines, saying ${endCount}`, { context });
      ended = true;
      return null;
    };
    for (let piece = await next(); !piece.done; piece = await next()) {
      const text = partial + decoder.write(piece.value);
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        if (nl > start) {
          const got = take(text.slice(start, nl));
          if (got) yield got.value;
        }
        start = nl + 1;
      }
      partial = text.slice(start);
    }
    await closed(stream);
    if (stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
      throw new MirrorError('MFS_UNREACHABLE', `peer ${opts.peer} cut ${opts.what} short (stream reset, code ${stream.rstCode})`, { context });
    }
    partial += decoder.end();
    if (partial.trim() !== '') {
      const got = take(partial);
      if (got) yield got.value;
    }
    // Ended like a finished answer, without saying so: a session torn down mid-answer resets its streams with NO_ERROR.
    if (!ended) throw new MirrorError('MFS_UNREACHABLE', `peer ${opts.peer} cut ${opts.what} short (no end line after ${lines} lines)`, { context });
  } finally {
    opts.signal?.removeEventListener('abort', cancel);
    cancel();
    // The pieces' reader stops listening to the stream (it is cancelled: nothing more comes).
    void iterator.return(undefined).catch(() => undefined);
  }
}

/**
 * The stream's bytes in pieces of at most `pieceBytes`, as its own async iterator gives them
 * otherwise: it ends when the stream ends ('end'), and throws what the stream failed with, a
 * close before its end included. The caller destroys the stream if it stops early.
 */
export async function* boundedPieces(stream: Readable, pieceBytes: number): AsyncGenerator<Buffer, void, undefined> {
  let wake: () => void = () => undefined;
  /** undefined while the stream runs; null once it ended; the error it failed with. */
  let outcome: Error | null | undefined;
  const settle = (result: Error | null): void => {
    if (outcome === undefined) outcome = result;
    wake();
  };
  const onReadable = (): void => wake();
  const onEnd = (): void => settle(null);
  const onError = (err: Error): void => settle(err);
  // Not node:stream's finished(): it judges a close by whether the HTTP/2 stream is closed, which
  // it may be while its last bytes still wait here, unread.
  const onClose = (): void => settle(stream.readableEnded ? null : (stream.errored ?? Object.assign(new Error('the stream closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })));
  stream.on('readable', onReadable);
  stream.once('end', onEnd);
  stream.on('error', onError);
  stream.once('close', onClose);
  // Begun on a stream that already ended, failed or closed: those events are gone, their outcome is not.
  if (stream.readableEnded) settle(null);
  else if (stream.errored) settle(stream.errored);
  else if (stream.destroyed) onClose();
  try {
    for (;;) {
      const buffered = stream.readableLength;
      // With nothing buffered, read() asks for more (and notices the end); it never takes more than a piece.
      const piece = stream.destroyed ? null : (stream.read(buffered > 0 ? Math.min(pieceBytes, buffered) : undefined) as Buffer | null);
      if (piece !== null) yield piece;
      else if (outcome instanceof Error) throw outcome;
      else if (outcome === null) return;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stream.off('readable', onReadable);
    stream.off('end', onEnd);
    stream.off('error', onError);
    stream.off('close', onClose);
  }
}

function parseLine<T>(line: string, context: { peer: string; op: string }): T {
  try {
    return JSON.parse(line) as T;
  } catch (err) {
    throw new MirrorError('MFS_BAD_RESPONSE', `peer ${context.peer} sent a line of ${context.op} that is not JSON: ${(err as Error).message}`, { context });
  }
}

/** Once the stream is closed (its reset code is known then); at once if it is. */
function closed(stream: ClientHttp2Stream): Promise<void> {
  if (stream.closed || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, CLOSE_WAIT_MS);
    stream.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Bound on the wait for a finished answer's stream to close (it follows its end at once). */
const CLOSE_WAIT_MS = 5000;

/** The answer's status, once its headers come (bounded). */
function responseStatus(stream: ClientHttp2Stream, idleMs: number, context: Record<string, string>, unreachable: (err: Error) => Error): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new MirrorError('MFS_TIMEOUT', `peer ${context.peer} did not answer ${context.op} within ${idleMs} ms`, { context })), idleMs);
    const onResponse = (headers: http2.IncomingHttpHeaders) => done(null, Number(headers[':status']));
    const onError = (err: Error) => done(unreachable(err));
    const onClose = () => done(new MirrorError('MFS_UNREACHABLE', `peer ${context.peer} closed the stream for ${context.op} without answering (code ${stream.rstCode})`, { context }));
    function done(err: Error | null, status = 0) {
      clearTimeout(timer);
      stream.off('response', onResponse);
      stream.off('error', onError);
      stream.off('close', onClose);
      if (err) reject(err);
      else resolve(status);
    }
    stream.once('response', onResponse);
    stream.once('error', onError);
    stream.once('close', onClose);
  });
}
