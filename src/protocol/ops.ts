import { z } from 'zod';
import { MAX_PAYLOAD_BYTES } from './codec.js';
import type { WireError } from './errors.js';

/**
 * The operations of the wire protocol, as zod schemas: one definition gives both
 * the TypeScript types and the run-time validation of untrusted input.
 *
 * Changing operations carry {mount, epoch, seq}: the identity of the mount that
 * issued them, the ownership epoch it holds, and a per-mount sequence number.
 * A peer applies each (mount, seq) once and answers a re-send with the first
 * result (see docs/PROTOCOL.md, "Idempotency").
 */

const wirePath = z.string().max(4096);
const mode = z.number().int().min(0).max(0o7777);
const offset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const xattrName = z.string().min(1).max(255);
const timeMs = z.number().finite().min(0).max(253402300799999);
/**
 * A time in nanoseconds since the epoch, in decimal: a JSON number cannot hold one
 * exactly (a double near 1.7e18 resolves 256 ns), and copies must be exact.
 */
// Up to 21 digits: some 31,000 years either side of 1970 (a copy's file system clamps to its own range).
const timeNs = z.string().regex(/^-?\d{1,21}$/, 'a time: nanoseconds since the epoch, in decimal');
/** A numeric user or group id ((uid_t)-1 is not an id). */
const id = z.number().int().min(0).max(0xffff_fffe);
/**
 * The owner of an entry a change creates: the calling process's fsuid and fsgid.
 * In a set-group-ID directory the peer gives the entry the directory's group
 * instead (and a new directory the set-group-ID bit), as ext4 does. Absent in
 * requests of older mounts: the entry is then the peer process's.
 */
const owner = { uid: id.optional(), gid: id.optional() };

/**
 * The creator's umask, when the mount enforces POSIX ACLs (the kernel then leaves it to the
 * file system): the entry gets `mode & ~umask`, unless its directory has a default ACL, which
 * decides its permissions instead (the copy's kernel applies it; the umask is ignored, as on
 * ext4). Absent: `mode` is the entry's exact mode (repairs, copies, older mounts).
 */
const creatorUmask = { umask: z.number().int().min(0).max(0o777).optional() };

/**
 * The mirror's inode number for a new entry (store/inode-ids.ts): every copy keeps it in
 * the inode and answers stats with it, so st_ino is the same whichever copy answers.
 * Absent (repairs, copies, older mounts): the copy's own numbers show.
 */
const inodeId = { ino: z.number().int().min(2 ** 52).max(2 ** 53 - 1).optional() };

export const mountId = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'mount id: 1-128 of [A-Za-z0-9_.:-]');

const stamp = {
  mount: mountId,
  epoch: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
};

/**
 * The commit level of one change (docs/PROTOCOL.md, "Durability"). Absent or
 * false: the peer answers once the change is applied to its file system
 * (visible there, surviving the peer process's death) and makes it durable in
 * the background; true: it answers only once the change is on stable storage
 * (a write on a file opened O_SYNC/O_DSYNC, every change of a `-o sync` mount).
 * Not part of what the change is recorded under: a re-send may differ in it.
 */
const commitLevel = { durable: z.boolean().optional() };

