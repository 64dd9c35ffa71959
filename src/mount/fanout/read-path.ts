import { MirrorError, isTransportFailure, toMirrorError } from '../../protocol/errors.js';
import type { ReadRequest, WireStat, WireStatfs } from '../../protocol/ops.js';
import { RESERVED_ROOT_NAMES } from '../../protocol/paths.js';
import type { EntryType } from '../../store/reads.js';
import type { CallResult } from '../../client/peer-client.js';
import type { AbsentXattrs } from '../cache/absent-xattrs.js';
import { ABSENT, type NameCache } from '../cache/name-cache.js';
import { ReadAhead } from '../cache/read-ahead.js';
import type { LocalCopy } from '../peers/local-copy.js';
import type { Member } from '../peers/member.js';
import { keepReadPeer } from './read-choice.js';

export interface ReadPathOptions {
  members: readonly Member[];
  local: LocalCopy | null;
  /** The mount's caches, shared with the write path (which keeps them current: mirror.ts, cache/change-effects.ts). */
  names: NameCache;
  absentXattrs: AbsentXattrs;
}

/**
 * Reads: from the local copy when there is one, else from the caches or the
 * healthiest, fastest in-step peer (read-choice.ts), failing over to the
 * others. A peer that is behind may lack changes and is never read from.
 */
export class ReadPath {
  /** Blocks read ahead from the peers; the write path invalidates them on every change. */
  readonly readAhead: ReadAhead;
  /** The peer reads went to last (readOrder). */
  private readPeer: Member | null = null;

  constructor(private readonly opts: ReadPathOptions) {
    this.readAhead = new ReadAhead(
      (path, offset, length, into) => this.readFromPeers({ op: 'read', path, offset, length }, into).then((r) => r.payload),
      (path) => {
        const known = opts.names.lookup(path);
        return known && known !== ABSENT && known.type === 'file' ? known.size : undefined;
      },
    );
  }

  /** Whether getattr of this name is known to answer ENOENT without asking anyone (the name cache; not with a local copy, which answers itself). */
  nameKnownAbsent(path: string): boolean {
    if (this.opts.local?.active || RESERVED_ROOT_NAMES.has(path)) return false;
    return this.opts.names.lookup(path) === ABSENT;
  }

  /** Whether getxattr of this name is known to answer ENODATA without asking anyone (AbsentXattrs). */
  xattrKnownAbsent(path: string, name: string): boolean {
    return this.opts.absentXattrs.isAbsent(path, name);
  }

  /** A read: from the local copy when there is one, else from the healthiest, fastest peer. */
  async read<T = unknown>(req: ReadRequest): Promise<CallResult<T>> {
    const absentXattrs = this.opts.absentXattrs;
    if (req.op === 'getxattr' && absentXattrs.isAbsent(req.path, req.name)) {
      throw new MirrorError('MFS_ERRNO', `getxattr ${req.name}: no such attribute`, { errno: 'ENODATA' });
    }
    const generation = absentXattrs.generation;
    try {
      return await this.readThrough<T>(req);
    } catch (err) {
      if (req.op === 'getxattr' && err instanceof MirrorError && err.errno === 'ENODATA') absentXattrs.noteAbsent(req.path, req.name, generation);
      throw err;
    }
  }

  /**
   * A directory's entries and their types, for FUSE readdir (the kernel takes
   * only the type from each): from the local copy's own entries (d_type, no
   * lstat of each; `find` over 5,000 files spent most of its time there) when
   * there is one, else as any read (the name cache, or a peer's listing).
   */
  async listDir(path: string): Promise<EntryType[]> {
    const local = this.opts.local;
    if (local?.active) {
      try {
        return local.listTypes(path);
      } catch (err) {
        throw toMirrorError(err, { op: 'readdir', path });
      }
    }
    const { result } = await this.read<{ entries: Array<{ name: string; stat: WireStat | null }> }>({ op: 'readdir', path, withAttrs: true });
    // null: the entry vanished while the peer listed it.
    return result.entries.flatMap((e) => (e.stat ? [{ name: e.name, type: e.stat.type }] : []));
  }

  private async readThrough<T>(req: ReadRequest): Promise<CallResult<T>> {
    const local = this.opts.local;
    if (local?.active) {
      try {
        const out = local.read(req);
        return { result: out.result as T, payload: out.payload ?? EMPTY };
      } catch (err) {
        throw toMirrorError(err, { op: req.op, path: 'path' in req ? req.path : undefined });
      }
    }
    if (req.op === 'read') {
      const buf = Buffer.allocUnsafe(req.length);
      return { result: undefined as T, payload: buf.subarray(0, await this.readAhead.read(req.path, req.offset, req.length, buf)) };
    }
    const names = this.opts.names;
    // The reserved name is the peers' to refuse (EPERM), not the cache's to call absent.
    if (req.op === 'getattr' && !RESERVED_ROOT_NAMES.has(req.path)) {
      const known = names.lookup(req.path);
      if (known === ABSENT) throw new MirrorError('MFS_ERRNO', `getattr ${JSON.stringify(req.path)}: no such file or directory`, { errno: 'ENOENT' });
      if (known) return { result: known as T, payload: EMPTY };
    }
    if (req.op === 'readdir' && req.withAttrs) {
      const known = names.listed(req.path);
      if (known) return { result: { names: known.map((e) => e.name), entries: known } as T, payload: EMPTY };
      const generation = names.generation;
      const xattrGeneration = this.opts.absentXattrs.generation;
      const out = await this.readFromPeers<{ entries: Array<{ name: string; stat: WireStat | null; xattrs?: string[] }> }>(req, undefined, this.identityOrder());
      names.noteListing(req.path, out.result.entries, generation);
      for (const e of out.result.entries) {
        if (e.xattrs) this.opts.absentXattrs.noteComplete(req.path === '' ? e.name : `${req.path}/${e.name}`, e.xattrs, xattrGeneration);
      }
      return out as CallResult<T>;
    }
    return this.readFromPeers<T>(req, undefined, req.op === 'getattr' ? this.identityOrder() : undefined);
  }

