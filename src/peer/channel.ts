import http2, { type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Logger } from '../log.js';
import { encodeError } from '../protocol/codec.js';
import { CHANNEL_ID, EnvelopeReader, encodeEnvelope } from '../protocol/envelope.js';
import { MirrorError, toMirrorError } from '../protocol/errors.js';
import { PROTOCOL_HEADER, PROTOCOL_VERSION } from '../protocol/version.js';

/** What the peer does with one call that arrived on a channel: its answer frame's parts (an error frame for a refusal). Never rejects. */
export type ChannelCallHandler = (frame: Buffer, session: Http2Session | undefined) => Promise<Buffer[]>;

export interface ServedChannelOptions {
  /** Calls of one channel run at once at most; reading pauses beyond (the bound a stream per call had from maxConcurrentStreams). */
  maxInFlight: number;
  /** A call's frame that stops arriving part-way for this long ends the channel (it would pin its buffered bytes). */
  stallMs: number;
  logger: Logger;
}

/**
 * The peer's end of a call channel (protocol/envelope.ts), admitted already
 * (certificate, token, version: PeerServer.admit). Each envelope is one call,
 * run as soon as it is complete, concurrently with the others; its answer goes
 * back under the same id when it is done. Calls that must keep an order are
 * only sent once what they wait for is answered (the mount's scheduler), as
 * with a stream per call.
 *
 * A malformed envelope (a length over the limit) ends the channel with an
 * envelope of id 0 carrying the error; the calls already running still finish
 * (they are applied) but their answers are not sent.
 */
export class ServedChannel {
  private inFlight = 0;
  private readonly reader: EnvelopeReader;
  /** The client ended its side (it retired the channel): end ours after the last answer. */
  private clientDone = false;
  private refused = false;

  constructor(private readonly stream: ServerHttp2Stream, private readonly onCall: ChannelCallHandler, private readonly opts: ServedChannelOptions) {
    this.reader = new EnvelopeReader((id, frame) => this.run(id, frame));
    stream.respond({ ':status': 200, 'content-type': 'application/x-mirrorfs-channel', [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) });
    stream.on('data', (chunk: Buffer) => {
      if (this.refused) return;
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
    // An idle channel is normal (a mount with nothing to change); one stalled inside a frame is not.
    stream.setTimeout(opts.stallMs, () => {
      if (this.reader.buffered > 0) this.refuse(new MirrorError('MFS_MALFORMED', `a call's frame stopped arriving part-way for ${opts.stallMs} ms`));
    });
  }

  get session(): Http2Session | undefined {
    return this.stream.session;
  }

  /** Calls running now. */
  get running(): number {
    return this.inFlight;
  }

  /** End the channel now (shutdown, idle session): calls still running are not answered. */
  close(): void {
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_NO_ERROR);
  }

  private run(id: number, frame: Buffer): void {
    this.inFlight++;
    if (this.inFlight >= this.opts.maxInFlight) this.stream.pause();
    this.onCall(frame, this.stream.session)
      .then((parts) => this.write(encodeEnvelope(id, parts)))
      .catch((err: unknown) => this.opts.logger.error({ err }, 'channel call handler failed'))
      .finally(() => {
        this.inFlight--;
        if (this.inFlight < this.opts.maxInFlight && !this.refused) this.stream.resume();
        this.endIfDone();
      });
  }

  private write(parts: Buffer[]): void {
    if (this.stream.destroyed || this.stream.writableEnded) return;
    for (const part of parts) this.stream.write(part);
  }

  private refuse(err: MirrorError): void {
    if (this.refused) return;
    this.refused = true;
    this.opts.logger.warn({ code: err.code, err: err.message }, 'ending a call channel');
    this.stream.pause();
    this.write(encodeEnvelope(CHANNEL_ID, [encodeError(err)]));
    if (this.stream.destroyed) return;
    // Closed, not only ended: a client that never ends its side must not keep the stream (and its
    // slot) open. Node sends the reset only after what was written, the reason included, has gone out.
    if (!this.stream.writableEnded) this.stream.end();
    this.stream.close(http2.constants.NGHTTP2_NO_ERROR);
  }

  private endIfDone(): void {
    if (this.clientDone && this.inFlight === 0 && !this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }
}
