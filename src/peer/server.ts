import { canKeepInodeIds } from '../store/inode-ids.js';
import { mkdirSync, realpathSync, statSync, statfsSync } from 'node:fs';
import http2, { type Http2Session, type Http2SecureServer, type Http2Server, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { MAX_FRAME_BYTES, decodeFrame, encodeError, encodeFrameParts, encodeResponseParts, writeParts, type ResponseHeader } from '../protocol/codec.js';
import { MirrorError, isDeterministic, toMirrorError, type WireError } from '../protocol/errors.js';
import { NAMESPACE_OPS, isMutation, requestSchema, type ControlRequest, type HandshakeResult, type Mutation, type PeerStatus, type PullProgress, type RepairAction, type Request } from '../protocol/ops.js';
import { H2_CONNECTION_WINDOW_BYTES, H2_MAX_CONCURRENT_STREAMS, H2_MAX_FRAME_BYTES, H2_STREAM_WINDOW_BYTES, PROTOCOL_HEADER, PROTOCOL_VERSION, ROUTES } from '../protocol/version.js';
import { applyMutation, witnessOf, type ApplyContext, type MutationResult } from '../store/apply.js';
import { clientCopy, makeEqual, storeCopy } from '../store/copy-tree.js';
import { applyRepair } from '../store/repair.js';
import { PeerClient } from '../client/peer-client.js';
import { durableSync } from '../store/durable.js';
import { FdCache } from '../store/fd-cache.js';
import { TokenAuth } from '../security/token.js';
import { walkManifest } from '../store/manifest.js';
import { NamespaceLock } from '../store/namespace-lock.js';
import { preadFully, serveRead } from '../store/reads.js';
import { BufferPool } from '../protocol/buffer-pool.js';
import { PeerState } from './state.js';
import { ServedChannel } from './channel.js';
import { Forwarder } from '../relay/forwarder.js';
import { wireQueryParam } from '../protocol/byte-names.js';
import { Tree } from '../store/tree.js';
import { PeerMetrics } from '../metrics/peer-metrics.js';
import { checkScheme, createServer, sessionVerdict, type SessionVerdict, type Transport } from '../security/transport.js';

export interface PeerServerOptions {
  /** Root of the mirrored tree; absent for a pure relay (which keeps no copy). */
  dataDir?: string;
  /** Where the peer keeps its SQLite state; default DATA/.mirrorfs (hidden from the protocol); required without dataDir. */
  stateDir?: string;
  /** Make this peer a relay: every accepted change is queued durably and sent on to this next hop. */
  forwardTo?: { url: string; token: string; timeoutMs?: number; maxQueueBytes?: number };
  host: string;
  port: number;
  name: string;
  token: string;
  /** Mutual TLS (this peer's identity, whom it lets in) or, only when asked for, cleartext. */
  transport: Transport;
  logger: Logger;
  /** A request body must arrive within this long (a stalled client cannot pin memory). */
  requestTimeoutMs?: number;
}

const FRAME_TYPE = 'application/x-mirrorfs-frame';
/** Bound on each call a pulling peer makes to its source. */
const PULL_CALL_TIMEOUT_MS = 60_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Answers a channel holds for a client that does not read them before it stops reading calls. */
const CHANNEL_UNSENT_BYTES = 8 * 1024 * 1024;
/** How long a closing channel or session may take to hand over its last bytes before it is destroyed. */
const CHANNEL_FLUSH_MS = 2000;
/** A client connection with no traffic this long is closed (mounts renew a lease every second). */
const SESSION_IDLE_MS = 5 * 60_000;
/** Read answers up to this size come from reused buffers: the mount reads 1 MiB blocks (mount/read-ahead.ts). */
const READ_BUFFER_BYTES = 1024 * 1024;
/** Free read buffers kept: several readers' read-ahead in flight (an idle peer holds at most 8 MiB for this). */
const READ_BUFFERS_KEPT = 8;

/**
 * The filer: an HTTP/2 server that authenticates each request, decodes and
 * validates it, applies it to the data directory exactly once and durably, and
 * answers. The data path of one write: stream -> readBody -> decodeFrame ->
 * requestSchema -> mutate (epoch check, dedupe, intent) -> applyMutation ->
 * recordDone -> respond.
 */
export class PeerServer {
  private readonly server: Http2Server | Http2SecureServer;
  private readonly sessions = new Set<Http2Session>();
  /** Open call channels (protocol/envelope.ts): ended at shutdown and with their idle session. */
  private readonly channels = new Set<ServedChannel>();
  private channelCalls = 0;
  /** The verdict on each session's client certificate, judged when it opens and again when the trust file changes. */
  private readonly verdicts = new WeakMap<Http2Session, SessionVerdict>();
  private readonly state: PeerState;
  /** Null for a pure relay: it keeps no copy, and answers reads from its next hop. */
  private readonly tree: Tree | null;
  private readonly ctx: ApplyContext | null;
  private readonly forwarder: Forwarder | null;
  private readonly auth: TokenAuth;
  private readonly lock = new NamespaceLock();
  /** (mount, seq) -> the running application, so a concurrent duplicate joins it. */
  private readonly running = new Map<string, { subject: string; work: Promise<{ result: unknown }> }>();
  private readonly startedAt = Date.now();
  private readonly startedMono = performance.now();
  private readonly log: Logger;
  private inFlight = 0;
  private pulling: PullProgress | null = null;
  /** Per mount: the newest epoch the next hop refused for good (a relay then refuses it too). */
  private readonly fencedDownstream = new Map<string, number>();
  /** When the owner last renewed its lease (memory only: after a restart the lease counts from the start). */
  private leaseAt: number | null = null;
  /** Prometheus metrics (served by --metrics-listen). */
  readonly metrics: PeerMetrics;
  /** Sessions refused for their certificate: closed once the refusal is answered. */
  private readonly refusedSessions = new WeakSet<Http2Session>();
  /**
   * Buffers for answers to data reads of up to 1 MiB (the mount's read-ahead
   * block), reused instead of one new buffer per read: each new one was
   * external memory that drove V8's full collections, which took a serving
   * peer's CPU per MiB read from ~1 ms to ~3 ms (session 8).
   */
  private readonly readBuffers = new BufferPool(READ_BUFFER_BYTES, READ_BUFFERS_KEPT);
  private applied = 0;
  private appliedBytes = 0;
  private shuttingDown = false;
  port = 0;

  /** Whether this copy can keep the mirror's inode numbers: tried at the first handshake. */
  private inodeIds: boolean | undefined;

  private constructor(private readonly opts: PeerServerOptions) {
    this.log = opts.logger;
    const dataDir = opts.dataDir === undefined ? null : realpathSync(opts.dataDir);
    if (dataDir !== null && !statSync(dataDir).isDirectory()) throw new Error(`data directory ${dataDir} is not a directory`);
    if (dataDir === null && (!opts.stateDir || !opts.forwardTo)) throw new Error('a peer without a data directory is a pure relay: it needs a state directory and a next hop');
    const stateDir = opts.stateDir ?? join(dataDir!, '.mirrorfs');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    this.state = new PeerState(join(stateDir, 'peer.db'));
    this.tree = dataDir === null ? null : new Tree(dataDir);
    this.ctx = this.tree && { tree: this.tree, fds: new FdCache({ synchronousWrites: true }), sync: durableSync };
    if (opts.forwardTo) for (const route of opts.forwardTo.url.split('|')) checkScheme(route, opts.transport, 'next hop');
    this.forwarder = opts.forwardTo
      ? new Forwarder(this.state.queue, new PeerClient(opts.forwardTo.url, {
          name: `next hop ${opts.forwardTo.url}`,
          token: opts.forwardTo.token,
          transport: opts.transport,
          timeoutMs: opts.forwardTo.timeoutMs ?? NEXT_HOP_TIMEOUT_MS,
          onFailover: (from, to, reason) => this.log.warn({ from, to, reason }, 'route to the next hop failed; using the next route'),
        }), this.log, opts.forwardTo.maxQueueBytes, (mount, epoch) => {
          this.fencedDownstream.set(mount, Math.max(epoch, this.fencedDownstream.get(mount) ?? 0));
          this.log.error({ mount, epoch }, 'the next hop refuses this mount\'s epoch (another mount took it over): this relay refuses that epoch too from now on');
        })
      : null;
    this.auth = new TokenAuth(opts.token);
    this.metrics = new PeerMetrics(() => this.status(), this.forwarder !== null, this.tree !== null);
    this.server = createServer(opts.transport, {
      maxSessionMemory: 256,
      settings: { maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS, initialWindowSize: H2_STREAM_WINDOW_BYTES, maxFrameSize: H2_MAX_FRAME_BYTES },
    });
    this.server.on('session', (session: Http2Session) => {
      this.verdictOf(session);
      // Idle connections are closed: an untrusted or forgotten client cannot hold one for ever.
      session.setTimeout(SESSION_IDLE_MS, () => this.closeSession(session));
      this.sessions.add(session);
      session.setLocalWindowSize(H2_CONNECTION_WINDOW_BYTES);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', (err) => this.log.debug({ err }, 'session error'));
    });
    this.server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.onStream(stream, headers));
  }

  static async start(opts: PeerServerOptions): Promise<PeerServer> {
    const peer = new PeerServer(opts);
    await new Promise<void>((resolve, reject) => {
      peer.server.once('error', reject);
      peer.server.listen(opts.port, opts.host, () => {
        peer.server.off('error', reject);
        resolve();
      });
    });
    peer.port = (peer.server.address() as AddressInfo).port;
    peer.forwarder?.start();
    peer.log.info({ host: opts.host, port: peer.port, dataDir: peer.tree?.root ?? null, forwardTo: peer.forwarder?.to ?? null, peerId: peer.state.peerId, epoch: peer.state.epoch }, 'peer listening');
    return peer;
  }

  get peerId(): string {
    return this.state.peerId;
  }

  /** Stop accepting work, let in-flight operations finish (bounded), close the state. */
  async shutdown(graceMs = 10_000): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.log.info({ inFlight: this.inFlight }, 'shutting down: finishing in-flight operations');
    this.server.close();
    for (const s of this.sessions) s.close();
    const deadline = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (this.inFlight > 0) this.log.warn({ inFlight: this.inFlight }, 'grace period over with operations still in flight');
    // Channels end after their last answer is handed over (bounded), so answers of calls done in the grace period reach the client.
    for (const channel of this.channels) channel.finish();
    const channelDeadline = Date.now() + CHANNEL_FLUSH_MS;
    while (this.channels.size > 0 && Date.now() < channelDeadline) await new Promise((r) => setTimeout(r, 5));
    for (const s of this.sessions) s.destroy();
    await this.forwarder?.stop();
    this.ctx?.fds.closeAll();
    this.state.close();
    this.log.info('peer stopped');
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', (err) => this.log.debug({ err }, 'stream error'));
    if (headers[':method'] === 'POST' && headers[':path'] === ROUTES.channel) return this.openChannel(stream, headers);
    stream.setTimeout(this.opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    this.inFlight++;
    let finished = false;
    const done = () => {
      if (!finished) {
        finished = true;
        this.inFlight--;
      }
    };
    stream.once('close', done);
    this.handle(stream, headers)
      .catch((err) => this.refuseStream(stream, err))
      .finally(done);
  }

  private async handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    this.admit(stream, headers);
    const method = headers[':method'];
    const url = new URL(headers[':path'] ?? '/', 'http://peer');
    const route = url.pathname;
    if (method === 'POST' && route === ROUTES.call) return this.handleCall(stream, headers);
    if (method === 'GET' && route === ROUTES.status) return respondJson(stream, await this.statusWithHops());
    if (method === 'GET' && route === ROUTES.manifest) {
      const path = wireQueryParam(headers[':path'] ?? '', 'path') ?? ''; // any bytes: not searchParams (byte-names.ts)
      if (!this.ctx) return this.manifestViaNextHop(stream, url.searchParams.get('content') !== '0', path);
      return this.streamManifest(stream, url.searchParams.get('content') !== '0', this.manifestRoot(path));
    }
    throw new MirrorError('MFS_NOT_FOUND', `no route ${method} ${route}`);
  }

  /** Let a request (or a channel) in, or throw the refusal: shutting down, certificate, protocol version, token. */
  private admit(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    if (this.shuttingDown) throw new MirrorError('MFS_SHUTTING_DOWN');
    // The certificate first: an untrusted client learns nothing, not even whether its token is right.
    this.checkTrusted(stream.session);
    const version = headers[PROTOCOL_HEADER];
    if (version !== String(PROTOCOL_VERSION)) {
      throw new MirrorError('MFS_PROTOCOL_MISMATCH', `peer speaks mirrorfs protocol ${PROTOCOL_VERSION}, client sent ${version === undefined ? 'no version' : JSON.stringify(version)}; run the same mirrorfs version on both sides`);
    }
    if (!this.auth.check(headers.authorization)) {
      this.log.warn({ path: headers[':path'] }, 'refused request with missing or wrong token');
      throw new MirrorError('MFS_AUTH', 'missing or wrong token (Authorization: Bearer ...)');
    }
  }

  /** Refuse a session whose client certificate is not (or no longer) trusted. */
  private checkTrusted(session: Http2Session | undefined): void {
    const verdict = session ? this.verdictOf(session) : undefined;
    if (verdict?.trusted) return;
    // Answered, then the connection is closed: the client reconnects (and is judged again) on its next call.
    if (session) this.refusedSessions.add(session);
    throw new MirrorError('MFS_AUTH_CERT', `this peer does not trust the client certificate ${verdict?.fingerprint ?? '(none)'}; add its fingerprint to the peer's trust file (docs/SECURITY.md)`);
  }

  /** A refusal answered on a request's own stream, counted; a session refused for its certificate is then closed. */
  private refuseStream(stream: ServerHttp2Stream, err: unknown): void {
    const e = toMirrorError(err, {});
    if (e.code === 'MFS_INTERNAL') this.log.error({ err }, 'internal error handling request');
    if (e.httpStatus !== 200) this.metrics.refused(e.code, e.errno);
    respondError(stream, e);
    if (stream.session && this.refusedSessions.has(stream.session)) stream.session.close();
  }

  /** A call channel: admitted once (the certificate is judged again for each call), then each envelope is a call. */
  private openChannel(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    try {
      this.admit(stream, headers);
    } catch (err) {
      return this.refuseStream(stream, err);
    }
    // One channel per connection, so the bound on calls at once is per connection as it was with
    // a stream each. A client opens another only when it is done with the first: the older goes.
    for (const old of this.channels) if (old.session === stream.session) old.close();
    const channel = new ServedChannel(stream, (frame, ch) => this.answerChannelCall(frame, ch), {
      maxInFlight: H2_MAX_CONCURRENT_STREAMS,
      maxUnsentBytes: CHANNEL_UNSENT_BYTES,
      stallMs: this.opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      logger: this.log,
    });
    this.channels.add(channel);
    stream.once('close', () => this.channels.delete(channel));
  }

  /** Close a session (idle, or refused for its certificate): its channel first, then the session, destroyed if it lingers. */
  private closeSession(session: Http2Session): void {
    for (const channel of this.channels) if (channel.session === session) channel.close();
    endSession(session);
  }

  /** One call from a channel: a change only (answers to reads may be large; they keep a stream each). Never rejects. */
  private async answerChannelCall(frame: Buffer, channel: ServedChannel): Promise<Buffer[]> {
    const session = channel.session;
    this.inFlight++;
    this.channelCalls++;
    let op: string | null = null;
    const started = performance.now();
    try {
      if (this.shuttingDown) throw new MirrorError('MFS_SHUTTING_DOWN');
      this.checkTrusted(session);
      const { req, payload } = decodeCall(frame);
      op = req.op;
      if (!isMutation(req)) throw new MirrorError('MFS_MALFORMED', `only changes travel on the call channel, not ${req.op}: send it to ${ROUTES.call}`);
      const { result } = await this.mutate(req, payload);
      const { parts, failed } = answerParts(result);
      const errno = failed ?? outcomeErrno(result);
      this.metrics.observe(op, (performance.now() - started) / 1000, errno === null && req.op === 'write' ? payload.length : 0, errno);
      return parts;
    } catch (err) {
      const e = toMirrorError(err, {});
      if (e.code === 'MFS_INTERNAL') this.log.error({ err }, 'internal error handling a channel call');
      if (op !== null) this.metrics.observe(op, (performance.now() - started) / 1000, 0, e.errno);
      if (e.httpStatus !== 200) this.metrics.refused(e.code, e.errno);
      if (session && this.refusedSessions.has(session)) {
        // Refused for its certificate: this call is answered, then the channel ends with the same reason and the connection is closed.
        setImmediate(() => {
          channel.refuse(e); // resets the channel itself if the client does not close it
          endSession(session);
        });
      }
      return [encodeError(e)];
    } finally {
      this.inFlight--;
    }
  }

  /** The (possibly cached) verdict on a session's client; a new refusal is logged once. */
  private verdictOf(session: Http2Session): SessionVerdict {
    const cached = this.verdicts.get(session);
    const verdict = sessionVerdict(this.opts.transport, session, cached);
    if (verdict !== cached) {
      this.verdicts.set(session, verdict);
      if (!verdict.trusted) {
        const fields = { fingerprint: verdict.fingerprint, why: verdict.why, remote: session.socket?.remoteAddress };
        if (verdict.generation === -1) this.log.error(fields, 'refusing a client: the trust file cannot be read');
        else this.log.warn(fields, 'refusing a client whose certificate is not trusted');
      }
    }
    return verdict;
  }

  private async handleCall(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const { req, payload } = decodeCall(await readBody(stream, headers));
    const started = performance.now();
    const written = req.op === 'write' ? payload.length : 0;
    try {
      const errno = await this.dispatch(stream, req, payload);
      this.metrics.observe(req.op, (performance.now() - started) / 1000, errno === null ? written : 0, errno);
    } catch (err) {
      this.metrics.observe(req.op, (performance.now() - started) / 1000, 0, toMirrorError(err, {}).errno);
      throw err;
    }
  }

  /** Run one decoded operation and answer it; resolves with the errno of an error outcome (null: it succeeded). */
  private async dispatch(stream: ServerHttp2Stream, req: Request, payload: Buffer): Promise<string | null> {
    if (isMutation(req)) {
      const { result } = await this.mutate(req, payload);
      return respondFrame(stream, result) ?? outcomeErrno(result);
    }
    if (!this.ctx && !LOCAL_CONTROL_OPS.has(req.op)) {
      // A pure relay keeps no copy: reads, repairs and pulls are the next hop's, once it has everything queued here.
      if (req.op === 'pull') stream.setTimeout(0);
      const out = await this.viaNextHop(req, payload);
      if (req.op === 'adopt') await this.adopt(req); // and recorded here, so this hop's history has no hole
      return respondFrame(stream, out.result === undefined ? { ok: true } : { ok: true, result: out.result }, out.payload);
    }
    if (req.op === 'pull') {
      stream.setTimeout(0); // the answer comes when the copy is done; the caller bounds the wait
      return respondFrame(stream, { ok: true, result: await this.pull(req, stream) });
    }
    if (req.op === 'repair') {
      const result = await this.repair(req, payload);
      return respondFrame(stream, result === null ? { ok: true } : { ok: true, result });
    }
    if (req.op === 'handshake' || req.op === 'progress' || req.op === 'history' || req.op === 'adopt' || req.op === 'settle' || req.op === 'committed' || req.op === 'lease' || req.op === 'reconciled') {
      return respondFrame(stream, { ok: true, result: await this.control(req) });
    }
    const ctx = this.ctx!;
    if (req.op === 'read') return this.answerRead(stream, ctx, req);
    const out = await this.lock.run(false, async () => serveRead(ctx, req));
    return respondFrame(stream, out.result === undefined ? { ok: true } : { ok: true, result: out.result }, out.payload);
  }

  private async control(req: ControlRequest): Promise<unknown> {
    if (req.op === 'progress') return this.state.progress(req.mount);
    if (req.op === 'reconciled') {
      this.checkOwnership(req);
      this.state.markReconciled(req.owners);
      return { unreconciled: this.state.unreconciled };
    }
    if (req.op === 'lease') {
      this.checkOwnership(req);
      this.leaseAt = performance.now();
      return { leaseAgeMs: 0 };
    }
    if (req.op === 'committed') {
      // A mirror commits before it answers: whatever it acknowledged is committed. A relay asks down the chain.
      if (!this.forwarder) return { holdsFrom: null };
      return { holdsFrom: await this.forwarder.committed(req.mount, req.seq, req.known, Date.now() + req.waitMs) };
    }
    if (req.op === 'history') return this.state.history(req.mount, req.after, req.limit);
    if (req.op === 'adopt') return this.adopt(req);
    if (req.op === 'settle') {
      this.checkOwnership(req);
      this.state.settle(req.mount, req.seq);
      return { settledThrough: this.state.settledThrough(req.mount) };
    }
    if (req.op === 'repair' || req.op === 'pull') throw new MirrorError('MFS_INTERNAL', `${req.op} is not a control request`);
    if (req.protocol !== PROTOCOL_VERSION) {
      throw new MirrorError('MFS_PROTOCOL_MISMATCH', `peer speaks mirrorfs protocol ${PROTOCOL_VERSION}, mount speaks ${req.protocol}`);
    }
    // Exclusively: a change of owner waits for every operation already admitted
    // under the old epoch, so none of them lands after the new owner is told it
    // owns the peer. A relay passes the handshake down inside the same lock: a
    // change of the old epoch still being queued is then queued before it looks.
    return this.lock.run(true, async () => {
      if (this.forwarder) await this.handshakeNextHop(req);
      return this.handshake(req);
    });
  }

  private handshake(req: Extract<ControlRequest, { op: 'handshake' }>): HandshakeResult {
    const { epoch, owner, ownerSince } = this.state;
    if (req.epoch < epoch) {
      throw new MirrorError('MFS_FENCED', `epoch ${req.epoch} is older than this peer's epoch ${epoch} (owned by ${owner} since ${ownerSince})`);
    }
    if (req.epoch === epoch && owner !== null && owner !== req.mount) {
      throw new MirrorError('MFS_NOT_OWNER', `peer is owned by mount ${owner} since ${ownerSince} at epoch ${epoch}`);
    }
    this.leaseAt = performance.now(); // a handshake is a renewal: the new owner is alive
    if (req.epoch !== epoch || owner !== req.mount) {
      this.state.setOwner(req.epoch, req.mount);
      this.log.info({ epoch: req.epoch, owner: req.mount }, 'ownership established');
    }
    this.inodeIds ??= this.tree === null || canKeepInodeIds(this.tree.root);
    return { protocol: PROTOCOL_VERSION, peer: { name: this.opts.name, id: this.state.peerId }, epoch: this.state.epoch, owner: this.state.owner, inodeIds: this.inodeIds };
  }

  /**
   * A relay passes a handshake on, so ownership (and fencing) holds end to end:
   * a refusal downstream is the relay's refusal. An unreachable next hop does
   * not stop the mount: changes queue here until the link returns.
   */
  private async handshakeNextHop(req: Extract<ControlRequest, { op: 'handshake' }>): Promise<void> {
    try {
      // Not waited for: the mount's own handshake is bounded by its peer timeout.
      const told = await this.forwarder!.handshakeWhenOlderDrained(req.mount, req.epoch, 0);
      if (!told) this.log.warn({ to: this.forwarder!.to, epoch: req.epoch }, 'handshake: changes of an older epoch are still queued; the next hop is told the new epoch after they reach it');
    } catch (err) {
      const e = toMirrorError(err, { op: 'handshake' });
      if (e.code === 'MFS_UNREACHABLE' || e.code === 'MFS_TIMEOUT' || e.code === 'MFS_SHUTTING_DOWN') {
        this.log.warn({ to: this.forwarder!.to, err: e.message }, 'handshake: next hop unreachable; changes will queue here until it returns');
        return;
      }
      throw new MirrorError(e.code, `next hop ${this.forwarder!.to} refused: ${e.message}`, { errno: e.errno });
    }
  }

  /** A request a pure relay cannot answer itself: sent to the next hop once everything queued here has reached it. */
  private async viaNextHop(req: Request, payload: Buffer): Promise<{ result?: unknown; payload?: Buffer }> {
    const forwarder = this.forwarder!;
    // Read-your-writes: what this relay acknowledged before the request reaches the next hop first
    // (statfs describes space, not content: it need not wait).
    if (req.op !== 'statfs') await forwarder.waitQueuedBeforeNow(NEXT_HOP_TIMEOUT_MS);
    const out = await forwarder.call(req, payload, req.op === 'pull' ? PULL_CALL_TIMEOUT_MS * 60 : undefined);
    return { result: out.result, payload: out.payload.length > 0 ? out.payload : undefined };
  }

  /**
   * A data read. The namespace lock is held only to open (or find) the file's
   * fd: the pread runs on the thread pool after it, so a rename or unlink does
   * not wait for a disk read (the fd cache closes an fd only when its last
   * user lets go).
   *
   * Over TLS the answer comes from a pooled buffer, which goes back to the
   * pool when its stream closed normally (rstCode 0): the session hands the
   * bytes to TLS, which encrypts them into its own memory, within the same
   * native call that sends them, so nothing reads the buffer after that. A
   * stream reset or cut off may have left them queued, so its buffer is never
   * reused, only collected. Over cleartext a socket write reads the bytes from
   * where they lie until the kernel took them, which no stream event reports:
   * a new buffer per read.
   */
  private async answerRead(stream: ServerHttp2Stream, ctx: ApplyContext, req: Extract<Request, { op: 'read' }>): Promise<string | null> {
    const file = await this.lock.run(false, async () => ctx.fds.acquire(req.path, () => ctx.tree.resolve(req.path)));
    const pooled = this.opts.transport.kind === 'tls' && req.length <= READ_BUFFER_BYTES;
    const buf = pooled ? this.readBuffers.acquire() : Buffer.allocUnsafe(req.length);
    const giveBack = () => {
      if (pooled) this.readBuffers.release(buf);
    };
    let length: number;
    try {
      length = await preadFully(file.fd, buf, req.offset, req.length);
    } catch (err) {
      giveBack(); // nothing was sent from it
      throw err;
    } finally {
      file.release();
    }
    if (stream.destroyed) {
      giveBack();
      return null;
    }
    if (pooled) stream.once('close', () => (stream.rstCode === http2.constants.NGHTTP2_NO_ERROR ? this.readBuffers.release(buf) : this.readBuffers.forget(buf)));
    return respondFrame(stream, { ok: true }, buf.subarray(0, length));
  }

  /** Refuse an operation whose stamp is not the current owner's epoch. */
  private checkOwnership(req: { mount: string; epoch: number }): void {
    const { epoch, owner } = this.state;
    if (req.epoch < epoch) throw new MirrorError('MFS_FENCED', `operation from epoch ${req.epoch}, peer is at epoch ${epoch}, owned by mount ${owner} since ${this.state.ownerSince}`);
    if (req.epoch <= (this.fencedDownstream.get(req.mount) ?? -1)) throw new MirrorError('MFS_FENCED', `operation from epoch ${req.epoch}: this relay's next hop refuses that epoch (another mount took it over)`);
    if (req.epoch > epoch) throw new MirrorError('MFS_NO_HANDSHAKE', `operation from epoch ${req.epoch}, peer is at epoch ${epoch}: handshake first`);
    if (req.mount !== owner) throw new MirrorError('MFS_NOT_OWNER', `operation from mount ${req.mount}, peer is owned by ${owner} at epoch ${epoch}`);
  }

  /** Apply one changing operation exactly once; answers a re-send with the first outcome. */
  private mutate(req: Mutation, payload: Buffer): Promise<{ result: unknown }> {
    this.checkOwnership(req);
    const key = `${req.mount}\0${req.seq}`;
    const subject = subjectOf(req);
    const joined = this.running.get(key);
    if (joined) {
      if (joined.subject !== subject) throw seqConflict(req, joined.subject, subject);
      return joined.work;
    }
    const prior = this.state.lookup(req.mount, req.seq);
    if (prior && prior.subject !== subject) throw seqConflict(req, prior.subject, subject);
    if (prior?.state === 'done') return Promise.resolve({ result: JSON.parse(prior.result!) });
    if (!prior && req.seq < this.state.forgottenBelow(req.mount)) {
      throw new MirrorError('MFS_SEQ_FORGOTTEN', `seq ${req.seq} of mount ${req.mount} is older than the retained history`);
    }
    const inDoubt = prior?.state === 'intent' ? { witness: prior.result } : null;
    const work = this.applyOnce(req, payload, subject, inDoubt).finally(() => this.running.delete(key));
    this.running.set(key, { subject, work });
    return work;
  }

  /** `inDoubt`: an intent for this change was found without an outcome (a crash), with its witness. */
  private async applyOnce(req: Mutation, payload: Buffer, subject: string, inDoubt: { witness: string | null } | null): Promise<{ result: unknown }> {
    const path = 'path' in req ? req.path : req.from;
    return this.lock.run(EXCLUSIVE_OPS.has(req.op), async () => {
      this.checkOwnership(req); // again: a takeover may have completed while this waited for the lock
      const ctx = this.ctx;
      // Queued for the next hop in the same commit as its outcome: both or neither survive a crash.
      const forward = this.forwarder ? { request: JSON.stringify(req), payload } : undefined;
      this.forwarder?.checkRoom(payload.length); // before anything is applied
      if (!ctx) {
        // A pure relay: accepted means durably queued; the far end's answer is checked when it comes (Forwarder).
        // `provisional` tells the mount that this "ok" does not outvote a peer that applied the change.
        const outcome = { ok: true, result: req.op === 'write' ? { written: payload.length, provisional: true } : { provisional: true } };
        await this.state.recordDone(req.mount, req.seq, req.epoch, req.op, subject, JSON.stringify(outcome), forward);
        this.applied++;
        this.forwarder!.noteQueued(payload.length);
        return { result: outcome };
      }
      const withIntent = needsIntent(req);
      if (withIntent && !inDoubt) this.state.recordIntent(req.mount, req.seq, req.epoch, req.op, subject, witnessOf(ctx, req));
      let outcome: { ok: true; result?: unknown } | { ok: false; error: WireError };
      let stats: NonNullable<MutationResult>['stats'];
      try {
        const applied = await applyMutation(ctx, req, payload, inDoubt !== null, inDoubt?.witness ?? null);
        // The attributes after the change go to the caller, not into the record (see MutationResult).
        const { stats: touched, ...result } = applied ?? {};
        stats = touched;
        outcome = Object.keys(result).length === 0 ? { ok: true } : { ok: true, result };
        this.applied++;
        if (req.op === 'write') this.appliedBytes += payload.length;
      } catch (err) {
        const e = toMirrorError(err, { op: req.op, path });
        if (e.code === 'MFS_INTERNAL' || !isDeterministic(e.errno)) {
          // Transient: not applied (or undone), so not remembered; a retry may succeed.
          this.log.warn({ op: req.op, path, errno: e.errno, err: e.message }, 'operation failed (transient, not recorded)');
          // An intent recorded now is dropped; one found after a crash stays (the change may be there).
          if (withIntent && !inDoubt) this.state.forget(req.mount, req.seq);
          throw e;
        }
        outcome = { ok: false, error: e.toWire() };
      }
      await this.state.recordDone(req.mount, req.seq, req.epoch, req.op, subject, JSON.stringify(outcome), forward);
      this.forwarder?.noteQueued(payload.length);
      if (outcome.ok && stats) return { result: { ok: true, result: { ...(outcome.result as object | undefined), stats } } };
      return { result: outcome };
    });
  }

  /**
   * A repair action from the owner: applied exclusively (it may remove a
   * subtree or replace a name) and durably, but not recorded: repairs set state.
   */
  private repair(req: Extract<ControlRequest, { op: 'repair' }>, payload: Buffer): Promise<unknown> {
    return this.applyRepairAs(req, req.action, payload);
  }

  /** A repair action on behalf of an owner (a repair request, or a pull it started). */
  private applyRepairAs(owner: { mount: string; epoch: number }, action: RepairAction, payload: Buffer): Promise<unknown> {
    const req = owner;
    const path = 'path' in action ? action.path : 'from' in action ? action.from : '';
    this.checkOwnership({ mount: req.mount, epoch: req.epoch });
    // The same rule as for operations: exclusive for what can remove a name or
    // make a symlink; put-file never removes (it refuses a name of another type).
    const exclusive = action.op === 'remove-tree' || EXCLUSIVE_OPS.has(action.op as Mutation['op']);
    return this.lock.run(exclusive, async () => {
      this.checkOwnership({ mount: req.mount, epoch: req.epoch });
      try {
        const result = await applyRepair(this.requireCopy(), action, payload);
        this.log.info({ action: action.op, path }, 'repair applied');
        return result;
      } catch (err) {
        throw toMirrorError(err, { op: `repair ${action.op}`, path });
      }
    });
  }

  /**
   * Copy another peer's tree here directly (a full resync without the mount in
   * the data path): reads go to the source with its token, changes are repair
   * actions applied here as the owner, one flush at the end. One at a time.
   */
  private async pull(req: Extract<ControlRequest, { op: 'pull' }>, stream: ServerHttp2Stream): Promise<PullProgress> {
    this.checkOwnership(req);
    if (this.pulling) throw new MirrorError('MFS_ERRNO', `a pull from ${this.pulling.from} is already running`, { errno: 'EBUSY' });
    const from = req.from.url;
    this.pulling = { from, entries: 0, totalEntries: 0, filesCopied: 0, bytesCopied: 0, totalBytes: 0, removed: 0 };
    try {
      for (const route of from.split('|')) checkScheme(route, this.opts.transport, 'pull source');
    } catch (err) {
      this.pulling = null;
      throw new MirrorError('MFS_MALFORMED', (err as Error).message);
    }
    const client = new PeerClient(from, { name: `source ${from}`, token: req.from.token, transport: this.opts.transport, timeoutMs: PULL_CALL_TIMEOUT_MS });
    this.log.warn({ from, path: req.path }, 'pull: making this tree equal to another peer\'s');
    try {
      // The caller gave up (its bound, or it died): stop at the next action, so a later pull is not refused as busy.
      let cancelled = false;
      stream.once('close', () => (cancelled = true));
      const here = storeCopy(this.opts.name, this.requireCopy(), {
        apply: (action, payload) => {
          if (cancelled) throw new MirrorError('MFS_ERRNO', `pull from ${from} cancelled: the caller went away`, { errno: 'ECANCELED' });
          return this.applyRepairAs(req, action, payload);
        },
      });
      const done = await makeEqual(clientCopy(client), here, req.path, { flushAtEnd: true, onProgress: (p) => (this.pulling = { from, ...p }) });
      this.log.warn({ from, files: done.filesCopied, bytes: done.bytesCopied, removed: done.removed }, 'pull finished');
      return { from, ...done };
    } catch (err) {
      throw toMirrorError(err, { op: 'pull', path: req.path });
    } finally {
      this.pulling = null;
      await client.close();
    }
  }

  /** Record an outcome brought here by repair, unless this peer already has one for that seq. */
  private async adopt(req: Extract<ControlRequest, { op: 'adopt' }>): Promise<{ adopted: boolean }> {
    this.checkOwnership(req);
    const prior = this.state.lookup(req.mount, req.seq);
    if (prior?.state === 'done') return { adopted: false };
    let op: string;
    try {
      op = String((JSON.parse(req.subject) as { op?: unknown }).op ?? 'unknown');
    } catch {
      throw new MirrorError('MFS_MALFORMED', 'adopt: subject is not JSON');
    }
    await this.state.recordDone(req.mount, req.seq, req.epoch, op, req.subject, req.result);
    return { adopted: true };
  }

  private status(): PeerStatus {
    return {
      name: this.opts.name,
      id: this.state.peerId,
      protocol: PROTOCOL_VERSION,
      epoch: this.state.epoch,
      owner: this.state.owner,
      ownerSince: this.state.ownerSince,
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      inFlight: this.inFlight,
      applied: this.applied,
      appliedBytes: this.appliedBytes,
      dataDir: this.tree?.root ?? null,
      durability: 'fsync-before-ack',
      nowMs: Date.now(),
      disk: this.tree ? diskOf(this.tree.root) : null,
      pull: this.pulling,
      relay: this.forwarder ? { ...this.forwarder.status(), next: null } : null,
      unreconciled: this.state.unreconciled,
      // Monotonic: a step of the wall clock does not make a lease look older or younger.
      leaseAgeMs: Math.round(performance.now() - (this.leaseAt ?? this.startedMono)),
      readBuffers: { allocated: this.readBuffers.allocated, inUse: this.readBuffers.inUse, idle: this.readBuffers.idle },
      channels: { open: this.channels.size, calls: this.channelCalls },
    };
  }

  /** Status, and for a relay the status of each hop after it (bounded: an unreachable hop is reported, not waited for). */
  private async statusWithHops(): Promise<PeerStatus> {
    const status = this.status();
    if (this.forwarder && status.relay) {
      status.relay.next = await this.forwarder.nextStatus().catch((err: unknown) => ({ error: (err as Error).message }));
    }
    return status;
  }

  private requireCopy(): ApplyContext {
    if (!this.ctx) throw new MirrorError('MFS_ERRNO', 'this peer is a pure relay and keeps no copy', { errno: 'EOPNOTSUPP' });
    return this.ctx;
  }

  /**
   * The subtree a manifest lists: '' for the whole tree, the path when it is
   * confined, null (an empty manifest) when a directory above it does not
   * exist. Escapes (.., symlinked ancestors, reserved names) are refused.
   */
  private manifestRoot(path: string): string | null {
    if (path === '') return '';
    try {
      this.requireCopy().tree.resolve(path);
      return path;
    } catch (err) {
      if (err instanceof MirrorError && err.code === 'MFS_ERRNO' && (err.errno === 'ENOENT' || err.errno === 'ENOTDIR')) return null;
      throw err;
    }
  }

  /** A pure relay's manifest is its next hop's, once everything queued here has reached it. */
  private async manifestViaNextHop(stream: ServerHttp2Stream, content: boolean, path: string): Promise<void> {
    await this.forwarder!.waitQueuedBeforeNow(NEXT_HOP_TIMEOUT_MS);
    const entries = await this.forwarder!.manifest({ content, path });
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson', [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) });
    for (const entry of entries) {
      if (stream.destroyed) return;
      if (!stream.write(`${JSON.stringify(entry)}\n`)) await new Promise((r) => stream.once('drain', r));
    }
    stream.end();
  }

  private async streamManifest(stream: ServerHttp2Stream, content: boolean, path: string | null): Promise<void> {
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson', [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) });
    if (path === null) return void stream.end();
    await this.lock.run(false, async () => {
      for await (const entry of walkManifest(this.requireCopy().tree.fsRoot, { content, path })) {
        if (stream.destroyed) return;
        if (!stream.write(`${JSON.stringify(entry)}\n`)) await new Promise((r) => stream.once('drain', r));
      }
    });
    stream.end();
  }
}

