import { MirrorError } from './errors.js';
import type { BufferPool } from './buffer-pool.js';
import { MAX_FRAME_BYTES } from './codec.js';

/**
 * Envelopes of the call channel (POST /v1/channel): one long-lived HTTP/2
 * stream per connection that carries many calls, each a /v1/call frame
 * (codec.ts) tagged with the caller's id, in both directions:
 *
 *   u32 big-endian length of what follows | u32 call id | frame
 *
 * Why a channel: on this machine a new HTTP/2 stream per call costs about
 * 220 us of server CPU and 270 us of client CPU over TLS (headers, HPACK,
 * stream objects, Node's per-request bookkeeping); a tagged frame on a stream
 * that is already open costs about 100 us each side, and about 20 us with 16
 * calls in flight, whose frames then share socket writes (docs/PERFORMANCE.md).
 */

/** Bytes before the frame: the length and the call id. */
export const ENVELOPE_HEAD_BYTES = 8;
/** Largest envelope either side accepts: an id and one largest frame. */
export const MAX_ENVELOPE_BYTES = 4 + MAX_FRAME_BYTES;
/** Id of an envelope about the channel itself (a refusal that ends it), never a call's. */
export const CHANNEL_ID = 0;
/** Envelopes at least this large are put together in a pooled buffer when the reader has a pool (smaller ones come from Node's own pool cheaply). */
export const POOLED_MIN_BYTES = 64 * 1024;

/** An envelope as parts to write in order (the frame's parts are not copied). */
export function encodeEnvelope(id: number, frameParts: Buffer[]): Buffer[] {
  let length = 4;
  for (const p of frameParts) length += p.length;
  const head = Buffer.allocUnsafe(ENVELOPE_HEAD_BYTES);
  head.writeUInt32BE(length, 0);
  head.writeUInt32BE(id, 4);
  return [head, ...frameParts];
}

/**
 * Cuts a byte stream into envelopes. Chunks are kept as they arrive and only
 * joined for an envelope that spans several of them; an envelope inside one
 * chunk is a view of it. A length over MAX_ENVELOPE_BYTES is refused before
 * anything is buffered for it.
 */
export class EnvelopeReader {
  private chunks: Buffer[] = [];
  private total = 0;
  /** While held, complete envelopes stay buffered (the consumer has enough in hand). */
  private held = false;

  /**
   * `pool`: envelopes larger than POOLED_MIN_BYTES that arrive in several chunks are put
   * together in one of its buffers instead of a new one, and onEnvelope gets `release`,
   * to be called once nothing reads the frame any more. Why: a new 1 MiB buffer per
   * write is fresh memory the kernel faults in page by page; putting a 1 MiB write
   * together took ~2 ms of a peer's main thread that way, ~0.05 ms into a reused one.
   */
  constructor(
    private readonly onEnvelope: (id: number, frame: Buffer, release?: () => void) => void,
    private readonly pool?: BufferPool,
  ) {}

  /** Bytes held of an envelope not yet complete (a stalled sender shows here). */
  get buffered(): number {
    return this.total;
  }

  /** Feed bytes; calls onEnvelope for each complete envelope; throws MFS_TOO_LARGE or MFS_MALFORMED on a bad length. */
  push(chunk: Buffer): void {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.total += chunk.length;
    }
    this.drain();
  }

  /** Stop handing out envelopes (onEnvelope may call this); bytes fed meanwhile are kept. */
  hold(): void {
    this.held = true;
  }

  /** Hand out what is buffered again; throws like push. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.drain();
  }

  private drain(): void {
    while (!this.held && this.total >= 4) {
      const length = this.peekLength();
      if (length > MAX_ENVELOPE_BYTES) throw new MirrorError('MFS_TOO_LARGE', `channel envelope of ${length} bytes exceeds the limit of ${MAX_ENVELOPE_BYTES}`);
      if (length < 4) throw new MirrorError('MFS_MALFORMED', `channel envelope of ${length} bytes is shorter than its call id`);
      if (this.total < 4 + length) return;
      const { envelope, release } = this.take(4 + length);
      this.onEnvelope(envelope.readUInt32BE(4), envelope.subarray(ENVELOPE_HEAD_BYTES), release);
    }
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks, 4).readUInt32BE(0);
  }

  /** The first n bytes (a view when the first chunk holds them), removed from what is held; `release` when they are in a pooled buffer. */
  private take(n: number): { envelope: Buffer; release?: () => void } {
    const first = this.chunks[0]!;
    let out: Buffer;
    let release: (() => void) | undefined;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const pool = this.pool;
      if (pool && n >= POOLED_MIN_BYTES && n <= pool.size) {
        const buf = pool.acquire();
        out = buf.subarray(0, n);
        release = () => pool.release(buf);
      } else out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const used = c.copy(out, at, 0, Math.min(c.length, n - at));
        at += used;
        if (used === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(used);
      }
    }
    this.total -= n;
    return { envelope: out, release };
  }
}