/** Changing operations. `write` and `setxattr` carry their bytes as the frame payload. */
export const mutationSchemas = {
  create: z.object({ op: z.literal('create'), path: wirePath, mode, exclusive: z.boolean().default(true), ...owner, ...creatorUmask, ...inodeId, ...stamp, ...commitLevel }),
  write: z.object({ op: z.literal('write'), path: wirePath, offset, ...stamp, ...commitLevel }),
  truncate: z.object({ op: z.literal('truncate'), path: wirePath, size: offset, ...stamp, ...commitLevel }),
  /**
   * fallocate(2) of a regular file: mode is FALLOC_FL_* bits, of those the FUSE kernel
   * passes on (KEEP_SIZE 1, PUNCH_HOLE 2, ZERO_RANGE 16; the peer's file system
   * refuses a combination it does not support, as it would locally).
   */
  fallocate: z.object({ op: z.literal('fallocate'), path: wirePath, mode: z.number().int().refine((m) => (m & ~(1 | 2 | 16)) === 0, 'fallocate mode: KEEP_SIZE (1), PUNCH_HOLE (2) and ZERO_RANGE (16) only'), offset, length: offset.refine((n) => n > 0, 'fallocate length must be positive'), ...stamp, ...commitLevel }),
  unlink: z.object({ op: z.literal('unlink'), path: wirePath, ...stamp, ...commitLevel }),
  mkdir: z.object({ op: z.literal('mkdir'), path: wirePath, mode, ...owner, ...creatorUmask, ...inodeId, ...stamp, ...commitLevel }),
  rmdir: z.object({ op: z.literal('rmdir'), path: wirePath, ...stamp, ...commitLevel }),
  /**
   * renameat2's flags: noReplace (RENAME_NOREPLACE) fails with EEXIST when `to` exists;
   * exchange (RENAME_EXCHANGE) swaps the two names, which must both exist. Not both.
   */
  rename: z.object({ op: z.literal('rename'), from: wirePath, to: wirePath, noReplace: z.boolean().optional(), exchange: z.boolean().optional(), ...stamp, ...commitLevel }),
  symlink: z.object({ op: z.literal('symlink'), target: z.string().min(1).max(4095), path: wirePath, ...owner, ...inodeId, ...stamp, ...commitLevel }),
  /** A FIFO, socket, or character or block device node (`kind`), with its permission bits and, for devices, its number. */
  mknod: z.object({ op: z.literal('mknod'), path: wirePath, kind: z.enum(['fifo', 'socket', 'char', 'block']), mode, rdev: z.number().int().min(0).max(0xffff_ffff).default(0), ...owner, ...creatorUmask, ...inodeId, ...stamp, ...commitLevel }),
  link: z.object({ op: z.literal('link'), from: wirePath, path: wirePath, ...stamp, ...commitLevel }),
  chmod: z.object({ op: z.literal('chmod'), path: wirePath, mode, ...stamp, ...commitLevel }),
  chown: z.object({ op: z.literal('chown'), path: wirePath, uid: z.number().int().min(-1).max(0xffff_fffe), gid: z.number().int().min(-1).max(0xffff_fffe), ...stamp, ...commitLevel }),
  /**
   * Each time in nanoseconds (atimeNs, mtimeNs), or in milliseconds (atimeMs, mtimeMs:
   * requests of protocol 3, which a journal may still hold); a time that is null or not
   * given is left as it is (UTIME_OMIT). "Now" is resolved by the mount, so every copy
   * gets the same time.
   */
  utimens: z.object({
    op: z.literal('utimens'),
    path: wirePath,
    atimeNs: timeNs.nullable().optional(),
    mtimeNs: timeNs.nullable().optional(),
    atimeMs: timeMs.nullable().optional(),
    mtimeMs: timeMs.nullable().optional(),
    ...stamp,
    ...commitLevel,
  }),
  setxattr: z.object({ op: z.literal('setxattr'), path: wirePath, name: xattrName, flags: z.enum(['any', 'create', 'replace']).default('any'), ...stamp, ...commitLevel }),
  removexattr: z.object({ op: z.literal('removexattr'), path: wirePath, name: xattrName, ...stamp, ...commitLevel }),
  /**
   * A reader's access (a read of a file, a listing of a directory, a symlink followed):
   * each copy reads the entry once, so its own kernel updates atime as it would for a
   * local reader (relatime, noatime: the peer's mount options decide). Sent by the mount
   * only when that would change atime (mount/access-times.ts).
   */
  access: z.object({ op: z.literal('access'), path: wirePath, ...stamp, ...commitLevel }),
} as const;

/** Files one read-many request may name. */
export const READ_MANY_MAX_FILES = 256;

