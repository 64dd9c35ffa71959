import { chmodSync, closeSync, constants, fchmodSync, fchownSync, lchownSync, lstatSync, mkdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { fdatasync, write } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { fsDirname, fsPath, fsPathText, type FsPath } from '../protocol/byte-names.js';
import { execFile } from 'node:child_process';
import { MirrorError } from '../protocol/errors.js';
import type { Mutation, RepairAction } from '../protocol/ops.js';
import { applyMutation, dropInheritedAcls, type ApplyContext, type MutationResult } from './apply.js';
import { listNames } from './reads.js';
import { utimens } from './posix.js';
import { openNoSpecial } from './open-file.js';
import { requestedTime } from './times.js';

/**
 * Repair actions (docs/PROTOCOL.md, "Repair"): how verify --repair, resync and
 * reconciliation make one copy equal to another. Each action is an ordinary
 * operation applied without a stamp (so not recorded), or remove-tree. They
 * are only ever sent in an order that sets state (remove what is wrong, then
 * create, write, set attributes), so re-sending a sequence converges.
 */
export async function applyRepair(ctx: ApplyContext, action: RepairAction, payload: Buffer): Promise<MutationResult> {
  if (action.op === 'remove-tree') {
    await removeTree(ctx, action.path);
    return null;
  }
  if (action.op === 'put-file') {
    await putFile(ctx, action, payload);
    return null;
  }
  if (action.op === 'put-dir') {
    await putDir(ctx, action);
    return null;
  }
  if (action.op === 'put-range') {
    await putRange(ctx, action, payload);
    return null;
  }
  if (action.op === 'flush') {
    await flushFileSystem(ctx);
    return null;
  }
  // The handlers do not look at the stamp; a fixed one satisfies the type.
  return applyMutation(ctx, { ...action, mount: 'repair', epoch: 1, seq: 1 } as Mutation, payload, false);
}

async function putFile({ tree, fds, sync }: ApplyContext, action: Extract<RepairAction, { op: 'put-file' }>, payload: Buffer): Promise<void> {
  const abs = tree.resolve(action.path);
  fds.invalidate(action.path);
  const existing = lstatSync(abs, { throwIfNoEntry: false });
  // Removing is remove-tree's job (it runs exclusively); a put never removes a name.
  if (existing && !existing.isFile()) throw new MirrorError('MFS_ERRNO', `put-file ${JSON.stringify(action.path)}: a ${existing.isDirectory() ? 'directory' : 'non-regular file'} is there; remove it first`, { errno: 'EEXIST' });
  // Synchronous, as the operations in apply.ts: a put-file is at most 1 MiB,
  // and a resync of many small files measured 5,400 files/s this way against
  // 3,300 with eight at once through libuv's thread pool (their lookups
  // contend for the directory's lock). Only the flush leaves the event loop.
  const fd = openNoSpecial(abs, constants.O_CREAT | constants.O_TRUNC | constants.O_WRONLY | constants.O_NOFOLLOW, 0o600);
  try {
    if (!existing) dropInheritedAcls(abs, false); // the source's own ACLs, if any, come with its xattrs
    let done = 0;
    while (done < payload.length) done += writeSync(fd, payload, done, payload.length - done, done);
    fchownSync(fd, action.uid, action.gid);
    fchmodSync(fd, action.mode); // after chown, which may clear set-id bits
    const mtime = requestedTime(action.mtimeNs, action.mtimeMs);
    utimens(abs, mtime, mtime, { noFollow: true });
    if (action.flush) await sync.all(fd); // content and the attributes just set
  } finally {
    closeSync(fd);
  }
  if (action.flush) await sync.dir(fsDirname(abs));
}

function writeAsync(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => write(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}
const fdatasyncAsync = promisify(fdatasync);

async function putRange({ tree, fds }: ApplyContext, action: Extract<RepairAction, { op: 'put-range' }>, payload: Buffer): Promise<void> {
  const abs = tree.resolve(action.path);
  fds.invalidate(action.path); // no cached descriptor may keep older bytes in view
  // Never a FIFO or device node (open-file.ts): a repair must not write into a disk.
  const fd = openNoSpecial(abs, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
    let done = 0;
    while (done < payload.length) done += await writeAsync(fd, payload, done, payload.length - done, action.offset + done);
    if (action.flush) await fdatasyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

async function putDir({ tree, sync }: ApplyContext, action: Extract<RepairAction, { op: 'put-dir' }>): Promise<void> {
  const abs = tree.resolve(action.path);
  try {
    mkdirSync(abs, { mode: 0o700 });
    dropInheritedAcls(abs, true);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (!lstatSync(abs).isDirectory()) throw new MirrorError('MFS_ERRNO', `put-dir ${JSON.stringify(action.path)}: something else is there; remove it first`, { errno: 'EEXIST' });
  }
  lchownSync(abs, action.uid, action.gid);
  chmodSync(abs, action.mode); // abs is a directory (checked above), not a symlink
  if (!action.flush) return;
  await sync.dir(abs); // its own mode and owner
  if (action.path !== '') await sync.dir(fsDirname(abs));
}

/**
 * syncfs(2) of the data directory's file system, through coreutils `sync -f`
 * (Node has no binding for syncfs): one flush for a whole resync instead of
 * two per file. Bounded; a failure is an error the resync reports.
 */
async function flushFileSystem({ tree, sync }: ApplyContext): Promise<void> {
  if (!sync.durable) return; // a store that is never flushed (the local copy)
  await new Promise<void>((resolve, reject) =>
    execFile('sync', ['-f', tree.root], { timeout: FLUSH_TIMEOUT_MS }, (err) => (err ? reject(new MirrorError('MFS_ERRNO', `flush of ${tree.root} failed: ${err.message}`, { errno: 'EIO' })) : resolve())),
  );
}

const FLUSH_TIMEOUT_MS = 10 * 60_000;

async function removeTree({ tree, fds, sync }: ApplyContext, path: string): Promise<void> {
  let abs: FsPath;
  try {
    abs = tree.resolve(path);
  } catch (err) {
    // No directory above it: nothing to remove.
    if (err instanceof MirrorError && err.code === 'MFS_ERRNO' && (err.errno === 'ENOENT' || err.errno === 'ENOTDIR')) return;
    throw err;
  }
  // Open descriptors may point into the subtree; none may survive its removal.
  fds.invalidate(path);
  if (path === '') {
    // The root itself stays, and so does the reserved `.mirrorfs` in it (the peer's mark of its tree, or its state in the old layout).
    for (const name of listNames(abs, true)) rmSync(fsPath(join(fsPathText(abs), name)), { recursive: true, force: true });
    await sync.dir(abs);
    return;
  }
  let isDir: boolean;
  try {
    isDir = lstatSync(abs).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (isDir) rmSync(abs, { recursive: true, force: true });
  else unlinkSync(abs);
  await sync.dir(fsDirname(abs));
}
