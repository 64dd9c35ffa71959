import type { Http2Session } from 'node:http2';
import type { Logger } from '../log.js';
import type { PeerMetrics } from '../metrics/peer-metrics.js';
import type { BufferPool } from '../protocol/buffer-pool.js';
import { MirrorError } from '../protocol/errors.js';
import type { PullProgress } from '../protocol/ops.js';
import type { Forwarder } from '../relay/forwarder.js';
import type { TokenAuth } from '../security/token.js';
import type { SessionVerdict, Transport } from '../security/transport.js';
import type { TrustVerdict } from '../security/trust.js';
import type { ApplyContext } from '../store/apply.js';
import type { NamespaceLock } from '../store/namespace-lock.js';
import type { Tree } from '../store/tree.js';
import type { ServedChannel } from './channel.js';
import type { ConnectionGuard } from './connection-limits.js';
import type { Flusher } from './durability.js';
import type { PeerState } from './state.js';

export interface PeerServerOptions {
  /** Root of the mirrored tree; absent for a pure relay (which keeps no copy). */
  dataDir?: string;
  /** Where the peer keeps its SQLite state; default beside the data directory (state-location.ts); required without dataDir. */
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
  /** How often what was applied is flushed to stable storage in the background (default DEFAULT_FLUSH_INTERVAL_MS). */
  flushIntervalMs?: number;
  /** The machine's boot id (default: the kernel's); a test stands in another to play a power loss. */
  bootId?: string;
  /** Connections held at once at most (default: from the descriptor limit, connection-limits.ts). */
  maxConnections?: number;
  /** A connection must complete TLS and have a request admitted within this long, or it is closed (default DEFAULT_ADMIT_TIMEOUT_MS). */
  admitTimeoutMs?: number;
}

/** The background flush's default period: the most an applied change waits to be durable (plus the flush itself). */
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Bound on each call a pulling peer makes to its source. */
export const PULL_CALL_TIMEOUT_MS = 60_000;
/** Bound on what a relay waits for its next hop (its queue to drain, a proxied request). */
export const NEXT_HOP_TIMEOUT_MS = 10_000;

/**
 * What the peer's modules share: one per PeerServer (server.ts builds it),
 * passed to plain functions rather than held by one class with every method.
 * The fields that change are counters and the little state the status reports.
 */
export interface PeerContext {
  readonly opts: PeerServerOptions;
  readonly log: Logger;
  readonly state: PeerState;
  /** Null for a pure relay: it keeps no copy, and answers reads from its next hop. */
  readonly tree: Tree | null;
  /** This peer's copy of the tree, to apply operations to (null with tree): changes are applied, and flushed by `flusher`. */
  readonly copy: ApplyContext | null;
  /** The same copy for durable changes (O_SYNC writes, `-o sync` mounts): each is flushed before it is answered. */
  readonly durableCopy: ApplyContext | null;
  /** The background flush and the barrier (durability.ts). */
  readonly flusher: Flusher;
  readonly forwarder: Forwarder | null;
  readonly auth: TokenAuth;
  readonly lock: NamespaceLock;
  /** Prometheus metrics (served by --metrics-listen). */
  readonly metrics: PeerMetrics;
  /**
   * Buffers for answers to data reads of up to 1 MiB, reused instead of one
   * new buffer per read: each new one was external memory that drove V8's
   * full collections, which took a serving peer's CPU per MiB read from ~1 ms
   * to ~3 ms (session 8).
   */
  readonly readBuffers: BufferPool;
  /** The same for reads of up to 4 MiB (the mount's read-ahead block, mount/read-ahead.ts). */
  readonly blockReadBuffers: BufferPool;
  /** Buffers that large changes arriving on call channels are put together in (channel.ts), reused. */
  readonly frameBuffers: BufferPool;
  /** Open call channels (protocol/envelope.ts): ended at shutdown and with their idle session. */
  readonly channels: Set<ServedChannel>;
  /** The verdict on each session's client certificate, judged when it opens and again when the trust file changes. */
  readonly verdicts: WeakMap<Http2Session, SessionVerdict>;
  /** Per epoch: the relays (fingerprints) that passed the owner's signed handshake on to this peer; memory only (a restart asks again: MFS_NO_HANDSHAKE). */
  readonly provenRelays: Map<number, Set<string>>;
  /** Certificates named as origins (principal.ts), judged under one trust generation. */
  readonly origins: { generation: number; verdicts: Map<string, TrustVerdict> };
  /** Sessions refused for their certificate or token: closed once the refusal is answered. */
  readonly refusedSessions: WeakSet<Http2Session>;
  /** Sessions that had a request admitted (certificate, version, token). */
  readonly admittedSessions: WeakSet<Http2Session>;
  /** Every connection from its accept: the cap, the admit timeout (connection-limits.ts). */
  readonly connections: ConnectionGuard;
  /** (mount, seq) -> the running application, so a concurrent duplicate joins it. */
  readonly running: Map<string, { subject: string; work: Promise<{ result: unknown }> }>;
  /** Per mount: the newest epoch the next hop refused for good (a relay then refuses it too). */
  readonly fencedDownstream: Map<string, number>;
  readonly startedAt: number;
  readonly startedMono: number;
  inFlight: number;
  channelCalls: number;
  applied: number;
  appliedBytes: number;
  pulling: PullProgress | null;
  /** When the owner last renewed its lease (memory only: after a restart the lease counts from the start). */
  leaseAt: number | null;
  shuttingDown: boolean;
  /** Whether this copy can keep the mirror's inode numbers: tried at the first handshake. */
  inodeIds: boolean | undefined;
  /**
   * While this copy is unclean: the owner's session that said it is repairing it (`repairing`).
   * Only that session may read and change the copy until `clean` (its reads and changes are the
   * repair); every other client is still refused. Memory only: a restart needs a new `repairing`.
   */
  repairSession: Http2Session | null;
}

/**
 * Refuse a read or a change while this copy is not exact (it restarted after
 * its machine crashed, state.ts): it must not count toward an acknowledgement
 * or answer a read until its owner has repaired it.
 */
export function checkExact(peer: PeerContext, session?: Http2Session): void {
  const unclean = peer.state.unclean;
  if (unclean && session !== undefined && session === peer.repairSession && !session.destroyed) return; // the owner repairing it
  if (unclean) throw new MirrorError('MFS_UNCLEAN', `peer ${peer.opts.name} is not known exact since ${unclean.since} (${unclean.reason ?? 'its machine went down while it ran'}); it serves nothing until its owner repairs it`);
}

/** This peer's copy, or EOPNOTSUPP for a pure relay (which keeps none); `durable`: the one that flushes each change (repairs). */
export function requireCopy(peer: PeerContext, durable = false): ApplyContext {
  const copy = durable ? peer.durableCopy : peer.copy;
  if (!copy) throw new MirrorError('MFS_ERRNO', 'this peer is a pure relay and keeps no copy', { errno: 'EOPNOTSUPP' });
  return copy;
}