/** Reading operations: no stamp, never recorded. */
export const readSchemas = {
  getattr: z.object({ op: z.literal('getattr'), path: wirePath }),
  readdir: z.object({ op: z.literal('readdir'), path: wirePath, withAttrs: z.boolean().default(false) }),
  read: z.object({ op: z.literal('read'), path: wirePath, offset, length: z.number().int().min(0).max(4 * 1024 * 1024) }),
  /** Whole small files at once (a resync's many small files in one round trip); their contents together within the payload limit. */
  'read-many': z.object({ op: z.literal('read-many'), paths: z.array(wirePath).min(1).max(READ_MANY_MAX_FILES) }),
  readlink: z.object({ op: z.literal('readlink'), path: wirePath }),
  getxattr: z.object({ op: z.literal('getxattr'), path: wirePath, name: xattrName }),
  listxattr: z.object({ op: z.literal('listxattr'), path: wirePath }),
  statfs: z.object({ op: z.literal('statfs') }),
} as const;

/**
 * Repair actions (verify --repair, resync, in-doubt reconciliation): a changing
 * operation without a stamp, or `remove-tree`. They set state rather than
 * change it relative to what is there, so they are applied but not recorded;
 * re-sending one is harmless.
 */
const unstamped = { mount: true, epoch: true, seq: true, durable: true } as const;
/** Mode and numeric owner of an entry a repair creates. */
const ownedMode = { mode, uid: id, gid: id };
export const repairActionSchema = z.discriminatedUnion('op', [
  mutationSchemas.create.omit(unstamped),
  mutationSchemas.write.omit(unstamped),
  mutationSchemas.truncate.omit(unstamped),
  mutationSchemas.unlink.omit(unstamped),
  mutationSchemas.mkdir.omit(unstamped),
  mutationSchemas.rmdir.omit(unstamped),
  mutationSchemas.rename.omit(unstamped),
  mutationSchemas.symlink.omit(unstamped),
  mutationSchemas.mknod.omit(unstamped),
  mutationSchemas.link.omit(unstamped),
  mutationSchemas.chmod.omit(unstamped),
  mutationSchemas.chown.omit(unstamped),
  mutationSchemas.utimens.omit(unstamped),
  mutationSchemas.setxattr.omit(unstamped),
  mutationSchemas.removexattr.omit(unstamped),
  /** Remove whatever is at path, recursively (nothing there is success; the root keeps itself and the peer's state). */
  z.object({ op: z.literal('remove-tree'), path: wirePath }),
  /**
   * A whole regular file in one request (the payload is its content): created
   * or replaced in place with this mode, owner and mtime, flushed. How resync
   * copies small files in one round trip.
   */
  z.object({
    op: z.literal('put-file'),
    path: wirePath,
    ...ownedMode,
    mtimeMs: timeMs,
    /** The exact mtime; mtimeMs is what an older sender gives. */
    mtimeNs: timeNs.optional(),
    /** false: leave flushing to a later `flush` (a full resync flushes once at the end). */
    flush: z.boolean().default(true),
  }),
  /** Bytes of an existing regular file at an offset (the payload); flushed unless flush is false. */
  z.object({ op: z.literal('put-range'), path: wirePath, offset, flush: z.boolean().default(true) }),
  /** Flush everything written to the peer's file system (after repairs sent with flush: false). */
  z.object({ op: z.literal('flush') }),
  /** A directory with this mode and owner (created if missing; its entries are left alone), flushed. */
  z.object({
    op: z.literal('put-dir'),
    path: wirePath,
    ...ownedMode,
    flush: z.boolean().default(true),
  }),
]);
export type RepairAction = z.infer<typeof repairActionSchema>;
export type RepairActionInput = z.input<typeof repairActionSchema>;

/** Any changing operation, stamped (what `resend` carries). */
const mutationSchema = z.discriminatedUnion('op', Object.values(mutationSchemas) as unknown as [
  (typeof mutationSchemas)[MutationName],
  ...(typeof mutationSchemas)[MutationName][],
]);

