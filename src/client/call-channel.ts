import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { wireErrorIn } from '../protocol/codec.js';
import { CHANNEL_ID, EnvelopeReader, MAX_ENVELOPE_BYTES, encodeEnvelope } from '../protocol/envelope.js';
import { MirrorError, isCredentialRefusal } from '../protocol/errors.js';
import { writeCorked } from '../protocol/cork.js';
import { ROUTES } from '../protocol/version.js';

/** How a call on the channel ends: with the peer's answer frame, or with the error that ended the channel or the call. */
export type ChannelAnswer = (err: MirrorError | null, frame?: Buffer) => void;

/**
 * The client end of a call channel (envelope.ts): one POST /v1/channel
 * stream on one HTTP/2 session, opened when the first call needs it, carrying
 * every change sent to this peer on that session. Calls are matched to answers
 * by id; answers come in whatever order the peer finishes them.
 *
 * When the channel ends (the peer refused it, reset it, or the session died),
 * every call still waiting fails with that reason; the next call opens a new
 * channel. A call that gives up (its timeout) is forgotten here: the peer
 * still applies and answers it, and a re-send is answered from its record.
 */
export class CallChannel {
  private readonly stream: ClientHttp2Stream;
  private readonly waiting = new Map<number, ChannelAnswer>();
  private nextId = CHANNEL_ID + 1;
  private ended: MirrorError | null = null;
  /** Set when a newer channel replaced this one: it ends once its last call is answered. */
  private retired = false;
  private status = 0;
  private readonly refusalChunks: Buffer[] = [];

  constructor(readonly session: ClientHttp2Session, headers: Record<string, string>, private readonly peer: string, private readonly hint: string) {
    this.stream = session.request({ ':method': 'POST', ':path': ROUTES.channel, ...headers }, { endStream: false });
    const reader = new EnvelopeReader((id, frame) => this.answer(id, frame));
    this.stream.on('response', (h) => (this.status = Number(h[':status'])));
    this.stream.on('data', (chunk: Buffer) => {
      if (this.ended) return;
      // Not 200: the peer refused the channel (token, version, shutting down) with one plain error frame.
      if (this.status !== 200) return void this.refusalChunks.push(chunk);
      try {
        reader.push(chunk);
      } catch (err) {
        this.end(new MirrorError('MFS_BAD_RESPONSE', `peer ${this.peer} sent an undecodable channel envelope: ${(err as Error).message}`, { context: { peer: this.peer } }));
        this.stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
      }
    });
    this.stream.on('error', (err: Error & { code?: string }) => {
      this.end(new MirrorError('MFS_UNREACHABLE', `peer ${this.peer} unreachable (channel): ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' '), { context: { peer: this.peer } }));
    });
    this.stream.on('close', () => {
      if (this.status !== 0 && this.status !== 200) return this.end(this.refusal());
      const why = this.status === 0 ? `closed the channel without answering (code ${this.stream.rstCode})${this.hint}` : 'closed the channel';
      this.end(new MirrorError('MFS_UNREACHABLE', `peer ${this.peer} ${why}`, { context: { peer: this.peer } }));
    });
  }

  /** False once the channel has ended (or is ending): calls then go on a new one. */
  get usable(): boolean {
    return this.ended === null && !this.retired && !this.stream.destroyed && !this.session.destroyed && !this.session.closed;
  }

  /** Calls sent and not yet answered. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Send one call's frame; `onAnswer` is called exactly once unless the call is forgotten first. Returns the call's id. */
  send(frameParts: Buffer[], onAnswer: ChannelAnswer): number {
    if (this.ended) {
      onAnswer(this.ended);
      return CHANNEL_ID;
    }
    let length = 4;
    for (const part of frameParts) length += part.length;
    if (length > MAX_ENVELOPE_BYTES) {
      // Refused here, for this call alone: the peer would end the whole channel for it.
      onAnswer(new MirrorError('MFS_TOO_LARGE', `call of ${length - 4} bytes exceeds the peer's limit of ${MAX_ENVELOPE_BYTES - 4}`, { context: { peer: this.peer } }));
      return CHANNEL_ID;
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffff_fffe ? CHANNEL_ID + 1 : this.nextId + 1;
    this.waiting.set(id, onAnswer);
    writeCorked(this.stream, encodeEnvelope(id, frameParts));
    return id;
  }

  /**
   * The caller stopped waiting (timeout): a late answer is dropped. If the
   * channel still holds bytes not yet sent (flow control, a congested link),
   * they may be this call's: the channel is reset, so what flow control still
   * holds back is never sent and applied later, behind what came after it
   * (bytes already handed to the socket may still arrive, promptly; a re-send
   * is answered from the peer's record). The other calls waiting on it fail
   * as unreachable (in doubt; re-sent by the caller).
   */
  forget(id: number): void {
    this.waiting.delete(id);
    if (this.stream.writableLength > 0) {
      this.end(new MirrorError('MFS_UNREACHABLE', `peer ${this.peer}: a call gave up while the channel still held unsent bytes; channel reset so they are never sent`, { context: { peer: this.peer } }));
      return;
    }
    this.endIfIdleAndRetired();
  }

  /** No new calls from now on; the stream ends after the last answer. */
  retire(): void {
    this.retired = true;
    this.endIfIdleAndRetired();
  }

  private endIfIdleAndRetired(): void {
    if (this.retired && this.waiting.size === 0 && !this.stream.destroyed) this.stream.end();
  }

  private answer(id: number, frame: Buffer): void {
    if (id === CHANNEL_ID) {
      // The peer ends the channel and says why (a stalled or oversized envelope, a refused certificate).
      // Calls it was running may be applied all the same: for each caller that is a lost answer (in doubt), not the peer's verdict.
      const reason = this.wireError(frame);
      const why = reason ? `${reason.code}: ${reason.message}` : 'no reason given';
      return this.end(new MirrorError(isCredentialRefusal(reason) ? reason.code : 'MFS_UNREACHABLE', `peer ${this.peer} ended the call channel (${why})`, { context: { peer: this.peer } }));
    }
    const onAnswer = this.waiting.get(id);
    if (!onAnswer) return; // forgotten (timed out) or never sent: nothing waits for it
    this.waiting.delete(id);
    onAnswer(null, frame);
    this.endIfIdleAndRetired();
  }

  private end(reason: MirrorError): void {
    if (this.ended) return;
    this.ended = reason;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const onAnswer of waiting) onAnswer(reason);
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  private refusal(): MirrorError {
    const wire = this.wireError(Buffer.concat(this.refusalChunks));
    return wire ?? new MirrorError('MFS_BAD_RESPONSE', `peer ${this.peer} refused the channel with HTTP ${this.status}`, { context: { peer: this.peer } });
  }

  private wireError(frame: Buffer): MirrorError | null {
    const wire = wireErrorIn(frame);
    return wire ? MirrorError.fromWire(wire, { peer: this.peer, op: 'channel' }) : null;
  }
}
