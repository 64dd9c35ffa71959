import { queryValueOfWire } from '../protocol/byte-names.js';
import http2, { type ClientHttp2Session } from 'node:http2';
import { openSession, type Transport } from '../security/transport.js';
import type { Identity } from '../security/identity.js';
import { signHandshake } from '../security/handshake-proof.js';
import { decodeFrame, decodeFrameInto, encodeFrameParts, responseResult, wireErrorIn, writeParts, type ResponseHeader } from '../protocol/codec.js';
import { MirrorError, isCredentialRefusal, isNoAnswer } from '../protocol/errors.js';
import { isMutation, pathOf, type HandshakeResult, type MountDurability, type HistoryEntry, type PullProgress, type RepairActionInput, type ManifestEntry, type PeerStatus, type ProgressResult, type RequestInput } from '../protocol/ops.js';
import { CallChannel } from './call-channel.js';
import { readNdjson } from './ndjson-stream.js';
import { ndjsonEndCount } from '../protocol/ndjson-end.js';
import { compareWalkOrder } from '../store/manifest-merge.js';
import { H2_CONNECTION_WINDOW_BYTES, H2_MAX_CONCURRENT_STREAMS, H2_MAX_FRAME_BYTES, H2_STREAM_WINDOW_BYTES, ORIGIN_HEADER, PROTOCOL_HEADER, PROTOCOL_VERSION, ROUTES, TICKET_HEADER } from '../protocol/version.js';

export interface PeerClientOptions {
  /** Name used in logs and errors ("east"). */
  name?: string;
  /** The peer's bearer token; none for a pull, where a ticket and the certificate stand in (security/pull-ticket.ts). */
  token?: string;
  /** The certificate (DER) every request acts for (a pulling peer's owner): sent as mirrorfs-origin, judged by the peer. */
  origin?: Buffer;
  /** A pull ticket from the owner, sent with every request (security/pull-ticket.ts). */
  ticket?: string;
  /** Mutual TLS (identity and trust) or, only when asked for, cleartext. */
  transport: Transport;
  /** Bound on one request, connect to last byte. */
  timeoutMs?: number;
  /** Told when a route failed and the next one is used from now on. */
  onFailover?: (from: string, to: string, reason: string) => void;
}

export interface CallResult<T = unknown> {
  result: T;
  payload: Buffer;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A count of the users of a request's payload, for a payload in a reused
 * buffer: each attempt holds it from before it is sent until its stream is
 * closed. A stream that ended any other way than with the peer's complete
 * answer (which the peer gives only after reading the whole body) spoils it:
 * a socket write of a destroyed session may still read it (cleartext writes
 * from where the bytes lie), so it is never reused, only collected.
 */
export interface BodyHold {
  hold(): void;
  release(): void;
  spoil(): void;
}

/** Optional buffers of a call: `into` receives the answer's payload (the result's payload is then a view of it); `hold` is held on the request's payload. */
export interface CallIo {
  into?: Buffer;
  hold?: BodyHold;
  /** The certificate (DER) this one request acts for: a relay passing on another client's request (peer/principal.ts). */
  origin?: Buffer | null;
}

/**
 * A client for one peer over one HTTP/2 connection (mutual TLS, or cleartext
 * when asked for: security/transport.ts), built on node:http2: undici 7's HTTP/2
 * client topped out near 2,500 requests/s with 16 in flight on this machine,
 * node:http2 near 8,700 (docs/decisions/0001-http2-client.md). Every call is bounded by timeoutMs and
 * every failure is a MirrorError naming the peer: an errno outcome from the
 * peer keeps its errno; transport failures are EIO with MFS_UNREACHABLE or
 * MFS_TIMEOUT.
 */
/** Control operations that ride the call channel too: small, frequent and on the write path (an fsync after each O_DSYNC write), or changes (catch-up's `resend`). */
export const CHANNEL_CONTROL_OPS: ReadonlySet<string> = new Set(['fsync', 'resend']);

/** The answer to a lease renewal: where the copy stands for the mount (absent from a relay's next hop's view), and whether it is unclean. */
export interface LeaseAnswer {
  leaseAgeMs: number;
  durability?: MountDurability;
  unclean?: boolean;
}

export class PeerClient {
  readonly name: string;
  /** Diverse routes to the same peer (url split at '|'); `route` is the one in use. */
  readonly routes: string[];
  private route = 0;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private session: ClientHttp2Session | null = null;
  /** The call channel on the current session (opened by the first change sent on it). */
  private channel: CallChannel | null = null;
  /** The connection being opened (TLS handshake and trust check), shared by the requests waiting for it. */
  private connecting: Promise<ClientHttp2Session> | null = null;
  /** Connections opened or attempted (a reconnect storm against a down peer shows here). */
  connectAttempts = 0;
  private readonly transport: Transport;
  private closed = false;
  private readonly onFailover?: (from: string, to: string, reason: string) => void;

