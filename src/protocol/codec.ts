import { MirrorError, type WireError } from './errors.js';

/**
 * Framing of /v1/call bodies, both directions:
 *
 *   u32 big-endian header length | header (UTF-8 JSON) | payload (raw bytes)
 *
 * Data (write bytes, read results, xattr values) travels as raw payload, never
 * inside JSON, so a 128 KiB write costs one copy and no base64.
 */

export const MAX_HEADER_BYTES = 64 * 1024;
/** Largest payload a peer accepts: 4 MiB covers FUSE's 128 KiB writes and resync chunks. */
export const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
export const MAX_FRAME_BYTES = 4 + MAX_HEADER_BYTES + MAX_PAYLOAD_BYTES;

export interface Frame {
  header: unknown;
  payload: Buffer;
}

export function encodeFrame(header: unknown, payload?: Buffer | Uint8Array): Buffer {
  return Buffer.concat(encodeFrameParts(header, payload));
}

/**
 * A frame as its parts, to be written one after the other: the payload is
 * sent from where it lies, not copied into one buffer first (a 4 MiB resync
 * chunk would otherwise be copied once more on each side).
 */
export function encodeFrameParts(header: unknown, payload?: Buffer | Uint8Array): Buffer[] {
  const json = Buffer.from(JSON.stringify(header));
  if (json.length > MAX_HEADER_BYTES) throw new MirrorError('MFS_TOO_LARGE', `frame header of ${json.length} bytes exceeds ${MAX_HEADER_BYTES}`);
  const head = Buffer.allocUnsafe(4 + json.length);
  head.writeUInt32BE(json.length, 0);
  json.copy(head, 4);
  if (!payload || payload.length === 0) return [head];
  return [head, Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.length)];
}

/** Write a frame's parts to a stream and end it. */
export function writeParts(stream: { write(b: Buffer): boolean; end(b?: Buffer): unknown }, parts: Buffer[]): void {
  for (let i = 0; i < parts.length - 1; i++) stream.write(parts[i]!);
  stream.end(parts[parts.length - 1]);
}

export function decodeFrame(buf: Buffer): Frame {
  if (buf.length < 4) throw new MirrorError('MFS_MALFORMED', `frame of ${buf.length} bytes is shorter than its length prefix`);
  const headerLength = buf.readUInt32BE(0);
  if (headerLength > MAX_HEADER_BYTES) throw new MirrorError('MFS_TOO_LARGE', `frame header length ${headerLength} exceeds ${MAX_HEADER_BYTES}`);
  if (4 + headerLength > buf.length) throw new MirrorError('MFS_MALFORMED', `frame header length ${headerLength} runs past the body (${buf.length} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(buf.toString('utf8', 4, 4 + headerLength));
  } catch (err) {
    throw new MirrorError('MFS_MALFORMED', `frame header is not JSON: ${(err as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new MirrorError('MFS_MALFORMED', 'frame header must be a JSON object');
  }
  return { header, payload: buf.subarray(4 + headerLength) };
}

/**
 * A frame from the chunks it arrived in, its payload copied into `into`
 * (the frame's payload is then `into.subarray(0, n)`): the caller's buffer is
 * reused instead of a new one being joined from the chunks. A payload larger
 * than `into` is refused.
 */
export function decodeFrameInto(chunks: Buffer[], into: Buffer): Frame {
  let total = 0;
  for (const c of chunks) total += c.length;
  // The length prefix and header are small and nearly always in the first chunk; join only what they span.
  let headEnd = 4;
  if (total >= 4) headEnd = 4 + prefix(chunks, 4).readUInt32BE(0);
  if (total < 4 || headEnd > 4 + MAX_HEADER_BYTES || headEnd > total) return decodeFrame(Buffer.concat(chunks, total)); // its own, precise error
  const { header } = decodeFrame(prefix(chunks, headEnd));
  const length = total - headEnd;
  if (length > into.length) throw new MirrorError('MFS_TOO_LARGE', `frame payload of ${length} bytes exceeds the ${into.length} bytes expected`);
  let at = 0;
  let skip = headEnd;
  for (const c of chunks) {
    if (skip >= c.length) {
      skip -= c.length;
      continue;
    }
    at += c.copy(into, at, skip);
    skip = 0;
  }
  return { header, payload: into.subarray(0, length) };
}

/** The first n bytes of a sequence of chunks: a view when the first chunk holds them, else a copy. */
function prefix(chunks: Buffer[], n: number): Buffer {
  return n <= chunks[0]!.length ? chunks[0]!.subarray(0, n) : Buffer.concat(chunks).subarray(0, n);
}

/** Response header: an outcome, never both. `resultInPayload`: the result is the payload, as JSON (see encodeResponseParts). */
export type ResponseHeader = { ok: true; result?: unknown; resultInPayload?: true } | { ok: false; error: WireError };

/**
 * A response's parts. A result too large for the header (the listing of a
 * directory with thousands of entries) travels as JSON in the payload,
 * flagged `resultInPayload`; an answer with a payload of its own never has a
 * result that large. The client undoes it (responseResult).
 */
export function encodeResponseParts(outcome: ResponseHeader, payload?: Buffer): Buffer[] {
  try {
    return encodeFrameParts(outcome, payload);
  } catch (err) {
    if (!(err instanceof MirrorError && err.code === 'MFS_TOO_LARGE') || !outcome.ok || (payload && payload.length > 0)) throw err;
    return encodeFrameParts({ ok: true, resultInPayload: true }, Buffer.from(JSON.stringify(outcome.result)));
  }
}

/** A successful response's result and payload, with a result carried in the payload put back in its place. */
export function responseResult(header: { result?: unknown; resultInPayload?: true }, payload: Buffer): { result: unknown; payload: Buffer } {
  if (header.resultInPayload !== true) return { result: header.result, payload };
  try {
    return { result: JSON.parse(payload.toString('utf8')), payload: Buffer.alloc(0) };
  } catch (err) {
    throw new MirrorError('MFS_MALFORMED', `a result sent as payload is not JSON: ${(err as Error).message}`);
  }
}

/** The wire error an error frame carries, or undefined when the bytes are not one (refusals, a channel's reason). */
export function wireErrorIn(buf: Buffer): WireError | undefined {
  try {
    const wire = (decodeFrame(buf).header as { error?: WireError }).error;
    return wire && typeof wire.errno === 'string' ? wire : undefined;
  } catch {
    return undefined;
  }
}

export function encodeError(err: MirrorError): Buffer {
  return encodeFrame({ ok: false, error: err.toWire() } satisfies ResponseHeader);
}