/** Changes one `resend` may carry; their payloads together stay within a frame's payload limit. */
export const RESEND_MAX_CHANGES = 64;

/** Control operations. */
export const controlSchemas = {
  // `proof`: the owner's signature (security/handshake-proof.ts), which a relay passes on unchanged.
  handshake: z.object({ op: z.literal('handshake'), protocol: z.number().int(), mount: mountId, epoch: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER), proof: z.string().min(1).max(2048).optional() }),
  /**
   * Journaled changes sent again in one call (catch-up; docs/PROTOCOL.md section 5). Each is
   * applied exactly as if it came alone, under its own seq, one after the other in this order.
   * Their payloads follow one another in the frame's payload, `bytes` each. `expect`: the
   * outcome the other copies recorded ('ok' or an errno; null: any). The peer stops after the
   * first change whose outcome differs from it, or that is refused, and leaves the rest
   * unapplied: the sender decides what to do with them once it knows.
   */
  resend: z.object({
    op: z.literal('resend'),
    mount: mountId,
    epoch: stamp.epoch,
    changes: z.array(z.object({ change: mutationSchema, bytes: z.number().int().min(0).max(MAX_PAYLOAD_BYTES), expect: z.string().min(1).max(64).nullable() })).min(1).max(RESEND_MAX_CHANGES),
  }),
  /** How far a mount's operations have been applied here (for catch-up). */
  progress: z.object({ op: z.literal('progress'), mount: mountId }),
  /** The owner reconciled these earlier owners' changes on every peer: forget them (docs/TAKEOVER.md). */
  reconciled: z.object({ op: z.literal('reconciled'), mount: mountId, epoch: stamp.epoch, owners: z.array(mountId).max(1000) }),
  /** The owner says it is alive (about every second); a standby watches the lease's age in the status (docs/TAKEOVER.md). */
  lease: z.object({ op: z.literal('lease'), mount: mountId, epoch: stamp.epoch }),
  /**
   * End-to-end commitment (ack mode end-to-end): the lowest seq of this mount
   * that this hop, or a hop after it, holds but has not had committed by the
   * far mirror (holdsFrom; null when none). Answered once holdsFrom is null or
   * above `known`, or `seq` is below it, or after waitMs (a long poll).
   */
  committed: z.object({ op: z.literal('committed'), mount: mountId, seq: z.number().int().min(0), known: z.number().int().min(0), waitMs: z.number().int().min(0).max(10_000) }),
  /**
   * Durability. With `path`: that entry is made durable, as fsync (fdatasync with
   * `datasync`, fsyncdir for a directory) would make it locally (what the mount
   * sends for those calls). Without: a barrier, answered once everything this peer
   * applied before the request arrived is on stable storage (a flush shared with
   * the background flusher and other barriers: group commit).
   */
  fsync: z.object({ op: z.literal('fsync'), mount: mountId, path: wirePath.optional(), datasync: z.boolean().optional() }),
  /**
   * The owner made this peer exact again after it restarted uncleanly (its
   * machine crashed with changes not yet flushed): it may serve reads and count
   * toward acknowledgements again (docs/PROTOCOL.md, "Unclean restart").
   */
  clean: z.object({ op: z.literal('clean'), mount: mountId, epoch: stamp.epoch }),
  /**
   * The owner is repairing this unclean copy while it runs (docs/PROTOCOL.md,
   * "Unclean restart"): from now until `clean`, the session that sent this may
   * read and change the copy (the repair); every other client is still refused.
   * `resync`: a full resync of this copy begins, clean or not: it is marked unclean
   * (durably) first, so a resync cut short is never taken for a finished one. (A peer
   * before this field ignores it.)
   */
  repairing: z.object({ op: z.literal('repairing'), mount: mountId, epoch: stamp.epoch, resync: z.boolean().optional() }),
  /** The recorded operations of a mount after a seq, in seq order (what reconciliation compares). */
  history: z.object({ op: z.literal('history'), mount: mountId, after: z.number().int().min(0), limit: z.number().int().min(1).max(10_000).default(10_000) }),
  /** Apply one repair action; only the owner at the current epoch may. */
  repair: z.object({ op: z.literal('repair'), mount: mountId, epoch: stamp.epoch, action: repairActionSchema }),
  /**
   * Record an operation's outcome without applying it: the change was brought
   * here by repair (copied from a peer that applied it), so this peer's history
   * counts it as applied from now on.
   */
  adopt: z.object({ op: z.literal('adopt'), ...stamp, subject: z.string().max(65_536), result: z.string().max(65_536) }),
  /**
   * Every copy holds everything of this mount up to seq (the mount reconciled
   * them): progress counts from there, so a seq that failed everywhere and was
   * never recorded does not hold contiguousSeq back for ever.
   */
  settle: z.object({ op: z.literal('settle'), ...stamp }),
  /**
   * Make this peer's tree (or `path` in it) equal to another peer's, copying
   * directly from it (a full resync without the mount in the data path).
   * Answers when done, with the counts; progress shows in /v1/status.
   */
  pull: z.object({
    op: z.literal('pull'),
    mount: mountId,
    epoch: stamp.epoch,
    // Over TLS a ticket signed by the owner (security/pull-ticket.ts); the source's token only in cleartext, where nothing else proves anything.
    from: z.object({ url: z.string().regex(/^https?:\/\/[^\s]{1,2000}$/, 'from.url: an http(s) URL'), token: z.string().min(1).max(1024).optional(), ticket: z.string().min(1).max(4096).optional() }),
    path: wirePath.default(''),
  }),
} as const;