  constructor(readonly url: string, opts: PeerClientOptions) {
    this.name = opts.name ?? url;
    this.routes = url.split('|');
    this.onFailover = opts.onFailover;
    this.transport = opts.transport;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.headers = { [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) };
    if (opts.token !== undefined) this.headers.authorization = `Bearer ${opts.token}`;
    if (opts.origin) this.headers[ORIGIN_HEADER] = opts.origin.toString('base64');
    if (opts.ticket !== undefined) this.headers[TICKET_HEADER] = opts.ticket;
  }

  /**
   * Send one operation; resolves with its result and payload, throws MirrorError on an error outcome.
   * `waitMs`: how long the peer may hold the answer on purpose (a long poll); added to every attempt's bound, never split.
   * `io`: where the answer's payload goes, and a hold on the request's payload (see CallIo).
   */
  async call<T = unknown>(req: RequestInput, payload?: Buffer, timeoutMs = this.timeoutMs, waitMs = 0, io: CallIo = {}): Promise<CallResult<T>> {
    // Changes go on the call channel (envelope.ts); everything else, whose answers
    // may be large (reads, listings) or long in coming (long polls, pulls), on a stream of its own.
    const path = isMutation(req) || CHANNEL_CONTROL_OPS.has(req.op) ? ROUTES.channel : ROUTES.call;
    const chunks = await this.send('POST', path, encodeFrameParts(req, payload), req.op, timeoutMs, waitMs, io.hold, originHeader(io.origin));
    let frame;
    try {
      frame = io.into ? decodeFrameInto(chunks, io.into) : decodeFrame(joined(chunks));
    } catch (err) {
      throw new MirrorError('MFS_BAD_RESPONSE', `peer ${this.name} answered ${req.op} with an undecodable frame: ${(err as Error).message}`, { context: { peer: this.name, op: req.op } });
    }
    const header = frame.header as ResponseHeader;
    if (header.ok === true) {
      try {
        const { result, payload: rest } = responseResult(header, frame.payload);
        return { result: result as T, payload: rest };
      } catch (err) {
        throw new MirrorError('MFS_BAD_RESPONSE', `peer ${this.name} answered ${req.op} with ${(err as Error).message}`, { context: { peer: this.name, op: req.op } });
      }
    }
    if (header.ok === false && header.error && typeof header.error.errno === 'string') {
      throw MirrorError.fromWire(header.error, { peer: this.name, op: req.op, path: pathOf(req) });
    }
    throw new MirrorError('MFS_BAD_RESPONSE', `peer ${this.name} answered ${req.op} without an outcome`, { context: { peer: this.name, op: req.op } });
  }

