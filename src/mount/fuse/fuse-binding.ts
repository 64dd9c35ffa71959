import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { createRequire } from 'node:module';
import { Refusal } from '../../refusal.js';

const ENOENT = constants.errno.ENOENT;

/** The parts of fuse-native's API the mount uses. */
export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
  /**
   * The locals of the thread whose request is being handled, set by our patched
   * fuse-native (scripts/patch-fuse-native.mjs) just before it calls an operation:
   * the caller's uid, gid, pid and umask as four uint32 at offset 0.
   */
  caller?: Buffer;
  /** Our patch: drop what the kernel caches for a path (attributes, pages); cb(0 or -errno). */
  invalidate?(path: string, cb: (result: number) => void): void;
}

/** The process that made a FUSE request, as the kernel gave it (fsuid and fsgid). */
export interface Caller {
  uid: number;
  gid: number;
  pid: number;
  /** Its umask: set for a create, mkdir or mknod (the kernel leaves applying it to us with POSIX ACLs on). */
  umask: number;
}

/**
 * The caller of the request whose operation is running now: valid only
 * synchronously at the start of an operation (fuse-native calls operations
 * one at a time on the main thread; the next request overwrites it).
 */
export function callerOf(fuse: FuseInstance): Caller {
  const locals = fuse.caller;
  if (!locals || locals.length < 16) {
    throw new Refusal('FUSE_UNPATCHED', 'fuse-native does not report the caller of a request: run `node scripts/patch-fuse-native.mjs` (npm ci does) to patch and rebuild it');
  }
  return { uid: locals.readUInt32LE(0), gid: locals.readUInt32LE(4), pid: locals.readUInt32LE(8), umask: locals.readUInt32LE(12) & 0o777 };
}
/**
 * Make the kernel drop its attributes and cached pages of a mount path (latin1,
 * as the binding passes paths); resolves with 0 or a negative errno (-ENOENT: the
 * kernel holds nothing for it). Not mounted (yet): -ENOENT.
 */
export function invalidatePath(fuse: FuseInstance | null, fusePath: string): Promise<number> {
  if (!fuse) return Promise.resolve(-ENOENT);
  if (!fuse.invalidate) {
    return Promise.reject(new Refusal('FUSE_UNPATCHED', 'fuse-native cannot invalidate a path: run `node scripts/patch-fuse-native.mjs` (npm ci does) to patch and rebuild it'));
  }
  return new Promise((resolve) => fuse.invalidate!(fusePath, resolve));
}

export interface FuseConstructor {
  new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>): FuseInstance;
  unmount(mnt: string, cb: (err: Error | null) => void): void;
}

/**
 * Load fuse-native with a message that says what to do when FUSE is missing
 * (our build of the addon links libfuse3.so.3: docs/decisions/0003).
 */
export function loadFuse(): FuseConstructor {
  if (!existsSync('/dev/fuse')) {
    throw new Refusal('FUSE_UNAVAILABLE', 'FUSE is not available: /dev/fuse does not exist (load the module with `modprobe fuse`, or run in a machine or container with FUSE)');
  }
  try {
    return createRequire(import.meta.url)('fuse-native') as FuseConstructor;
  } catch (err) {
    const msg = (err as Error).message;
    // dlopen's failure has no code of its own (ERR_DLOPEN_FAILED for any cause): its text names the missing library.
    if (msg.includes('libfuse3.so')) {
      throw new Refusal('FUSE_LIBRARY_MISSING', 'the FUSE library libfuse3.so.3 is missing: install it with `apt-get install -y libfuse3-dev fuse3` and run `node scripts/patch-fuse-native.mjs` (or run scripts/setup.sh)');
    }
    throw new Refusal('FUSE_LOAD_FAILED', `cannot load fuse-native: ${msg}`);
  }
}
