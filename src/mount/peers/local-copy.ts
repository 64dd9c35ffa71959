import { mkdirSync, readdirSync, realpathSync } from 'node:fs';
import type { Logger } from '../../log.js';
import type { Mutation, ReadRequest } from '../../protocol/ops.js';
import { applyMutation, type ApplyContext, type MutationResult } from '../../store/apply.js';
import { noSync } from '../../store/durable.js';
import { FdCache } from '../../store/fd-cache.js';
import { listTypes, readInto, serveRead, type EntryType, type ReadOutcome } from '../../store/reads.js';
import { Tree } from '../../store/tree.js';

/**
 * The optional local copy on the primary (patent para. 29): a plain directory
 * kept in step with the peers by applying every change to it too, and serving
 * reads without a network round trip. It is a cache, not a mirror: it is not
 * flushed to disk (the peers hold the durable copies), and if it ever
 * disagrees with the peers it is switched off and reads go to the peers.
 */
export class LocalCopy {
  private readonly ctx: ApplyContext;
  private disabledReason: string | null = null;

  constructor(readonly dir: string, private readonly log: Logger) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.ctx = { tree: new Tree(realpathSync(dir)), fds: new FdCache(), sync: noSync };
  }

  /** For repair actions (copies.ts). */
  get context(): ApplyContext {
    return this.ctx;
  }

  get root(): string {
    return this.ctx.tree.root;
  }

  isEmpty(): boolean {
    return readdirSync(this.root).length === 0;
  }

  get active(): boolean {
    return this.disabledReason === null;
  }

  get reason(): string | null {
    return this.disabledReason;
  }

  apply(req: Mutation, payload: Buffer): Promise<MutationResult> {
    return applyMutation(this.ctx, req, payload, false);
  }

  read(req: ReadRequest): ReadOutcome {
    return serveRead(this.ctx, req);
  }

  /** A directory's entries and their types, without an lstat each (what FUSE readdir needs). */
  listTypes(path: string): EntryType[] {
    return listTypes(this.ctx, path);
  }

  /** A file's bytes straight into `dest` (the kernel's buffer): no buffer of our own per read. */
  readInto(path: string, offset: number, length: number, dest: Buffer): number {
    return readInto(this.ctx, path, offset, length, dest);
  }

  /** Stop using the copy (it disagreed with the peers); reads go to the peers from now on. */
  disable(reason: string): void {
    if (this.disabledReason) return;
    this.disabledReason = reason;
    this.ctx.fds.closeAll();
    this.log.error({ localCopy: this.dir, reason }, 'local copy disabled: it no longer matches the peers; reads now go to the peers. Empty the directory and remount to rebuild it.');
  }

  close(): void {
    this.ctx.fds.closeAll();
  }
}
