import { INODE_ID_XATTR, type InodeIds } from '../../store/inode-ids.js';
import type { Logger } from '../../log.js';
import { MirrorError, errnoNumber, toMirrorError } from '../../protocol/errors.js';
import { NAMESPACE_OPS, type MutationRequest, type WireStat, type WireStatfs } from '../../protocol/ops.js';
import { NAME_MAX_BYTES, PATH_MAX_BYTES, fusePathToWire } from '../../protocol/paths.js';
import { wireByteLength } from '../../protocol/byte-names.js';
import { BufferPool, PooledBytes } from '../../protocol/buffer-pool.js';
import type { MirrorController } from '../fanout/mirror.js';
import type { Caller } from './fuse-binding.js';
import type { LinkedNames } from './linked-names.js';
import type { AccessTimes } from './access-times.js';
import { realtimeCoarseNs } from '../../store/posix.js';

/**
 * FUSE operations -> mirror controller. Each operation has the same short
 * shape: translate the path, do the work through the controller, answer the
 * kernel; any error becomes its errno (unknown ones EIO, and are logged).
 *
 * Writes and other changes return only after the controller says every peer
 * the ack policy requires applied them; fsync and fsyncdir only once those
 * peers made them durable. Reads come from the local copy or a peer.
 *
 * Operations with nothing to do are left out, so the kernel's request is
 * answered inside libfuse instead of crossing into JavaScript and back
 * (~60-100 us each on this machine): open and opendir (libfuse hands out
 * handle 0; every operation here works by path), release and releasedir, and
 * flush: close is not a durability point (as on a local file system), so the
 * kernel's answer to a missing flush (it stops asking and returns 0) is right.
 */

type Cb = (code: number, ...rest: unknown[]) => void;

const ENODATA = errnoNumber('ENODATA');
const ENOENT = errnoNumber('ENOENT');
/** st_mode type bits by entry type ('other': unknown to readdir, so the kernel asks getattr). */
const TYPE_BITS: Record<WireStat['type'], number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000, fifo: 0o010000, socket: 0o140000, char: 0o020000, block: 0o060000, other: 0 };
/** The special files mknod makes, by their st_mode type bits. */
const NODE_KINDS: ReadonlyMap<number, 'fifo' | 'socket' | 'char' | 'block'> = new Map([[0o010000, 'fifo'], [0o140000, 'socket'], [0o020000, 'char'], [0o060000, 'block']]);
/** renameat2(2)'s flags, as libfuse 3 passes them. */
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const PERMISSION_BITS = 0o7777;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
/** libfuse's FUSE_UNKNOWN_INO: a directory entry's inode number when it is not known. */
const UNKNOWN_INO = 0xffff_ffff;
/** Writes up to this size (most: 4-128 KiB) are copied into reused buffers of this size. */
const SMALL_WRITE = 128 * 1024;
/** Free small buffers kept: enough for the writes one busy mount has in flight (4 MiB). */
const WRITE_BUFFERS_KEPT = 32;
/** The largest write libfuse 3 lets the kernel send (max_pages 256); larger writes, for streams, get these. */
const FUSE_MAX_WRITE = 1024 * 1024;
/** Free large buffers kept: a streaming writer has a few in flight (4 MiB). */
const LARGE_WRITE_BUFFERS_KEPT = 4;


/** The virtual xattr that tells an application whether a file's changes reached the far mirrors (ack mode end-to-end). */
export const STATE_XATTR = 'user.mirrorfs.state';

export interface FuseOpsOptions {
  fsyncTimeoutMs: number;
  onError?: (op: string, errno: string) => void;
  /**
   * The process that made the request being handled (read synchronously, first
   * thing in an operation): new entries are its. Without it (unit tests of
   * these operations) they are the peer process's.
   */
  caller?: () => Caller;
  /** Hands out the mirror's inode numbers for new entries (store/inode-ids.ts); without it, none are sent. */
  inodeIds?: InodeIds;
  /**
   * Keeps the other names of hard-linked files fresh in the kernel's cache
   * (linked-names.ts); without it (unit tests, no kernel) nothing is refreshed.
   */
  linkedNames?: LinkedNames;
  /** Stamps atime on reads as a local file system would (access-times.ts); without it reads leave atime alone. */
  accessTimes?: AccessTimes;
}

