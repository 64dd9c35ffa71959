import { fsPathText, type FsPath } from '../protocol/byte-names.js';
import { closeSync, constants, fdatasync, fsync, openSync } from 'node:fs';
import { promisify } from 'node:util';

const fsyncAsync = promisify(fsync);
const fdatasyncAsync = promisify(fdatasync);

/**
 * Flushing to stable storage. These are the only waits on the disk in the
 * write path, so they run on libuv's thread pool (the event loop keeps serving
 * other streams meanwhile); everything else in apply.ts is a short syscall.
 */

/** Flush a file's data and the metadata needed to read it back (size). */
export function syncData(fd: number): Promise<void> {
  return fdatasyncAsync(fd);
}

/** Flush a file's data and all its metadata (mode, owner, times, xattrs). */
export function syncAll(fd: number): Promise<void> {
  return fsyncAsync(fd);
}

/**
 * Flush a directory, making entries created, removed or renamed in it durable.
 * Concurrent requests for one directory share a flush that starts after their
 * change (group commit): a request arriving while a flush runs waits for the
 * next one, because the running flush may have started before its change.
 */
const dirFlushes = new Map<string, { running: Promise<void>; next: Promise<void> | null }>();

export function syncDir(dir: FsPath): Promise<void> {
  const key = fsPathText(dir); // a Buffer path's wire form: one key per directory
  const entry = dirFlushes.get(key);
  if (!entry) {
    const running = flushDir(dir).finally(() => advance(key));
    dirFlushes.set(key, { running, next: null });
    return running;
  }
  if (!entry.next) {
    entry.next = entry.running.catch(() => undefined).then(() => flushDir(dir));
  }
  return entry.next;
}

function advance(dir: string): void {
  const entry = dirFlushes.get(dir);
  if (!entry) return;
  if (entry.next) {
    const running = entry.next.finally(() => advance(dir));
    dirFlushes.set(dir, { running, next: null });
  } else {
    dirFlushes.delete(dir);
  }
}

async function flushDir(dir: FsPath): Promise<void> {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

/** How a store makes one change durable: before answering (a durable change on a peer), or not (an applied change, whose peer flushes in the background; the mount's local copy). */
export interface Syncer {
  data(fd: number): Promise<void>;
  all(fd: number): Promise<void>;
  dir(dir: FsPath): Promise<void>;
  /** True when this store flushes at all (a resync's final flush of the whole file system too). */
  readonly durable: boolean;
}

/** Flushes made for single changes (durable changes, fsync of an entry), counted when done: the status shows them, so a test can see that an applied change made none and that an fsync waited for one. */
export const changeFlushes = { data: 0, all: 0, dir: 0 };

/** Flushing each change before it is answered, through fds opened without O_DSYNC (a durable change on a peer). */
export const flushingSync: Syncer = {
  // Counted once done: a counter that moved means the flush returned.
  data: (fd) => syncData(fd).then(() => void changeFlushes.data++),
  all: (fd) => syncAll(fd).then(() => void changeFlushes.all++),
  dir: (dir) => syncDir(dir).then(() => void changeFlushes.dir++),
  durable: true,
};

const done = Promise.resolve();
export const noSync: Syncer = { data: () => done, all: () => done, dir: () => done, durable: false };
