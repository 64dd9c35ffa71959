import http2, { type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Logger } from '../log.js';
import { encodeError } from '../protocol/codec.js';
import { CHANNEL_ID, EnvelopeReader, encodeEnvelope } from '../protocol/envelope.js';
import { MirrorError, toMirrorError } from '../protocol/errors.js';
import type { BufferPool } from '../protocol/buffer-pool.js';
import { writeCorked } from '../protocol/cork.js';
import { PROTOCOL_HEADER, PROTOCOL_VERSION } from '../protocol/version.js';

/** What the peer does with one call that arrived on a channel: its answer frame's parts (an error frame for a refusal). Never rejects. */
export type ChannelCallHandler = (frame: Buffer, channel: ServedChannel) => Promise<Buffer[]>;

export interface ServedChannelOptions {
  /** Calls of one channel run at once at most; reading stops beyond (the bound a stream per call had from maxConcurrentStreams). */
  maxInFlight: number;
  /** Answers queued for a client that does not read them, at most; reading stops beyond. */
  maxUnsentBytes: number;
  /** A call's frame that stops arriving part-way for this long ends the channel (it would pin its buffered bytes). */
  stallMs: number;
  logger: Logger;
  /**
   * Buffers to put large calls together in (EnvelopeReader), given back once the call is
   * answered. Only where nothing keeps a call's payload after its answer (not a relay,
   * whose queue does).
   */
  framePool?: BufferPool;
}

/** How long an ending channel may take to hand over its last bytes before it is reset. */
const END_GRACE_MS = 2000;

/**
 * The peer's end of a call channel (protocol/envelope.ts), admitted already
 * (certificate, token, version: admission.ts admit). Each envelope is one call,
 * run as soon as it is complete, concurrently with the others; its answer goes
 * back under the same id when it is done. Calls that must keep an order are
 * only sent once what they wait for is answered (the mount's scheduler), as
 * with a stream per call.
 *
 * Bounds: at most maxInFlight calls run at once and at most maxUnsentBytes of
 * answers wait for the client; beyond either, envelopes stay unread (and
 * HTTP/2 flow control stops the client). A malformed envelope (a length over
 * the limit), a frame stalled part-way, or a refused certificate ends the
 * channel with an envelope of id 0 carrying the reason; the calls already
 * running still finish (they are applied) but their answers are not sent.
 */
export class ServedChannel {
  private inFlight = 0;
  private readonly reader: EnvelopeReader;
  /** The client ended its side (it retired the channel): end ours after the last answer. */
  private clientDone = false;
  /** Ending (refused, or finishing for shutdown): nothing new is read. */
  private ending = false;
  private writeBlocked = false;

  constructor(private readonly stream: ServerHttp2Stream, private readonly onCall: ChannelCallHandler, private readonly opts: ServedChannelOptions) {
    this.reader = new EnvelopeReader((id, frame, release) => this.run(id, frame, release), opts.framePool);
    stream.respond({ ':status': 200, 'content-type': 'application/x-mirrorfs-channel', [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) });
    stream.on('data', (chunk: Buffer) => {
      if (this.ending) return;
      try {
        this.reader.push(chunk);
      } catch (err) {
        this.refuse(toMirrorError(err, {}));
      }
    });
    stream.on('end', () => {
      this.clientDone = true;
      this.endIfDone();
    });
    stream.on('drain', () => {
      this.writeBlocked = false;
      this.flow();
    });
    // An idle channel is normal (a mount with nothing to change); one stalled inside a frame is not.
    stream.setTimeout(opts.stallMs, () => {
      if (this.reader.buffered > 0 && this.inFlight === 0 && !this.writeBlocked) this.refuse(new MirrorError('MFS_MALFORMED', `a call's frame stopped arriving part-way for ${opts.stallMs} ms`));
    });
  }

  get session(): Http2Session | undefined {
    return this.stream.session;
  }

  /** Calls running now. */
  get running(): number {
    return this.inFlight;
  }

  /** Reading is stopped because answers the client has not read passed maxUnsentBytes. */
  get waitingForClient(): boolean {
    return this.writeBlocked;
  }

  /** End the channel now (replaced by a newer one of the same client): calls still running are not answered. */
  close(): void {
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  /** Shutdown: read nothing more, end after the last answer (bounded). */
  finish(): void {
    this.ending = true;
    this.clientDone = true;
    this.stream.pause();
    this.endIfDone();
    this.resetLater();
  }

  /** End the channel with a reason under id 0 (the client fails what it still waits for). */
  refuse(err: MirrorError): void {
    if (this.ending) return;
    this.ending = true;
    this.opts.logger.warn({ code: err.code, err: err.message }, 'ending a call channel');
    this.stream.pause();
    this.write(encodeEnvelope(CHANNEL_ID, [encodeError(err)]));
    if (this.stream.destroyed) return;
    if (!this.stream.writableEnded) this.stream.end();
    this.resetLater();
  }

  private run(id: number, frame: Buffer, release?: () => void): void {
    this.inFlight++;
    this.flow();
    this.onCall(frame, this)
      .then((parts) => this.write(encodeEnvelope(id, parts)))
      .catch((err: unknown) => this.opts.logger.error({ err }, 'channel call handler failed'))
      .finally(() => {
        // The handler has finished with the call (it awaits its whole application, success or
        // not, and its answer holds nothing of the frame): the buffer can take another call.
        release?.();
        this.inFlight--;
        this.flow();
        this.endIfDone();
      });
  }

  /** Read on while under both bounds; stop (envelopes stay buffered, flow control holds the client) otherwise. */
  private flow(): void {
    if (this.ending) return;
    if (this.inFlight >= this.opts.maxInFlight || this.writeBlocked) {
      this.reader.hold();
      this.stream.pause();
      return;
    }
    this.stream.resume();
    try {
      this.reader.release();
    } catch (err) {
      this.refuse(toMirrorError(err, {}));
    }
  }

  private write(parts: Buffer[]): void {
    if (this.stream.destroyed || this.stream.writableEnded) return;
    writeCorked(this.stream, parts);
    if (this.stream.writableLength > this.opts.maxUnsentBytes) {
      this.writeBlocked = true;
      this.flow();
    }
  }

  private endIfDone(): void {
    if (this.clientDone && this.inFlight === 0 && !this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  /** Ended (or ending) on our side: reset it if the client has not closed it soon, so a client that reads nothing cannot keep it. */
  private resetLater(): void {
    const timer = setTimeout(() => this.close(), END_GRACE_MS);
    timer.unref();
    this.stream.once('close', () => clearTimeout(timer));
  }
}
