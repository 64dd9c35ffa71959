import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { Refusal } from '../../refusal.js';

const execFileAsync = promisify(execFile);

/** Mount points currently in the kernel's table, with their file system types. */
export function mountTable(): { point: string; type: string; source: string }[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [source, point, type] = line.split(' ');
      return { source: unescapeMount(source!), point: unescapeMount(point!), type: type! };
    });
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function isMounted(point: string): boolean {
  return mountTable().some((m) => m.point === point);
}

/**
 * Check that `point` can take a new mount, with a message that says what to do
 * when it cannot: missing, not a directory, a dead FUSE mount left by a crash,
 * already mounted, or not empty.
 */
export function checkMountpoint(point: string): void {
  let st;
  try {
    st = statSync(point);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN') {
      throw new Refusal('MOUNTPOINT_DEAD', `${point} is a dead mount left by a mirrorfs process that died (Transport endpoint is not connected). Clear it with: mirrorfs unmount ${point}   (or: fusermount -u -z ${point})`);
    }
    if (code === 'ENOENT') throw new Refusal('MOUNTPOINT_MISSING', `mount point ${point} does not exist (create it: mkdir -p ${point})`);
    throw new Refusal('MOUNTPOINT_UNUSABLE', `cannot use mount point ${point}: ${code}`);
  }
  if (!st.isDirectory()) throw new Refusal('MOUNTPOINT_NOT_DIR', `mount point ${point} is not a directory`);
  const existing = mountTable().find((m) => m.point === point);
  if (existing) throw new Refusal('MOUNTPOINT_MOUNTED', `${point} is already mounted (${existing.type} from ${existing.source}); unmount it first: mirrorfs unmount ${point}`);
  if (readdirSync(point).length > 0) throw new Refusal('MOUNTPOINT_NOT_EMPTY', `mount point ${point} is not empty; mount on an empty directory (files under it would be hidden)`);
}

/** True when the mount point answers "Transport endpoint is not connected": its FUSE process is gone. */
export function isDeadMount(point: string): boolean {
  try {
    statSync(point);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOTCONN';
  }
}

/** Lazy unmount of a (possibly dead) FUSE mount. */
export async function forceUnmount(point: string): Promise<void> {
  try {
    await execFileAsync('fusermount', ['-u', '-z', point], { timeout: 10_000 });
  } catch {
    await execFileAsync('umount', ['-l', point], { timeout: 10_000 });
  }
}