/** Control operations a pure relay answers from its own state (everything else goes to its next hop). */
const LOCAL_CONTROL_OPS: ReadonlySet<string> = new Set(['handshake', 'progress', 'history', 'settle', 'committed', 'lease', 'reconciled']);

/** Bound on what a relay waits for its next hop (its queue to drain, a proxied request). */
const NEXT_HOP_TIMEOUT_MS = 10_000;

/**
 * What an operation is recorded under: its arguments without the stamp (the
 * payload is not included). A re-send must match it, or the seq was re-used by
 * a different operation, which is a bug in the sender.
 */
function subjectOf(req: Mutation): string {
  const { mount: _m, epoch: _e, seq: _s, ...args } = req;
  return JSON.stringify(args);
}

function seqConflict(req: Mutation, was: string, now: string): MirrorError {
  return new MirrorError('MFS_SEQ_CONFLICT', `seq ${req.seq} of mount ${req.mount} was ${was}, now ${now}`);
}

/**
 * Operations recorded durably as intents before they are applied, so that a
 * crash mid-way is recognised on re-send: those whose second application would
 * answer differently (EEXIST, ENOENT, ENODATA). A non-exclusive create is
 * idempotent (it opens what is there), so it needs none.
 */
const INTENT_OPS: ReadonlySet<Mutation['op']> = new Set([...NAMESPACE_OPS, 'setxattr', 'removexattr']);