export function buildFuseOps(controller: MirrorController, log: Logger, opts: FuseOpsOptions = { fsyncTimeoutMs: 30_000 }): Record<string, (...args: never[]) => void> {
  let nextHandle = 1;
  const handle = () => {
    nextHandle = nextHandle >= 0x7fff_fff0 ? 1 : nextHandle + 1;
    return nextHandle;
  };

  /**
   * Run an operation and answer the kernel: value(s) on success, -errno on
   * failure. read and write are answered differently by fuse-native: the
   * byte count itself is the first argument (`countFirst`).
   */
  const answer = (op: string, path: string, cb: Cb, work: () => Promise<unknown[] | void>, countFirst = false) => {
    work().then(
      (values) => (countFirst ? cb((values as number[])[0]!) : cb(0, ...(values ?? []))),
      (err: unknown) => {
        const e = toMirrorError(err, { op, path });
        if (e.code === 'MFS_INTERNAL') log.error({ peer: null, op, path, errno: e.errno, err }, 'internal error in FUSE operation');
        else log.debug({ op, path, errno: e.errno, code: e.code }, 'FUSE operation failed');
        opts.onError?.(op, e.errno);
        cb(-errnoNumber(e.errno));
      },
    );
  };

  const atimes = opts.accessTimes;
  /** Every change goes through here: the names it changes are stamped again on their next read (access-times.ts). */
  const mutate: MirrorController['mutate'] = (req, payload, hold) => {
    if (!atimes) return controller.mutate(req, payload, hold);
    const names = changedNames(req);
    atimes.changed(...names);
    if (req.op === 'rename') atimes.changedBelow(req.from, req.to); // a directory moved: what was under either name is another file now
    // Again once done: a getattr answered meanwhile may show the state before the change.
    return controller.mutate(req, payload, hold).finally(() => atimes.changed(...names));
  };
  /**
   * A reader's access to a file, directory or symlink: atime stamped on every copy
   * where a local file system would stamp it, alongside the read. Never fails the
   * read; skipped unless every peer is in step (an outage, fenced, unmounting).
   */
  const accessed = (wirePath: string, kind: 'file' | 'directory'): Promise<void> | undefined => {
    if (!atimes || !controller.everyPeerInStep) return undefined;
    return atimes.read(wirePath, kind)?.catch((err: unknown) => log.debug({ path: wirePath, err: (err as Error).message }, 'atime not stamped'));
  };
  /**
   * The read-like work `read` does, with atime stamped alongside (see accessed): the
   * answer waits for the stamp, so a stat after the read shows it, but at most
   * ACCESS_WAIT_MS (a peer that stalls before it is found out delays a read that long,
   * once; the stamp then lands late).
   */
  const reading = async <T>(wirePath: string, work: () => Promise<T>, kind: 'file' | 'directory' = 'file'): Promise<T> => {
    const stamping = accessed(wirePath, kind);
    const value = await work();
    if (stamping) await withinMs(stamping, ACCESS_WAIT_MS);
    return value;
  };
  /** A question the controller can answer "absent" without asking anyone; false for a name wire() refuses (answered with its error by the full path). */
  const knownAbsent = (path: string, check: (wirePath: string) => boolean): boolean => {
    try {
      return check(wire(path));
    } catch {
      return false;
    }
  };
  const writePayloads = new BufferPool(SMALL_WRITE, WRITE_BUFFERS_KEPT);
  const largeWritePayloads = new BufferPool(FUSE_MAX_WRITE, LARGE_WRITE_BUFFERS_KEPT);
  /**
   * Answer a request that creates an entry: its owner is the caller's fsuid and
   * fsgid (the peer applies set-group-ID directories), read now, synchronously;
   * a binding that cannot say who called fails the request (EIO, logged) rather
   * than making the entry someone else's.
   */
  type Owner = { uid?: number; gid?: number; umask?: number; ino?: number };
  const answerOwned = (op: string, path: string, cb: Cb, work: (owner: Owner) => Promise<unknown[] | void>) => {
    let owner: Owner = {};
    let failure: unknown = null;
    try {
      if (opts.caller) {
        // The umask too: with POSIX ACLs the kernel leaves it to us (a default ACL overrides it).
        const { uid, gid, umask } = opts.caller();
        owner = op === 'symlink' ? { uid, gid } : { uid, gid, umask };
      }
      // The mirror's inode number for it, the same on every copy (store/inode-ids.ts).
      const ino = opts.inodeIds?.allocate();
      if (ino !== undefined) owner.ino = ino;
    } catch (err) {
      failure = err;
    }
    answer(op, path, cb, () => (failure ? Promise.reject(failure) : work(owner)));
  };
  const read = controller.read.bind(controller);

  const linked = opts.linkedNames;
  /** getattr's answer, noted for hard links on its way to the kernel. */
  const statOf = async (path: string) => {
    const since = atimes?.mark() ?? 0;
    const st = (await read<WireStat>({ op: 'getattr', path: wire(path) })).result;
    atimes?.noteStat(wire(path), st, since);
    linked?.note(path, st);
    return [toFuseStat(st)];
  };
  /**
   * A change to the file at `path`: once done (or failed: some peers may have
   * applied it), what the kernel caches for the file's other names is dropped
   * before the kernel hears the outcome (linked-names.ts); `self` drops
   * `path`'s own too (a link's source, whose cached nlink the kernel does not count up).
   */
  const mutateFile = async (path: string, work: () => Promise<unknown>, change: { self?: boolean } = {}): Promise<void> => {
    const others = linked?.othersOf(path) ?? [];
    atimes?.changed(...others.map(fusePathToWire)); // one inode: its ctime changes under every name
    const names = change.self ? [path, ...others] : others;
    try {
      await work();
    } finally {
      const refreshing = linked?.refresh(names); // undefined, and no await, for a file with one name
      if (refreshing) await refreshing;
    }
  };

  return {
    // ---- metadata -------------------------------------------------------------
    getattr: (path: string, cb: Cb) => {
      // The kernel looks up every name before creating it (cp -r, untar): a name known
      // not to exist is answered here, without building an error for it.
      if (knownAbsent(path, (p) => controller.nameKnownAbsent(p))) {
        opts.onError?.('getattr', 'ENOENT');
        return cb(-ENOENT);
      }
      answer('getattr', path, cb, () => statOf(path));
    },

    fgetattr: (path: string, _fd: number, cb: Cb) => answer('getattr', path, cb, () => statOf(path)),

    access: (path: string, _mode: number, cb: Cb) =>
      // Permission checks are the kernel's (default_permissions); access only says whether it exists.
      answer('access', path, cb, async () => void (await read({ op: 'getattr', path: wire(path) }))),

    statfs: (path: string, cb: Cb) =>
      answer('statfs', path, cb, async () => [toFuseStatfs(await controller.statfs())]),

    readlink: (path: string, cb: Cb) =>
      answer('readlink', path, cb, async () => [(await reading(wire(path), () => read<{ target: string }>({ op: 'readlink', path: wire(path) }))).result.target]),

    chmod: (path: string, mode: number, cb: Cb) =>
      answer('chmod', path, cb, () => mutateFile(path, () => mutate({ op: 'chmod', path: wire(path), mode: mode & PERMISSION_BITS }))),

    chown: (path: string, uid: number, gid: number, cb: Cb) =>
      answer('chown', path, cb, () => mutateFile(path, () => mutate({ op: 'chown', path: wire(path), uid: asId(uid), gid: asId(gid) }))),

    utimens: (path: string, atime: bigint, mtime: bigint, cb: Cb) => {
      const now = nowNs(); // one "now" for both times and every copy
      answer('utimens', path, cb, () => mutateFile(path, () => mutate({ op: 'utimens', path: wire(path), atimeNs: fromFuseTime(atime, now), mtimeNs: fromFuseTime(mtime, now) })));
    },

    // ---- files ----------------------------------------------------------------
    create: (path: string, mode: number, cb: Cb) =>
      answerOwned('create', path, cb, async (owner) => {
        // The kernel checks O_EXCL itself (lookup before create); two racing
        // creators of one name both succeed, as with open(O_CREAT) on ext4.
        await mutate({ op: 'create', path: wire(path), mode: mode & PERMISSION_BITS, exclusive: false, ...owner });
        return [handle()];
      }),

    // A regular file (mknod(2) of S_IFREG) is an exclusive create; FIFOs, sockets
    // and device nodes are made as such on every peer (devices with their number).
    mknod: (path: string, mode: number, dev: number, cb: Cb) =>
      answerOwned('mknod', path, cb, async (owner) => {
        const type = mode & S_IFMT;
        if (type === S_IFREG) return void (await mutate({ op: 'create', path: wire(path), mode: mode & PERMISSION_BITS, exclusive: true, ...owner }));
        const kind = NODE_KINDS.get(type);
        if (!kind) throw new MirrorError('MFS_ERRNO', `mknod ${path}: unknown file type ${type.toString(8)}`, { errno: 'EINVAL' });
        await mutate({ op: 'mknod', path: wire(path), kind, mode: mode & PERMISSION_BITS, rdev: kind === 'char' || kind === 'block' ? dev : 0, ...owner });
      }),

    read: (path: string, _fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      // Straight into the kernel's buffer, which stays ours until we answer (no buffer of our own per read).
      answer('read', path, cb, async () => [await reading(wire(path), () => controller.readInto(wire(path), pos, len, buf))], true),

    write: (path: string, _fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      answer('write', path, cb, async () => {
        // buf is the kernel's request memory, valid only until we answer (or fuse-native
        // times the request out): copied at once, since a peer's send may outlast the call
        // (ack 1 or quorum, a timed-out stream). Into a reused buffer, not a new one each
        // time, so streaming writes leave no garbage (buffer-pool.ts).
        const pooled = PooledBytes.copyOf(len <= SMALL_WRITE ? writePayloads : largeWritePayloads, buf.subarray(0, len));
        await mutateFile(path, async () => {
          try {
            await mutate({ op: 'write', path: wire(path), offset: pos }, pooled?.bytes ?? Buffer.from(buf.subarray(0, len)), pooled ?? undefined);
          } finally {
            pooled?.release();
          }
        });
        return [len];
      }, true),

    truncate: (path: string, size: number, cb: Cb) =>
      answer('truncate', path, cb, () => mutateFile(path, () => mutate({ op: 'truncate', path: wire(path), size }))),

    ftruncate: (path: string, _fd: number, size: number, cb: Cb) =>
      answer('truncate', path, cb, () => mutateFile(path, () => mutate({ op: 'truncate', path: wire(path), size }))),

    // The kernel passes on KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE (it refuses the other modes itself).
    fallocate: (path: string, mode: number, offset: number, length: number, cb: Cb) =>
      answer('fallocate', path, cb, () => mutateFile(path, () => mutate({ op: 'fallocate', path: wire(path), mode, offset, length }))),

    // Durability (docs/PROTOCOL.md, "Durability"): a change returns once the peers applied it;
    // fsync, fdatasync and fsyncdir are the barriers that make every change so far durable on
    // them. The kernel turns a write on a file opened O_SYNC/O_DSYNC into the write and an fsync
    // of its range, so those writes are durable when they return too. close (flush) is not a
    // durability point, as on a local file system. On a `-o sync` mount every change is durable
    // already. In end-to-end mode fsync also waits until this file's changes are committed at
    // every far mirror (or EIO after the fsync timeout).
    fsync: (path: string, datasync: number, _fd: number, cb: Cb) =>
      answer('fsync', path, cb, async () => {
        await controller.barrier(wire(path), datasync !== 0);
        await controller.commits?.waitCommitted(wire(path), opts.fsyncTimeoutMs);
      }),

    fsyncdir: (path: string, _datasync: number, _fd: number, cb: Cb) =>
      answer('fsyncdir', path, cb, async () => {
        await controller.barrier(wire(path));
        await controller.commits?.waitCommitted(wire(path), opts.fsyncTimeoutMs);
      }),

    // ---- names ----------------------------------------------------------------
    // For a hard-linked file, a name's removal changes the others' nlink and ctime;
    // a rename, the ctime of the file renamed and (replacing it) of the one at dest.
    unlink: (path: string, cb: Cb) =>
      answer('unlink', path, cb, () =>
        mutateFile(path, async () => {
          await mutate({ op: 'unlink', path: wire(path) });
          linked?.removed(path);
        }),
      ),

    // renameat2's flags, each mirrored: RENAME_NOREPLACE (an atomic "only if absent" on
    // every copy) and RENAME_EXCHANGE (both names swapped on every copy); anything else
    // (RENAME_WHITEOUT, for overlayfs) is refused with EINVAL, as by a file system without it.
    rename: (src: string, dest: string, flags: number, cb: Cb) =>
      answer('rename', src, cb, () => {
        if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new MirrorError('MFS_ERRNO', `rename ${src} -> ${dest}: renameat2 flags ${flags} are not supported (RENAME_NOREPLACE and RENAME_EXCHANGE are)`, { errno: 'EINVAL' });
        const exchange = (flags & RENAME_EXCHANGE) !== 0;
        return mutateFile(dest, () =>
          mutateFile(src, async () => {
            await mutate({ op: 'rename', from: wire(src), to: wire(dest), ...(flags & RENAME_NOREPLACE ? { noReplace: true } : {}), ...(exchange ? { exchange: true } : {}) });
            if (exchange) linked?.exchanged(src, dest);
            else linked?.renamed(src, dest);
          }),
        );
      }),

    // The new name is looked up (and noted) after this answer. src is refreshed too:
    // the kernel does not count the new link in src's cached attributes, since with
    // libfuse's path API the new name is another inode to it; src's answer then notes
    // it as linked (it may have been seen with one link only).
    link: (src: string, dest: string, cb: Cb) =>
      answer('link', dest, cb, () => mutateFile(src, () => mutate({ op: 'link', from: wire(src), path: wire(dest) }), { self: true })),

    symlink: (target: string, path: string, cb: Cb) =>
      answerOwned('symlink', path, cb, async (owner) => {
        await mutate({ op: 'symlink', target, path: wire(path), ...owner });
      }),

    // ---- directories ----------------------------------------------------------
    mkdir: (path: string, mode: number, cb: Cb) =>
      answerOwned('mkdir', path, cb, async (owner) => void (await mutate({ op: 'mkdir', path: wire(path), mode: mode & PERMISSION_BITS, ...owner }))),

    rmdir: (path: string, cb: Cb) => answer('rmdir', path, cb, async () => void (await mutate({ op: 'rmdir', path: wire(path) }))),

    readdir: (path: string, cb: Cb) =>
      answer('readdir', path, cb, async () => {
        // Each entry with its type, so the kernel learns d_type and tools like find
        // need no lookup per entry to tell files from directories. With use_ino libfuse
        // takes d_ino from each entry too: a listing knows no inode numbers (they would
        // cost an lstat per entry), so every entry says "unknown", as libfuse does
        // without use_ino (never 0: glibc's readdir skips such entries as deleted).
        const entries = await reading(wire(path), () => controller.listDir(wire(path)), 'directory');
        const dot = { mode: TYPE_BITS.dir, ino: UNKNOWN_INO };
        return [['.', '..', ...entries.map((e) => e.name)], [dot, dot, ...entries.map((e) => ({ mode: TYPE_BITS[e.type], ino: UNKNOWN_INO }))]];
      }),

    // ---- extended attributes --------------------------------------------------
    setxattr: (path: string, name: string, value: Buffer, _position: number, flags: number, cb: Cb) =>
      answer('setxattr', path, cb, async () => {
        if (name === STATE_XATTR || name === INODE_ID_XATTR) throw new MirrorError('MFS_ERRNO', `${name} is kept by mirrorfs and cannot be set`, { errno: 'EPERM' });
        // POSIX ACLs (system.posix_acl_access/default) are xattrs like any other here: the
        // kernel has already checked the caller may set them, and enforces them itself.
        // Each copy's own kernel keeps the file's mode in step with the ACL.
        const mode = flags & XATTR_CREATE ? 'create' : flags & XATTR_REPLACE ? 'replace' : 'any';
        await mutateFile(path, () => mutate({ op: 'setxattr', path: wire(path), name, flags: mode }, Buffer.from(value)));
      }),

    getxattr: (path: string, name: string, _position: number, cb: Cb) => {
      // The kernel asks for security.capability before every write: a name known to
      // have none is answered here, without building an error (measured ~27 us a write).
      // The mirror's inode number is the copies' business: not there, to anyone.
      if (name === INODE_ID_XATTR || knownAbsent(path, (p) => controller.xattrKnownAbsent(p, name))) {
        opts.onError?.('getxattr', 'ENODATA');
        return cb(-ENODATA);
      }
      answer('getxattr', path, cb, async () => {
        const commits = controller.commits;
        if (name === STATE_XATTR && commits) {
          await read({ op: 'getattr', path: wire(path) }); // ENOENT for a name that is not there
          return [Buffer.from(commits.stateOf(wire(path)))];
        }
        return [(await read({ op: 'getxattr', path: wire(path), name })).payload];
      });
    },

    listxattr: (path: string, cb: Cb) => {
      // trusted.* names are listed only to a privileged caller, as ext4 lists them (to
      // CAP_SYS_ADMIN; root stands for it here). The kernel itself refuses to read or
      // write them for anyone else, whatever the file system.
      const privileged = (opts.caller?.().uid ?? 0) === 0;
      answer('listxattr', path, cb, async () => {
        const names = (await read<{ names: string[] }>({ op: 'listxattr', path: wire(path) })).result.names;
        return [names.filter((n) => n !== INODE_ID_XATTR && (privileged || !n.startsWith('trusted.')))];
      });
    },

    removexattr: (path: string, name: string, cb: Cb) =>
      answer('removexattr', path, cb, async () => {
        if (name === STATE_XATTR || name === INODE_ID_XATTR) throw new MirrorError('MFS_ERRNO', `${name} is kept by mirrorfs and cannot be removed`, { errno: 'EPERM' });
        await mutateFile(path, () => mutate({ op: 'removexattr', path: wire(path), name }));
      }),
  };
}

/**
 * A FUSE path (its wire form: fuse-names.ts) as a wire path, with ext4's length
 * errors.
 */
function wire(fusePath: string): string {
  checkNameLengths(fusePath);
  return fusePathToWire(fusePath);
}

/**
 * ENAMETOOLONG for a component over NAME_MAX bytes, as ext4 answers: the kernel
 * passes FUSE names of up to 1,024 bytes, and a lookup of one would otherwise be
 * "no such file". A UTF-16 unit stands for at most 3 bytes, so only components
 * of more than 85 units need counting.
 */
function checkNameLengths(fusePath: string): void {
  // PATH_MAX counts the whole path below the mount point too (the wire's limit): ENAMETOOLONG, not a malformed request.
  if (fusePath.length > PATH_MAX_BYTES / 3 && wireByteLength(fusePath) - 1 > PATH_MAX_BYTES) {
    throw new MirrorError('MFS_ERRNO', `${JSON.stringify(fusePath.slice(0, 64))}... is longer than ${PATH_MAX_BYTES} bytes below the mount point`, { errno: 'ENAMETOOLONG' });
  }
  let start = 1;
  while (start < fusePath.length) {
    let end = fusePath.indexOf('/', start);
    if (end < 0) end = fusePath.length;
    if (end - start > NAME_MAX_BYTES / 3 && wireByteLength(fusePath.slice(start, end)) > NAME_MAX_BYTES) {
      throw new MirrorError('MFS_ERRNO', `a name in ${JSON.stringify(fusePath.slice(0, 64))}... is longer than ${NAME_MAX_BYTES} bytes`, { errno: 'ENAMETOOLONG' });
    }
    start = end + 1;
  }
}

/** How long a read waits for its atime stamp (fuse-ops.ts reading). */
const ACCESS_WAIT_MS = 2000;

/** Wait for `work`, but no longer than `ms` (it goes on in the background). */
function withinMs(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([work.then(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}

/** The names a change alters (their times), by wire path: its own, and for a change of names their directories. */
function changedNames(req: MutationRequest): string[] {
  const names: string[] = [];
  const add = (p: string | undefined, parent: boolean) => {
    if (p === undefined) return;
    names.push(p);
    if (parent) names.push(p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
  };
  const namespace = NAMESPACE_OPS.has(req.op);
  if ('path' in req) add(req.path, namespace);
  if ('from' in req) add(req.from, namespace);
  if ('to' in req) add(req.to, namespace);
  return names;
}

/**
 * Times from our patched fuse-native (scripts/patch-fuse-native.mjs): nanoseconds
 * since the epoch (any year: the binding reads one beyond 64 bits exactly), or a
 * sentinel for UTIME_NOW / UTIME_OMIT. As the wire carries them: decimal
 * nanoseconds, or null to leave that time as it is.
 */
const UTIME_NOW_NS = 2n ** 63n - 1n;
const UTIME_OMIT_NS = 2n ** 63n - 2n;
/** What a binding without the wide-times patch passes for a time beyond 64-bit nanoseconds. */
const UTIME_OUT_OF_RANGE_NS = 2n ** 63n - 3n;
/**
 * The wire's bound (protocol/ops.ts timeNs): some 31,000 years either side of 1970. ext4
 * would clamp such a time to its own range (1901-2446), which each copy's kernel does for
 * times inside this bound.
 */
const MAX_WIRE_TIME_NS = 10n ** 21n - 1n;
function fromFuseTime(ns: bigint, now: string): string | null {
  if (ns === UTIME_OMIT_NS) return null;
  if (ns === UTIME_NOW_NS) return now;
  if (ns === UTIME_OUT_OF_RANGE_NS) throw new MirrorError('MFS_ERRNO', 'utimens: a time before 1678 or after 2262 needs the wide-times patch of fuse-native (run `node scripts/patch-fuse-native.mjs`)', { errno: 'EOVERFLOW' });
  if (ns > MAX_WIRE_TIME_NS || ns < -MAX_WIRE_TIME_NS) throw new MirrorError('MFS_ERRNO', `utimens: ${ns} ns is more than 31,000 years from 1970`, { errno: 'EOVERFLOW' });
  return ns.toString();
}

/** "Now" for utimens: the kernel's file-time clock (store/posix.ts), one value for every copy. */
function nowNs(): string {
  return realtimeCoarseNs().toString();
}

/** FUSE passes (uid_t)-1 for "leave unchanged" as 4294967295. */
function asId(id: number): number {
  return id === 0xffff_ffff ? -1 : id;
}

function toFuseStat(st: WireStat) {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    nlink: st.nlink,
    ino: st.ino,
    blocks: st.blocks,
    rdev: st.rdev ?? 0,
    blksize: 4096,
    ...fuseTime('atime', st.atimeNs, st.atimeMs),
    ...fuseTime('mtime', st.mtimeNs, st.mtimeMs),
    ...fuseTime('ctime', st.ctimeNs, st.ctimeMs),
  };
}

/**
 * A time as our patched fuse-native takes it: whole milliseconds (`atime`), and the
 * nanoseconds within that millisecond (`atimeNsRem`), so a stat shows it exactly.
 */
function fuseTime<K extends 'atime' | 'mtime' | 'ctime'>(key: K, ns: string | undefined, ms: number): Record<K | `${K}NsRem`, number> {
  if (ns === undefined) return { [key]: Math.floor(ms), [`${key}NsRem`]: 0 } as Record<K | `${K}NsRem`, number>;
  const exact = BigInt(ns);
  let whole = exact / 1_000_000n;
  let rem = exact % 1_000_000n;
  if (rem < 0n) {
    whole -= 1n;
    rem += 1_000_000n;
  }
  return { [key]: Number(whole), [`${key}NsRem`]: Number(rem) } as Record<K | `${K}NsRem`, number>;
}

function toFuseStatfs(s: WireStatfs) {
  return { bsize: s.bsize, frsize: s.frsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: s.namemax };
}