  /**
   * Take ownership of the peer for (mount, epoch). A peer advances one epoch at
   * a time: one that is several behind (it was away while the set moved on)
   * answers MFS_EPOCH_SKIP, and is stepped through the epochs between, each a
   * handshake of its own. `origin`: the certificate a relay passes the handshake on for.
   */
  async handshake(mount: string, epoch: number, timeoutMs = this.timeoutMs, passOn: { origin: Buffer; proof: string | null } | null = null): Promise<HandshakeResult> {
    // The owner signs its own handshake (a relay keeps the signature and passes it on unchanged).
    const proof = passOn ? passOn.proof ?? undefined : this.transport.kind === 'tls' ? signHandshake(mount, epoch, this.transport.identity.key) : undefined;
    const origin = passOn?.origin ?? null;
    // One bound for the whole handshake, steps included.
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    try {
      return await this.handshakeOnce(mount, epoch, timeoutMs, origin, proof);
    } catch (err) {
      if (!(err instanceof MirrorError && err.code === 'MFS_EPOCH_SKIP')) throw err;
      const from = (await this.status(left())).epoch;
      if (epoch - from > MAX_EPOCH_STEPS) {
        throw new MirrorError('MFS_EPOCH_SKIP', `peer ${this.name} is at epoch ${from}, ${epoch - from} behind epoch ${epoch}: more than ${MAX_EPOCH_STEPS} steps; it has been away from this set too long (docs/TAKEOVER.md, epochs)`, { context: { peer: this.name } });
      }
      for (let e = from + 1; e < epoch; e++) await this.handshakeOnce(mount, e, left(), origin, proof);
      return this.handshakeOnce(mount, epoch, left(), origin, proof);
    }
  }

  private async handshakeOnce(mount: string, epoch: number, timeoutMs: number, origin: Buffer | null, proof: string | undefined): Promise<HandshakeResult> {
    const { result } = await this.call<HandshakeResult>({ op: 'handshake', protocol: PROTOCOL_VERSION, mount, epoch, ...(proof === undefined ? {} : { proof }) }, undefined, timeoutMs, 0, { origin });
    if (result?.protocol !== PROTOCOL_VERSION) {
      throw new MirrorError('MFS_PROTOCOL_MISMATCH', `peer ${this.name} answered the handshake with protocol ${String(result?.protocol)}, this side speaks ${PROTOCOL_VERSION}`, { context: { peer: this.name } });
    }
    return result;
  }

  progress(mount: string): Promise<ProgressResult> {
    return this.call<ProgressResult>({ op: 'progress', mount }).then((r) => r.result);
  }

  /** Tell the peer these earlier owners' changes are reconciled everywhere. */
  async reconciled(mount: string, epoch: number, owners: string[]): Promise<void> {
    await this.call({ op: 'reconciled', mount, epoch, owners });
  }

  /** Renew the owner's lease on this peer (bounded short: a heartbeat must not queue up); answers where this copy stands for the mount. */
  async lease(mount: string, epoch: number, timeoutMs: number): Promise<LeaseAnswer> {
    return (await this.call<LeaseAnswer>({ op: 'lease', mount, epoch }, undefined, timeoutMs)).result;
  }

  /** Durability: one entry (`path`, as fsync or fdatasync would flush it), or a barrier for everything the peer applied before it. */
  async fsync(mount: string, entry: { path?: string; datasync?: boolean } = {}): Promise<MountDurability> {
    return (await this.call<MountDurability>({ op: 'fsync', mount, ...entry })).result;
  }

  /** Tell a peer that restarted uncleanly that its copy is exact again (the owner repaired it). */
  async clean(mount: string, epoch: number): Promise<void> {
    await this.call({ op: 'clean', mount, epoch });
  }

  /**
   * The owner repairs this unclean peer while it runs: until `clean`, this client's
   * session (and only it) may read and change the copy. True when the peer is unclean.
   */
  async repairing(mount: string, epoch: number, opts: { resync?: boolean } = {}): Promise<boolean> {
    return (await this.call<{ unclean: boolean }>({ op: 'repairing', mount, epoch, ...(opts.resync ? { resync: true } : {}) })).result.unclean;
  }

  /** End-to-end commitment of a mount's changes at this hop and after it (a long poll; docs/PROTOCOL.md). */
  async committed(mount: string, seq: number, known: number, waitMs: number): Promise<{ holdsFrom: number | null }> {
    return (await this.call<{ holdsFrom: number | null }>({ op: 'committed', mount, seq, known, waitMs }, undefined, this.timeoutMs, waitMs)).result;
  }