function needsIntent(req: Mutation): boolean {
  if (req.op === 'create') return req.exclusive;
  return INTENT_OPS.has(req.op);
}

/**
 * Operations that take the namespace lock exclusively: everything that can
 * remove a name or make a name a symlink (rename, rmdir, unlink, symlink,
 * link), so no other operation sits between its confinement check and its
 * syscall while a name changes under it; and the xattr changes, whose library
 * calls follow a final symlink.
 */
const EXCLUSIVE_OPS: ReadonlySet<Mutation['op']> = new Set(['rename', 'rmdir', 'unlink', 'symlink', 'link', 'setxattr', 'removexattr']);

/**
 * Answer with a frame whose header is an outcome ({ok, result} or {ok: false, error}).
 * Returns the errno of an error answer sent in its place when the outcome could not be
 * encoded (for the metrics), else null.
 */
function respondFrame(stream: ServerHttp2Stream, outcome: unknown, payload?: Buffer): string | null {
  if (stream.destroyed) return null;
  // Encoded before the status goes out: an answer that cannot be encoded becomes an error answer, not a cut stream.
  const { parts, failed } = answerParts(outcome, payload);
  stream.respond({ ':status': 200, 'content-type': FRAME_TYPE, [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) });
  writeParts(stream, parts);
  return failed;
}