const allSchemas = { ...mutationSchemas, ...readSchemas, ...controlSchemas };
export const requestSchema = z.discriminatedUnion('op', Object.values(allSchemas) as unknown as [
  (typeof allSchemas)[keyof typeof allSchemas],
  ...(typeof allSchemas)[keyof typeof allSchemas][],
]);

export type MutationName = keyof typeof mutationSchemas;
export type ReadName = keyof typeof readSchemas;
export type OpName = keyof typeof allSchemas;
export type Mutation = { [K in MutationName]: z.infer<(typeof mutationSchemas)[K]> }[MutationName];
export type ReadRequest = { [K in ReadName]: z.infer<(typeof readSchemas)[K]> }[ReadName];
export type ControlRequest = { [K in keyof typeof controlSchemas]: z.infer<(typeof controlSchemas)[K]> }[keyof typeof controlSchemas];
export type Request = Mutation | ReadRequest | ControlRequest;
/** A mutation as the caller builds it: defaults may be omitted. */
export type MutationInput = { [K in MutationName]: z.input<(typeof mutationSchemas)[K]> }[MutationName];
export type RequestInput = { [K in OpName]: z.input<(typeof allSchemas)[K]> }[OpName];
/** A change as the mount issues it, before it is stamped with mount, epoch and seq. */
export type MutationRequest = Unstamped<Mutation>;
type Unstamped<T> = T extends unknown ? Omit<T, 'mount' | 'epoch' | 'seq'> : never;

export function isMutation(req: { op: string }): req is Mutation {
  return Object.prototype.hasOwnProperty.call(mutationSchemas, req.op);
}

/**
 * Operations that change names in the tree (not just contents or attributes).
 * The one list: the mount's caches and times and the peer's intents all ask it.
 */
export const NAMESPACE_OPS: ReadonlySet<MutationName> = new Set(['create', 'unlink', 'mkdir', 'rmdir', 'rename', 'symlink', 'link', 'mknod']);

/**
 * The path a request names: its `path`, else a rename's source; undefined for
 * one without a path (statfs, most control operations). What a peer's error
 * carries as its context, and what the peer records a change under: for
 * `link`, the new name.
 */