  /** Declare every copy complete through seq (after reconciliation). */
  async settle(mount: string, epoch: number, seq: number): Promise<void> {
    await this.call({ op: 'settle', mount, epoch, seq });
  }

  /** Apply a repair action (docs/PROTOCOL.md, "Repair"). */
  async repair(mount: string, epoch: number, action: RepairActionInput, payload?: Buffer): Promise<unknown> {
    return (await this.call({ op: 'repair', mount, epoch, action }, payload)).result;
  }

  /** Record an outcome for a change brought here by repair. */
  async adopt(mount: string, epoch: number, seq: number, subject: string, result: string): Promise<void> {
    await this.call({ op: 'adopt', mount, epoch, seq, subject, result });
  }

  /** Have this peer copy `path` (default: the whole tree) from another peer; answers when done. */
  async pull(mount: string, epoch: number, from: { url: string; token?: string; ticket?: string }, timeoutMs: number): Promise<PullProgress> {
    return (await this.call<PullProgress>({ op: 'pull', mount, epoch, from, path: '' }, undefined, timeoutMs)).result;
  }

  history(mount: string, after: number): Promise<HistoryEntry[]> {
    return this.call<HistoryEntry[]>({ op: 'history', mount, after }).then((r) => r.result);
  }

  async status(timeoutMs = this.timeoutMs): Promise<PeerStatus> {
    return JSON.parse(joined(await this.send('GET', ROUTES.status, undefined, 'status', timeoutMs)).toString('utf8')) as PeerStatus;
  }

  /**
   * The peer's tree manifest, in path order; without content hashes when
   * content is false. Allowed 30 times the call timeout: it walks the whole tree.
   */
  async manifest(opts: { content?: boolean; path?: string; origin?: Buffer | null } = {}): Promise<ManifestEntry[]> {
    const text = joined(await this.send('GET', manifestRoute(opts), undefined, 'manifest', this.timeoutMs * 30, 0, undefined, originHeader(opts.origin))).toString('utf8');
    const values = text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as unknown);
    // Complete only with its end line (protocol/ndjson-end.ts): a cut-short manifest would make a repair remove what it lacks.
    const endCount = values.length > 0 ? ndjsonEndCount(values[values.length - 1]) : null;
    if (endCount !== values.length - 1 || values.slice(0, -1).some((v) => ndjsonEndCount(v) !== null)) {
      throw new MirrorError('MFS_UNREACHABLE', `peer ${this.name} cut the manifest short (no end line, or not last, or a count that differs)`, { context: { peer: this.name, op: 'manifest' } });
    }
    return values.slice(0, -1) as ManifestEntry[];
  }