/** The errno of an error outcome ({ok: false}), for the metrics; null for a success. */
function outcomeErrno(result: unknown): string | null {
  const outcome = result as { ok?: boolean; error?: { errno?: string } };
  return outcome.ok === false ? (outcome.error?.errno ?? 'EIO') : null;
}

/** Close a session gracefully, destroyed if it still lingers after CHANNEL_FLUSH_MS. */
function endSession(session: Http2Session): void {
  if (session.closed || session.destroyed) return;
  session.close();
  setTimeout(() => session.destroy(), CHANNEL_FLUSH_MS).unref();
}

/** An outcome's answer frame, or an error frame in its place when it cannot be encoded (`failed`: that errno). */
function answerParts(outcome: unknown, payload?: Buffer): { parts: Buffer[]; failed: string | null } {
  try {
    return { parts: encodeResponseParts(outcome as ResponseHeader, payload), failed: null };
  } catch (err) {
    const e = toMirrorError(err, {});
    return { parts: encodeFrameParts({ ok: false, error: e.toWire() }), failed: e.errno };
  }
}

/** A call's frame decoded and its request validated (MFS_MALFORMED says what is wrong). */
function decodeCall(body: Buffer): { req: Request; payload: Buffer } {
  const frame = decodeFrame(body);
  const parsed = requestSchema.safeParse(frame.header);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MirrorError('MFS_MALFORMED', `invalid request: ${issue ? `${issue.path.join('.') || 'op'}: ${issue.message}` : 'unknown'}`);
  }
  return { req: parsed.data as Request, payload: frame.payload };
}