export function pathOf(req: Mutation | MutationRequest): string;
export function pathOf(req: RequestInput): string | undefined;
export function pathOf(req: RequestInput | MutationRequest): string | undefined {
  if ('path' in req) return req.path;
  // `pull` has a `from` too: the peer it copies from, not a path.
  return 'from' in req && typeof req.from === 'string' ? req.from : undefined;
}

/**
 * The path a change is about as the mount's log lines carry it (unquoted): the
 * source of a rename or a link, else its path. Differs from pathOf for `link`;
 * both are kept so that neither the logs nor the errors change.
 */
export function logPathOf(req: Mutation | MutationRequest): string {
  return req.op === 'rename' || req.op === 'link' ? req.from : req.path;
}

/** A change's paths as messages quote them: `"a"`, or `"from" -> "to"` for a rename or a link. */
export function describePaths(req: Mutation | MutationRequest): string {
  if (req.op === 'rename' || req.op === 'link') return `${JSON.stringify(req.from)} -> ${JSON.stringify(req.op === 'rename' ? req.to : req.path)}`;
  return JSON.stringify(req.path);
}

/**
 * What `resend` answers: for each change applied (or answered from its record), in order,
 * whether it succeeded (provisional: a pure relay only queued it) or its error; not its
 * result (`written`, `stats`). Shorter than the changes sent when the peer stopped early
 * (see `resend`); `failure`: why the change after the last answered one was not applied
 * (a refusal, a transient error).
 */
export interface ResendAnswer {
  outcomes: Array<{ ok: true; provisional?: true } | { ok: false; error: WireError }>;
  failure?: WireError;
}

/** File attributes as they cross the wire (a subset of struct stat). */
export interface WireStat {
  /** 'other': a type this side does not know (a directory entry without d_type, say). */
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block' | 'other';
  mode: number; // full st_mode including type bits
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  blocks: number;
  /** The device number of a char or block device node (0 otherwise; absent from older peers). */
  rdev?: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** The same times exactly, in nanoseconds (decimal; absent from older peers). */
  atimeNs?: string;
  mtimeNs?: string;
  ctimeNs?: string;
}

export interface WireStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namemax: number;
}

export interface HandshakeResult {
  protocol: number;
  peer: { name: string; id: string };
  epoch: number;
  owner: string | null;
  /** Whether this copy keeps the mirror's inode numbers (store/inode-ids.ts); a pure relay says true. */
  inodeIds?: boolean;
  /** Set when the peer restarted after its machine crashed and is not exact until repaired (docs/PROTOCOL.md, "Unclean restart"). */
  unclean: UncleanRestart | null;
}

/** A peer that restarted after its machine went down while it ran: since when, and per mount the seq it held durably then. */
export interface UncleanRestart {
  since: string;
  durableThrough: Record<string, number>;
  /** Why: the machine went down while the peer ran, or a flush failed. */
  reason?: string;
}

/**
 * Where a peer's copy stands against one mount (answers of fsync and lease, the status):
 * every change up to appliedThrough is applied, up to durableThrough on stable storage.
 */
export interface MountDurability {
  appliedThrough: number;
  durableThrough: number;
  /** Age of the oldest applied change not yet durable, ms (null: none). */
  oldestUndurableAgeMs: number | null;
}

export interface ProgressResult {
  mount: string;
  /** Every seq <= this has a recorded outcome here (an intent without its outcome is in doubt and does not count). */
  contiguousSeq: number;
  /** Highest seq with a recorded outcome. */
  maxSeq: number;
  /** Seqs below this were forgotten (history pruned). */
  forgottenBelow: number;
  /** The mount declared every copy complete up to here (control op settle). */
  settledThrough: number;
}

/** One recorded operation (control op `history`). */
export interface HistoryEntry {
  seq: number;
  op: string;
  /** The operation's arguments without stamp or payload (JSON). */
  subject: string;
  state: 'intent' | 'done';
  /** The outcome (JSON), null for an intent. */
  result: string | null;
}

