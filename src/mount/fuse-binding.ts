import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

/** The parts of fuse-native's API the mount uses. */
export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}
export interface FuseConstructor {
  new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>): FuseInstance;
  unmount(mnt: string, cb: (err: Error | null) => void): void;
}

/**
 * Load fuse-native with a message that says what to do when FUSE is missing
 * (FIELD-NOTES: the prebuilt addon links libfuse.so.2, which a fresh Debian lacks).
 */
export function loadFuse(): FuseConstructor {
  if (!existsSync('/dev/fuse')) {
    throw new Error('FUSE is not available: /dev/fuse does not exist (load the module with `modprobe fuse`, or run in a machine or container with FUSE)');
  }
  try {
    return createRequire(import.meta.url)('fuse-native') as FuseConstructor;
  } catch (err) {
    const msg = (err as Error).message;
    if (msg.includes('libfuse.so.2')) {
      throw new Error('the FUSE library libfuse.so.2 is missing: install it with `apt-get install -y libfuse2 fuse` (or run scripts/setup.sh)');
    }
    throw new Error(`cannot load fuse-native: ${msg}`);
  }
}