  /**
   * The peer's tree manifest as it is read, one entry at a time (memory holds a piece of
   * the answer, not the answer: a tree of millions of entries). Bounded per wait for the peer
   * (30 times the call timeout, as `manifest` is in all), not in all. On the route in use:
   * a failure ends the stream, and the caller starts over.
   */
  async *manifestStream(opts: { content?: boolean; path?: string; origin?: Buffer | null; after?: string; signal?: AbortSignal } = {}): AsyncGenerator<ManifestEntry> {
    const idleMs = this.timeoutMs * 30;
    const session = await withBound(this.connection(idleMs), idleMs, () => new MirrorError('MFS_TIMEOUT', `peer ${this.name} did not connect for the manifest within ${idleMs} ms`, { context: { peer: this.name, op: 'manifest' } }));
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ':method': 'GET', ':path': manifestRoute(opts), ...this.headers, ...originHeader(opts.origin) }, { endStream: true });
    } catch (err) {
      throw new MirrorError('MFS_UNREACHABLE', `peer ${this.name} unreachable for manifest: ${(err as Error).message}`, { context: { peer: this.name, op: 'manifest' }, cause: err });
    }
    const entries = readNdjson<ManifestEntry>(stream, { peer: this.name, what: 'manifest', idleMs, refusal: (body, status) => this.refusal(body, status, 'manifest'), signal: opts.signal });
    if (opts.after === undefined) return yield* entries;
    // A peer before `after` lists everything: what it should have skipped is skipped here.
    for await (const e of entries) if (compareWalkOrder(e.path, opts.after) > 0) yield e;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.channel?.retire();
    this.channel = null;
    const session = this.session;
    this.session = null;
    if (!session || session.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        session.destroy();
        resolve();
      }, 1000);
      session.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The one HTTP/2 session to this peer, (re)connected on demand after it fails or closes; the connect is bounded by timeoutMs. */
  private connection(timeoutMs: number): Promise<ClientHttp2Session> {
    if (this.closed) return Promise.reject(new MirrorError('MFS_UNREACHABLE', `client for peer ${this.name} is closed`, { context: { peer: this.name } }));
    const current = this.session;
    if (current && !current.destroyed && !current.closed) return Promise.resolve(current);
    if (this.connecting) return this.connecting;
    const route = this.route;
    this.connectAttempts++;
    const connecting: Promise<ClientHttp2Session> = openSession(this.currentRoute, this.transport, {
      peerMaxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS,
      // nghttp2 counts request bodies in flight against this (default 10 MB): a resync
      // sends several 4 MiB chunks at once, and beyond it streams fail with ENHANCE_YOUR_CALM.
      maxSessionMemory: 256,
      settings: { initialWindowSize: H2_STREAM_WINDOW_BYTES, maxFrameSize: H2_MAX_FRAME_BYTES },
    }, timeoutMs, this.name).then(
      (session) => {
        if (this.connecting === connecting) this.connecting = null;
        if (this.closed || this.route !== route) {
          session.destroy();
          throw new MirrorError('MFS_UNREACHABLE', `client for peer ${this.name} closed or switched route while connecting`, { context: { peer: this.name } });
        }
        if (session.connecting) session.once('connect', () => session.setLocalWindowSize(H2_CONNECTION_WINDOW_BYTES));
        else session.setLocalWindowSize(H2_CONNECTION_WINDOW_BYTES);
        session.on('error', () => undefined); // surfaced per request through the stream's 'error'
        session.on('close', () => {
          if (this.session === session) this.session = null;
        });
        session.on('goaway', () => {
          if (this.session === session) this.session = null;
        });
        session.setTimeout(60_000, () => {
          // Idle connections are not kept forever; the channel is ended too, or the session would wait on it.
          if (this.channel?.session === session) this.channel.retire();
          session.close();
        });
        this.session = session;
        return session;
      },
      (err: unknown) => {
        if (this.connecting === connecting) this.connecting = null;
        throw err;
      },
    );
    this.connecting = connecting;
    return connecting;
  }

  /** The identity this client presents (null in cleartext): what a mount signs pull tickets with. */
  get identity(): Identity | null {
    return this.transport.kind === 'tls' ? this.transport.identity : null;
  }

  /** The route in use now. */
  get currentRoute(): string {
    return this.routes[this.route]!;
  }

  /** Resolves with the answer's body as the chunks it arrived in (joined, or decoded into a caller's buffer, by the caller). */
  private async send(method: 'GET' | 'POST', path: string, body: Buffer[] | undefined, what: string, timeoutMs = this.timeoutMs, waitMs = 0, hold?: BodyHold, extra?: Record<string, string>): Promise<Buffer[]> {
    if (this.routes.length === 1) return this.sendOnce(method, path, body, what, timeoutMs + waitMs, hold, extra);
    // Held across the attempts too: the caller may let go of the payload once this call is answered.
    hold?.hold();
    try {
      return await this.sendOnRoutes(method, path, body, what, timeoutMs, waitMs, hold, extra);
    } finally {
      hold?.release();
    }
  }

  /**
   * Send on the route in use; on a transport failure (reset, refused, no answer)
   * switch to the next route and send the same request again. A change keeps
   * its stamp, so a peer that did get it the first time answers the re-send
   * from its record: nothing is applied twice. With several routes each
   * attempt gets an equal share of the bound, so the whole call stays bounded.
   */
  private async sendOnRoutes(method: 'GET' | 'POST', path: string, body: Buffer[] | undefined, what: string, timeoutMs: number, waitMs: number, hold?: BodyHold, extra?: Record<string, string>): Promise<Buffer[]> {
    const perAttempt = Math.max(100, Math.floor(timeoutMs / this.routes.length)) + waitMs;
    let last: unknown;
    for (let attempt = 0; attempt < this.routes.length; attempt++) {
      const route = this.route;
      const session = this.session;
      try {
        return await this.sendOnce(method, path, body, what, perAttempt, hold, extra);
      } catch (err) {
        // An untrusted certificate on one route is switched away from like a dead route (nothing was sent on it), loudly.
        if (!(isNoAnswer(err) || (err instanceof MirrorError && err.code === 'MFS_UNTRUSTED')) || this.closed) throw err;
        last = err;
        // One slow answer is not a dead route: a route whose connection still answers a ping is kept.
        if (err.code === 'MFS_TIMEOUT' && session && (await pingAnswers(session, ROUTE_PING_MS))) throw err;
        this.switchFrom(route, err.message);
      }
    }
    throw last;
  }

  /** Leave a failed route for the next one (once, however many requests saw it fail). */
  private switchFrom(route: number, reason: string): void {
    if (this.route !== route) return;
    this.route = (route + 1) % this.routes.length;
    const old = this.session;
    this.session = null;
    this.connecting = null;
    old?.destroy();
    this.onFailover?.(this.routes[route]!, this.currentRoute, reason);
  }

  private sendOnce(method: 'GET' | 'POST', path: string, body: Buffer[] | undefined, what: string, timeoutMs: number, hold?: BodyHold, extra?: Record<string, string>): Promise<Buffer[]> {
    const context = { peer: this.name, op: what };
    // The body may be written from where it lies until the stream is closed, whenever
    // this call's answer is given (a timed-out stream is still closing): held until then.
    hold?.hold();
    let held = hold !== undefined;
    /** The peer answered 200 in full: it read the whole body first, nothing reads it any more. */
    let answered = false;
    const letGo = (sent: boolean) => {
      if (!held) return;
      held = false;
      if (sent && !answered) hold!.spoil();
      hold!.release();
    };
    return new Promise<Buffer[]>((resolve, reject) => {
      let settled = false;
      let cancel = () => undefined as void;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      };
      // One bound on the whole exchange: connect (and TLS handshake), send, peer's work, response.
      const timer = setTimeout(() => {
        cancel();
        fail(new MirrorError('MFS_TIMEOUT', `peer ${this.name} did not answer ${what} within ${timeoutMs} ms`, { context }));
      }, timeoutMs);
      // The connect may be shared by calls with other bounds: it gets the client's own bound at least, each call keeps its own timer.
      this.connection(Math.max(timeoutMs, this.timeoutMs)).then((session) => {
        if (settled) return letGo(false);
        if (path === ROUTES.channel) {
          let channel: CallChannel;
          try {
            channel = this.channelOn(session); // throws if the session closed since it was handed out
          } catch (err) {
            letGo(false);
            return fail(new MirrorError('MFS_UNREACHABLE', `peer ${this.name} unreachable for ${what}: ${(err as Error).message}`, { context, cause: err }));
          }
          const id = channel.send(body ?? [], (err, frame) => {
            if (!err) answered = true;
            letGo(true);
            if (err) return fail(err);
            settled = true;
            clearTimeout(timer);
            resolve([frame!]);
          });
          cancel = () => {
            channel.forget(id);
            letGo(true);
          };
          return;
        }
        let stream: http2.ClientHttp2Stream;
        try {
          stream = session.request({ ':method': method, ':path': path, ...this.headers, ...extra }, { endStream: body === undefined });
        } catch (err) {
          letGo(false);
          return fail(new MirrorError('MFS_UNREACHABLE', `peer ${this.name} unreachable for ${what}: ${(err as Error).message}`, { context, cause: err }));
        }
        cancel = () => stream.close(http2.constants.NGHTTP2_CANCEL);
        let status = 0;
        const chunks: Buffer[] = [];
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('error', (err: Error & { code?: string }) => {
          fail(new MirrorError('MFS_UNREACHABLE', `peer ${this.name} unreachable for ${what}: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' '), { context, cause: err }));
        });
        stream.on('close', () => {
          if (settled) return;
          if (status === 0) {
            return fail(new MirrorError('MFS_UNREACHABLE', `peer ${this.name} closed the stream for ${what} without answering (code ${stream.rstCode})${this.cleartextHint}`, { context }));
          }
          settled = true;
          clearTimeout(timer);
          if (status === 200 && stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
            // Reset after it began: what came is not the whole answer (a manifest cut short would look like removals).
            return reject(new MirrorError('MFS_UNREACHABLE', `peer ${this.name} cut ${what} short (stream reset, code ${stream.rstCode})`, { context }));
          }
          if (status === 200) {
            answered = true;
            return resolve(chunks);
          }
          const refusal = this.refusal(joined(chunks), status, what);
          // A peer that refused our credentials closes the connection: the next call opens a new one (and is judged again).
          if (isCredentialRefusal(refusal) && this.session === session) this.session = null;
          reject(refusal);
        });
        // After the handler above, which tells a complete answer from any other end.
        stream.once('close', () => letGo(true));
        if (body !== undefined) writeParts(stream, body);
      }, (err: unknown) => {
        letGo(false);
        fail(err);
      });
    });
  }

  /** Said when a peer closes without answering: over cleartext the likeliest cause is a TLS peer. */
  private get cleartextHint(): string {
    return this.transport.kind === 'cleartext' ? ' (if the peer runs TLS, the default, use https:// and drop --insecure-cleartext)' : '';
  }

  /** The call channel on this session: the open one, or a new one (a channel on an older session is retired). */
  private channelOn(session: ClientHttp2Session): CallChannel {
    const current = this.channel;
    if (current && current.session === session && current.usable) return current;
    current?.retire();
    const channel = new CallChannel(session, this.headers, this.name, this.cleartextHint);
    this.channel = channel;
    return channel;
  }

  /** Protocol-level refusals (auth, version, malformed) carry an error frame; surface its code and message. */
  private refusal(buf: Buffer, status: number, what: string): MirrorError {
    const context = { peer: this.name, op: what };
    const wire = wireErrorIn(buf);
    if (wire) return MirrorError.fromWire(wire, context);
    return new MirrorError('MFS_BAD_RESPONSE', `peer ${this.name} answered ${what} with HTTP ${status}`, { context });
  }
}

/** The manifest's route: the whole tree or a subtree, with or without content hashes. */
function manifestRoute(opts: { content?: boolean; path?: string; after?: string }): string {
  const query: string[] = [];
  if (opts.content === false) query.push('content=0');
  if (opts.path) query.push(`path=${queryValueOfWire(opts.path)}`); // any bytes (byte-names.ts)
  if (opts.after !== undefined) query.push(`after=${queryValueOfWire(opts.after)}`);
  return query.length > 0 ? `${ROUTES.manifest}?${query.join('&')}` : ROUTES.manifest;
}

/** `promise`, or the error `late()` makes if it takes longer than ms. */
function withBound<T>(promise: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(late()), ms)));
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

/** A per-request origin header (a relay passing on one client's request). */
function originHeader(origin: Buffer | null | undefined): Record<string, string> | undefined {
  return origin ? { [ORIGIN_HEADER]: origin.toString('base64') } : undefined;
}

/** A peer this many epochs behind is not stepped through them (docs/TAKEOVER.md, epochs). */
const MAX_EPOCH_STEPS = 10_000;

function joined(chunks: Buffer[]): Buffer {
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** Bound on the ping that tells a slow route from a dead one. */
const ROUTE_PING_MS = 500;

function pingAnswers(session: ClientHttp2Session, ms: number): Promise<boolean> {
  if (session.destroyed || session.closed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    try {
      session.ping((err) => {
        clearTimeout(timer);
        resolve(!err);
      });
    } catch {
      clearTimeout(timer);
      resolve(false);
    }
  });
}
