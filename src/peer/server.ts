import { realpathSync, statSync } from 'node:fs';
import http2, { type Http2Session, type Http2SecureServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { privateDir } from '../security/private-paths.js';
import { checkTreeMark, defaultStateDir } from './state-location.js';
import { PeerMetrics } from '../metrics/peer-metrics.js';
import { BufferPool } from '../protocol/buffer-pool.js';
import { MirrorError } from '../protocol/errors.js';
import { isMutation, type ControlRequest, type ReadRequest, type Request } from '../protocol/ops.js';
import { H2_CONNECTION_WINDOW_BYTES, H2_MAX_CONCURRENT_STREAMS, H2_MAX_FRAME_BYTES, H2_STREAM_WINDOW_BYTES, ROUTES } from '../protocol/version.js';
import { TokenAuth } from '../security/token.js';
import { createServer } from '../security/transport.js';
import { flushingSync, noSync } from '../store/durable.js';
import { FdCache } from '../store/fd-cache.js';
import { NamespaceLock } from '../store/namespace-lock.js';
import { Tree } from '../store/tree.js';
import { admit, refuseStream, verdictOf } from './admission.js';
import { authorize, authorizeRead } from './authorization.js';
import { requestPrincipal, type Principal } from './principal.js';
import { closeSession, handleCall, openChannel } from './calls.js';
import { DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_REQUEST_TIMEOUT_MS, checkExact, type PeerContext, type PeerServerOptions } from './context.js';
import { ConnectionGuard, DEFAULT_ADMIT_TIMEOUT_MS, defaultMaxConnections } from './connection-limits.js';
import { Flusher } from './durability.js';
import { readBootId } from './boot-id.js';
import { control } from './control.js';
import { mutate } from './exactly-once.js';
import { resend } from './resend.js';
import { CHANNEL_FLUSH_MS, outcomeErrno, respondFrame, respondJson } from './http.js';
import { answerManifest } from './manifest.js';
import { BLOCK_READ_BUFFERS_KEPT, BLOCK_READ_BUFFER_BYTES, READ_BUFFERS_KEPT, READ_BUFFER_BYTES, answerRead } from './reads.js';
import { createForwarder, viaNextHop } from './relay-proxy.js';
import { adopt, pull, repair } from './repair.js';
import { PeerState } from './state.js';
import { status, statusWithHops } from './status.js';
import { Refusal } from '../refusal.js';

/** Large changes arriving on a call channel are put together in buffers this size: a 1 MiB write (the largest FUSE sends) with its envelope and header. */
const FRAME_BUFFER_BYTES = 1024 * 1024 + 64 * 1024;
/** Free frame buffers kept: several writers' 1 MiB writes in flight. */
const FRAME_BUFFERS_KEPT = 8;

export type { PeerServerOptions } from './context.js';

/** A TLS handshake must finish within this long (or the admit timeout, if shorter): a loopback handshake takes milliseconds. */
const TLS_HANDSHAKE_TIMEOUT_MS = 5_000;

/** A client connection with no traffic this long is closed (mounts renew a lease every second). */
const SESSION_IDLE_MS = 5 * 60_000;

/**
 * The filer: an HTTP/2 server that authenticates each request, decodes and
 * validates it, applies it to the data directory exactly once and durably, and
 * answers. This file wires it up, starts and stops it, and routes requests;
 * the work is in the modules beside it. The path of one write:
 *
 * 1. server.ts: onStream - POST /v1/channel, once per connection
 * 2. calls.ts: openChannel - admission.ts: admit (certificate, version, token)
 * 3. channel.ts: ServedChannel - one envelope per call, many in flight
 * 4. calls.ts: answerChannelCall - admission.ts: checkTrusted, http.ts: decodeCall
 * 5. exactly-once.ts: mutate - ownership.ts: checkOwnership, a re-send answered from its record
 * 6. exactly-once.ts: applyOnce - the namespace lock, an intent, store/apply.ts: applyMutation
 * 7. state.ts: recordDone - the group commit (a relay queues the change in it: relay/queue.ts)
 * 8. calls.ts: answerChannelCall - http.ts: answerParts, back under the call's id (channel.ts)
 *
 * Reads, control requests, repairs and pulls come one per stream
 * (POST /v1/call: calls.ts handleCall, then dispatch below).
 */
export class PeerServer {
  private readonly server: Http2Server | Http2SecureServer;
  private readonly sessions = new Set<Http2Session>();
  private readonly peer: PeerContext;
  /** Prometheus metrics (served by --metrics-listen). */
  readonly metrics: PeerMetrics;
  port = 0;

  private constructor(opts: PeerServerOptions) {
    const dataDir = opts.dataDir === undefined ? null : realpathSync(opts.dataDir);
    if (dataDir !== null && !statSync(dataDir).isDirectory()) throw new Refusal('DATA_DIR_INVALID', `data directory ${dataDir} is not a directory`);
    if (dataDir === null && (!opts.stateDir || !opts.forwardTo)) throw new Refusal('DATA_DIR_INVALID', 'a peer without a data directory is a pure relay: it needs a state directory and a next hop');
    const stateDir = opts.stateDir ?? defaultStateDir(dataDir!).dir;
    privateDir(stateDir);
    const state = new PeerState(join(stateDir, 'peer.db'));
    if (dataDir !== null) {
      try {
        const mark = checkTreeMark(dataDir, state.peerId, state.isNew, stateDir);
        if (mark === 'adopted') opts.logger.warn({ dataDir }, 'marked the data tree as this peer\'s (.mirrorfs): a tree from before the mark');
        if (mark === 'foreign') opts.logger.warn({ dataDir, stateDir }, 'a directory .mirrorfs in the data tree is not this peer\'s state (someone made it): ignored, and the tree cannot be marked');
      } catch (err) {
        state.close(false);
        throw err;
      }
    }
    const unclean = state.beginRun(opts.bootId ?? readBootId(), dataDir !== null);
    if (unclean) opts.logger.error({ since: unclean.since, durableThrough: unclean.durableThrough }, 'this peer\'s machine went down while it ran (power loss or a crash): changes applied after the durable points may be lost; serving nothing until the owner repairs this copy');
    const tree = dataDir === null ? null : new Tree(dataDir);
    // One set of open files for both commit levels: a durable change flushes what it wrote itself.
    const fds = new FdCache();
    const copy = tree && { tree, fds, sync: noSync };
    const durableCopy = tree && { tree, fds, sync: flushingSync };
    const flusher = new Flusher({
      dirs: dataDir === null ? [stateDir] : [dataDir, stateDir],
      intervalMs: opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
      log: opts.logger,
      contiguousFrom: (mount) => state.progress(mount).contiguousSeq,
      record: (points) => state.recordDurablePoints(points),
      recorded: state.durablePoints(),
      onFailure: (err) => state.markUnclean(`a flush to stable storage failed (${err.message})`),
      undurable: { flushStarts: () => state.undurableFlushStarts(), flushed: (at) => state.undurableFlushed(at) },
    });
    const fencedDownstream = new Map<string, number>();
    const forwarder = createForwarder(opts, state.queue, fencedDownstream, (epoch) => state.ownerCert(epoch));
    const auth = new TokenAuth(opts.token);
    const peer: PeerContext = {
      opts, log: opts.logger, state, tree, copy, durableCopy, flusher, forwarder, auth, fencedDownstream,
      lock: new NamespaceLock(),
      metrics: new PeerMetrics(() => status(peer), forwarder !== null, tree !== null),
      readBuffers: new BufferPool(READ_BUFFER_BYTES, READ_BUFFERS_KEPT),
      blockReadBuffers: new BufferPool(BLOCK_READ_BUFFER_BYTES, BLOCK_READ_BUFFERS_KEPT),
      frameBuffers: new BufferPool(FRAME_BUFFER_BYTES, FRAME_BUFFERS_KEPT),
      channels: new Set(), verdicts: new WeakMap(), origins: { generation: -1, verdicts: new Map() }, provenRelays: new Map(), refusedSessions: new WeakSet(), admittedSessions: new WeakSet(), connections: new ConnectionGuard(opts.maxConnections ?? defaultMaxConnections(), opts.admitTimeoutMs ?? DEFAULT_ADMIT_TIMEOUT_MS), running: new Map(),
      startedAt: Date.now(), startedMono: performance.now(),
      inFlight: 0, channelCalls: 0, applied: 0, appliedBytes: 0, pulling: null, leaseAt: null, shuttingDown: false, inodeIds: undefined, repairSession: null,
    };
    this.peer = peer;
    this.metrics = peer.metrics;
    const admitTimeoutMs = opts.admitTimeoutMs ?? DEFAULT_ADMIT_TIMEOUT_MS;
    this.server = createServer(opts.transport, {
      maxSessionMemory: 256,
      settings: { maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS, initialWindowSize: H2_STREAM_WINDOW_BYTES, maxFrameSize: H2_MAX_FRAME_BYTES },
    }, Math.min(admitTimeoutMs, TLS_HANDSHAKE_TIMEOUT_MS));
    // Every TCP connection from its accept (before TLS): the cap, and the admit timeout (connection-limits.ts).
    this.server.on('connection', (socket: Socket) => {
      const dropped = peer.connections.stats.dropped;
      peer.connections.accept(socket);
      if (peer.connections.stats.dropped !== dropped && dropped % 100 === 0) {
        peer.log.warn({ maxConnections: peer.connections.stats.max, dropped: peer.connections.stats.dropped }, 'connection refused: this peer holds as many admitted connections as --max-connections allows');
      }
    });
    this.server.on('session', (session: Http2Session) => {
      verdictOf(peer, session);
      peer.connections.stats.sessions++;
      session.once('close', () => peer.connections.stats.sessions--);
      // Idle connections are closed: an untrusted or forgotten client cannot hold one for ever.
      session.setTimeout(SESSION_IDLE_MS, () => closeSession(peer, session));
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', (err) => peer.log.debug({ err }, 'session error'));
    });
    this.server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.onStream(stream, headers));
  }

  static async start(opts: PeerServerOptions): Promise<PeerServer> {
    const server = new PeerServer(opts);
    const { peer } = server;
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(opts.port, opts.host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    server.port = (server.server.address() as AddressInfo).port;
    peer.forwarder?.start();
    peer.flusher.start();
    peer.log.info({ host: opts.host, port: server.port, dataDir: peer.tree?.root ?? null, forwardTo: peer.forwarder?.to ?? null, peerId: peer.state.peerId, epoch: peer.state.epoch }, 'peer listening');
    return server;
  }

  get peerId(): string {
    return this.peer.state.peerId;
  }

  /** Stop accepting work, let in-flight operations finish (bounded), close the state. */
  async shutdown(graceMs = 10_000): Promise<void> {
    const peer = this.peer;
    if (peer.shuttingDown) return;
    peer.shuttingDown = true;
    peer.log.info({ inFlight: peer.inFlight }, 'shutting down: finishing in-flight operations');
    this.server.close();
    for (const s of this.sessions) s.close();
    const deadline = Date.now() + graceMs;
    while (peer.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (peer.inFlight > 0) peer.log.warn({ inFlight: peer.inFlight }, 'grace period over with operations still in flight');
    // Channels end after their last answer is handed over (bounded), so answers of calls done in the grace period reach the client.
    for (const channel of peer.channels) channel.finish();
    const channelDeadline = Date.now() + CHANNEL_FLUSH_MS;
    while (peer.channels.size > 0 && Date.now() < channelDeadline) await new Promise((r) => setTimeout(r, 5));
    for (const s of this.sessions) s.destroy();
    await peer.forwarder?.stop();
    // The last flush: only if it succeeds, after everything finished, may the next start trust what was applied.
    const flushed = await peer.flusher.stop();
    const quiet = peer.inFlight === 0 && peer.running.size === 0 && peer.pulling === null;
    if (!flushed) peer.log.error('the last flush failed: the next start will treat this copy as not exact if the machine went down');
    else if (!quiet) peer.log.warn({ inFlight: peer.inFlight }, 'stopped with operations still running: the next start will treat this copy as not exact if the machine went down');
    peer.copy?.fds.closeAll();
    peer.state.close(flushed && quiet);
    peer.log.info('peer stopped');
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const peer = this.peer;
    stream.on('error', (err) => peer.log.debug({ err }, 'stream error'));
    if (headers[':method'] === 'POST' && headers[':path'] === ROUTES.channel) return openChannel(peer, stream, headers);
    stream.setTimeout(peer.opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    peer.inFlight++;
    let finished = false;
    const done = () => {
      if (!finished) {
        finished = true;
        peer.inFlight--;
      }
    };
    stream.once('close', done);
    this.handle(stream, headers)
      .catch((err) => refuseStream(peer, stream, err))
      .finally(done);
  }

  /** The route table: one request per stream (the call channel was taken in onStream). */
  private async handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const { ticketed } = admit(this.peer, stream, headers);
    // Who the request acts as (its certificate, or the one a relay or a pulling peer names), then what that may do.
    const principal = requestPrincipal(this.peer, stream.session, headers, ticketed);
    const method = headers[':method'];
    const url = new URL(headers[':path'] ?? '/', 'http://peer');
    const route = url.pathname;
    if (method === 'POST' && route === ROUTES.call) {
      return handleCall(this.peer, stream, headers, (s, req, payload) => {
        authorize(this.peer, principal, req);
        return this.dispatch(s, req, payload, principal);
      });
    }
    if (method === 'GET' && route === ROUTES.status) return respondJson(stream, await statusWithHops(this.peer));
    if (method === 'GET' && route === ROUTES.manifest) {
      authorizeRead(principal, 'a manifest');
      return answerManifest(this.peer, stream, headers[':path'] ?? '', url, principal.der);
    }
    throw new MirrorError('MFS_NOT_FOUND', `no route ${method} ${route}`);
  }

  /** The op table: run one decoded operation and answer it; resolves with the errno of an error outcome (null: it succeeded). */
  private async dispatch(stream: ServerHttp2Stream, req: Request, payload: Buffer, principal: Principal): Promise<string | null> {
    const peer = this.peer;
    if (isMutation(req)) {
      const { result } = await mutate(peer, req, payload, stream.session);
      return respondFrame(stream, result) ?? outcomeErrno(result);
    }
    if (req.op === 'resend') return respondFrame(stream, { ok: true, result: await resend(peer, req, payload, stream.session) });
    if (!peer.copy && !LOCAL_CONTROL_OPS.has(req.op)) {
      // A pure relay keeps no copy: reads, repairs and pulls are the next hop's, once it has everything queued here.
      if (req.op === 'pull') stream.setTimeout(0);
      const out = await viaNextHop(peer, req, payload, principal.der);
      if (req.op === 'adopt') await adopt(peer, req); // and recorded here, so this hop's history has no hole
      return respondFrame(stream, out.result === undefined ? { ok: true } : { ok: true, result: out.result }, out.payload);
    }
    if (req.op === 'pull') {
      stream.setTimeout(0); // the answer comes when the copy is done; the caller bounds the wait
      return respondFrame(stream, { ok: true, result: await pull(peer, req, stream) });
    }
    if (req.op === 'repair') {
      const result = await repair(peer, req, payload);
      return respondFrame(stream, result === null ? { ok: true } : { ok: true, result });
    }
    if (CONTROL_OPS.has(req.op)) return respondFrame(stream, { ok: true, result: await control(peer, req as ControlRequest, stream.session, principal) });
    checkExact(peer, stream.session); // a copy that may have lost changes answers no read until it is repaired
    return answerRead(peer, stream, peer.copy!, req as ReadRequest);
  }
}

/** Control operations a pure relay answers from its own state (everything else goes to its next hop). */
const LOCAL_CONTROL_OPS: ReadonlySet<string> = new Set(['handshake', 'progress', 'history', 'settle', 'committed', 'lease', 'reconciled', 'fsync', 'clean', 'repairing']);
/** Control operations answered by control.ts (repair and pull are answered above). */
const CONTROL_OPS: ReadonlySet<string> = new Set([...LOCAL_CONTROL_OPS, 'adopt']);