/** A pull in progress (PeerStatus.pull). */
export interface PullProgress {
  from: string;
  entries: number;
  totalEntries: number;
  filesCopied: number;
  bytesCopied: number;
  totalBytes: number;
  removed: number;
}

export interface PeerStatus {
  name: string;
  id: string;
  /** The SHA-256 fingerprint of the certificate this node presents (null in cleartext): what a pull ticket names as its target. */
  certificate: string | null;
  protocol: number;
  epoch: number;
  owner: string | null;
  ownerSince: string | null;
  uptimeS: number;
  inFlight: number;
  applied: number;
  appliedBytes: number;
  /** Null for a pure relay. */
  dataDir: string | null;
  durability: string;
  /** A pull (full resync from another peer) running now, or null. */
  pull: PullProgress | null;
  /** The peer's wall clock when it answered (doctor compares it with the caller's). */
  nowMs: number;
  /** Free space and file system type of the data directory; null for a pure relay. */
  disk: { freeBytes: number; totalBytes: number; fsType: string } | null;
  /** The background flush: its period, how many ran and failed, the last one's duration; per mount, applied and durable points. */
  flush: {
    intervalMs: number;
    flushes: number;
    failures: number;
    lastFlushMs: number | null;
    lastError: string | null;
    /** Flushes made for single durable changes (fdatasync of a file, fsync of an inode or a directory). */
    changeFlushes: { data: number; all: number; dir: number };
    mounts: Record<string, MountDurability>;
  };
  /** Set while the copy is not exact after an unclean restart (it serves nothing until repaired). */
  unclean: UncleanRestart | null;
  /** For a relay: its queue for the next hop, and the next hop's own status (or why it could not be had). */
  relay: RelayStatus | null;
  /** Earlier owners whose changes no later owner has reconciled yet (a takeover reconciles them). */
  unreconciled: Array<{ owner: string; epoch: number }>;
  /** How long since the owner last renewed its lease (or, if it has not since this peer started, since the start), in this peer's clock. */
  leaseAgeMs: number;
  /** Reused buffers for read answers: ever allocated, out now, free (absent from peers before session 8). */
  readBuffers?: { allocated: number; inUse: number; idle: number };
  /** The same for reads over 1 MiB (the mount's 4 MiB read-ahead blocks). */
  blockReadBuffers?: { allocated: number; inUse: number; idle: number };
  /** Call channels (POST /v1/channel) open now, and calls answered on them since the peer started. */
  channels?: { open: number; calls: number };
  /**
   * Connections: the cap (--max-connections), sessions open now (connections past TLS), those
   * closed at once over the cap, and those closed for having no request admitted in time
   * (absent from peers before session 17).
   */
  connections?: { max: number; sessions: number; dropped: number; evicted: number; unadmittedClosed: number };
}

export interface RelayStatus {
  to: string;
  connected: boolean;
  queue: { depth: number; bytes: number; oldestAgeMs: number | null };
  forwarded: number;
  forwardedBytes: number;
  diverged: number;
  /** Queued changes the next hop refuses for good (they stay queued and hold back what follows). */
  refused: number;
  lastError: string | null;
  next: PeerStatus | { error: string } | null;
}

/** One entry of a tree manifest (GET /v1/manifest, NDJSON). */
export interface ManifestEntry {
  path: string;
  type: WireStat['type'];
  mode: number;
  uid: number;
  gid: number;
  size: number;
  sha256?: string; // regular files
  target?: string; // symlinks
  rdev?: number; // char and block devices
  /** Regular files with more than one name: the inode number, so names of one file can be grouped (not comparable across peers). */
  inode?: number;
  /** Modification time (ms, truncated): copied by repair, not compared (reading through the mount can differ by the kernel's rounding). */
  mtimeMs?: number;
  /** The exact modification time in nanoseconds (decimal), copied by repair. */
  mtimeNs?: string;
  xattrs?: Record<string, string>; // name -> base64 value
}