  /**
   * Where attributes come from without a local copy: the first in-sync peer in
   * --peers order, then the others. Inode numbers differ between peers, and the
   * kernel (use_ino) shows the ones we give it: from one peer they are unique and
   * the names of a hard-linked file share one (rsync -H, tar and git rely on both);
   * mixed from two peers, two files could share a number and be taken for links.
   * The answers of changes, whose attributes the name cache keeps, are judged in
   * the same order (the first peer that committed the outcome speaks for it).
   */
  private identityOrder(): Member[] {
    return this.opts.members.filter((m) => m.inStep).sort((a, b) => Number(b.healthy) - Number(a.healthy));
  }

  /**
   * A file's bytes into `dest` (the kernel's buffer, for FUSE): from the local
   * copy when there is one, else through the read-ahead cache. A block cached
   * before this read was issued may be stale only if a change began since;
   * ReadAhead drops those (see read-ahead.ts).
   */
  async readInto(path: string, offset: number, length: number, dest: Buffer): Promise<number> {
    const local = this.opts.local;
    if (local?.active) {
      try {
        return local.readInto(path, offset, length, dest);
      } catch (err) {
        throw toMirrorError(err, { op: 'read', path });
      }
    }
    return this.readAhead.read(path, offset, length, dest);
  }

  /**
   * Read from the fastest healthy in-step peer, failing over to the others.
   * (Spreading the blocks of one sequential read over both peers was measured
   * slower here: every process shares the same two cores.)
   */
  private async readFromPeers<T>(req: ReadRequest, into?: Buffer, order = this.readOrder()): Promise<CallResult<T>> {
    // A peer that is behind may lack changes: never read from it.
    if (order.length === 0) throw new MirrorError('MFS_OUT_OF_STEP', 'no peer is in sync to read from');
    let lastError: unknown;
    for (const member of order) {
      try {
        return await member.call<T>(req, undefined, into && { into }, req.op === 'read' ? dataReadBoundMs(req.length, member.timeoutMs) : undefined);
      } catch (err) {
        if (!isTransportFailure(err)) throw err;
        lastError = err;
      }
    }
    throw lastError ?? new MirrorError('MFS_UNREACHABLE', 'no peer to read from');
  }

  /** Where reads go, in order of preference (read-choice.ts); remembers the first. */
  private readOrder(): Member[] {
    const order = keepReadPeer(this.inSyncByPreference(), this.readPeer);
    this.readPeer = order[0] ?? null;
    return order;
  }

  private inSyncByPreference(exclude?: Member): Member[] {
    return this.opts.members.filter((m) => m.inStep && m !== exclude).sort((a, b) => Number(b.healthy) - Number(a.healthy) || a.latencyP50Us - b.latencyP50Us);
  }

  /** The in-sync peer reads would go to first (healthy, then fastest), other than `exclude`; catch-up repairs from it. */
  fastestInSync(exclude?: Member): Member | null {
    return this.inSyncByPreference(exclude)[0] ?? null;
  }

  /** Space as the peers see it (where ENOSPC is decided): the tightest in-step peer's figures. */
  async statfs(): Promise<WireStatfs> {
    const inStep = this.opts.members.filter((m) => m.inStep);
    const answers = await Promise.allSettled(inStep.map((m) => m.call<WireStatfs>({ op: 'statfs' })));
    const figures = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value.result] : []));
    if (figures.length === 0) throw new MirrorError('MFS_UNREACHABLE', 'no peer answered statfs');
    return figures.reduce((min, f) => (f.bavail * f.bsize < min.bavail * min.bsize ? f : min));
  }
}

const EMPTY = Buffer.alloc(0);

const MiB = 1024 * 1024;

/**
 * The bound on a data read: the peer timeout for each MiB it asks for. A read-ahead block is
 * 4 MiB and two more are fetched behind it on the same connection, so on a slow link one
 * timeout for the whole block would fail reads (EIO) wherever 12 MiB do not arrive within it
 * (under about 20 Mbit/s with the default 5 s); per MiB, a link that moves 1 MiB in each
 * timeout still reads, as it did with 1 MiB blocks.
 */
export function dataReadBoundMs(length: number, peerTimeoutMs: number): number {
  return peerTimeoutMs * Math.max(1, Math.ceil(length / MiB));
}