function respondJson(stream: ServerHttp2Stream, body: unknown): void {
  stream.respond({ ':status': 200, 'content-type': 'application/json', [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) });
  stream.end(JSON.stringify(body));
}

/** Free space and file system type of the data directory (doctor checks both). */
function diskOf(dir: string): PeerStatus['disk'] {
  try {
    const fs = statfsSync(dir);
    return { freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize, fsType: FS_TYPES[fs.type] ?? `0x${fs.type.toString(16)}` };
  } catch (err) {
    // Status must always answer (it is how a peer is found broken): say what failed instead.
    return { freeBytes: 0, totalBytes: 0, fsType: `unknown (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
}

/** statfs magic numbers of the file systems worth naming (doctor refuses tmpfs and ramfs). */
const FS_TYPES: Record<number, string> = {
  0xef53: 'ext4', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x2fc12fc1: 'zfs', 0x794c7630: 'overlay',
  0x01021994: 'tmpfs', 0x858458f6: 'ramfs', 0x6969: 'nfs', 0xff534d42: 'cifs', 0x65735546: 'fuse', 0xf2f52010: 'f2fs',
};

function respondError(stream: ServerHttp2Stream, err: MirrorError): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  stream.respond({ ':status': err.httpStatus, 'content-type': FRAME_TYPE, [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) });
  stream.end(encodeError(err));
}

/** Read a request body, refusing (before buffering it) anything over the frame limit. */
function readBody(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<Buffer> {
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
