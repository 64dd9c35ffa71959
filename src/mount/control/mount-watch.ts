import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import type { Logger } from '../../log.js';

/**
 * Notices when this mount is gone without `mirrorfs unmount` (umount(8) calls
 * no helper for FUSE): the kernel's FUSE connection of this mount has ended.
 * The kernel reuses a freed device number for the next FUSE mount at once
 * (even at the same mount point), so this mount is recognised by its device
 * number together with the inode of its connection's directory in the fusectl
 * file system (/sys/fs/fuse/connections, mounted here if it is not), recorded
 * at start. Without fusectl, by device number and mount point as the kernel
 * lists it (the real path, which the caller resolved); a mount point moved
 * (mount --move, a parent renamed) then looks unmounted. With fusectl a lazy
 * unmount (umount -l) keeps the mount alive until its last open file is
 * closed, so writers holding files open finish. A failure to read the tables is logged,
 * never taken for an unmount.
 */
export class MountWatch {
  private device: string | null = null;
  private connectionInode: number | null = null;
  private misses = 0;
  private detachedLogged = false;
  private readErrorLogged = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly mountpoint: string,
    private readonly onGone: (reason: string) => void,
    private readonly log: Logger,
    private readonly everyMs = 1000,
    private readonly kernel: KernelTables = { ensureFusectl, readMountInfo, connectionInode },
  ) {}

  /** Start watching (right after the mount): records this mount's device number. */
  start(): void {
    this.kernel.ensureFusectl(this.log);
    this.device = this.findDevice();
    this.connectionInode = this.device === null ? null : this.kernel.connectionInode(this.device);
    if (this.device === null) this.log.warn({ mountpoint: this.mountpoint }, 'cannot find this mount in /proc/self/mountinfo: an unmount by umount(8) will not be noticed');
    this.timer = setInterval(() => this.check(), this.everyMs);
    this.timer.unref();
  }

  /** This mount's device number ("major:minor"), once started; null when it was not found. */
  get deviceNumber(): string | null {
    return this.device;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private check(): void {
    if (this.device === null) return;
    let present: boolean;
    try {
      // Once this mount is gone, the kernel may give its device number to the next FUSE
      // mount at once, even at the same mount point. So: the device number, and this
      // connection's fusectl directory (by inode) where there is one, else the mount point.
      const ours = this.connectionInode === null || this.kernel.connectionInode(this.device) === this.connectionInode;
      present = ours && this.kernel.readMountInfo().some((m) => m.device === this.device && (this.connectionInode !== null || m.point === this.mountpoint));
      // Detached (umount -l) but files are still open: the connection lives on until they close.
      if (!present && this.connectionInode !== null && ours) {
        if (!this.detachedLogged) this.log.warn({ mountpoint: this.mountpoint }, 'detached by a lazy unmount: serving the files still open until they are closed');
        this.detachedLogged = true;
        return;
      }
    } catch (err) {
      if (!this.readErrorLogged) this.log.warn({ err: (err as Error).message }, 'cannot read the mount tables to watch for an unmount; still mounted as far as this process knows');
      this.readErrorLogged = true;
      return;
    }
    if (present) {
      this.misses = 0;
      return;
    }
    // Seen gone twice in a row, so a torn read of the table is not an unmount.
    if (++this.misses >= 2) {
      this.stop();
      this.onGone(this.detachedLogged ? 'lazily unmounted, and the last open file closed' : 'unmounted by umount(8)');
    }
  }

  private findDevice(): string | null {
    try {
      // The newest entry at the path is the one on top (ours, unless something was stacked on it since).
      return this.kernel.readMountInfo().filter((m) => m.point === this.mountpoint && m.type === 'fuse.mirrorfs').at(-1)?.device ?? null;
    } catch {
      return null;
    }
  }
}

const CONNECTIONS = '/sys/fs/fuse/connections';

/** What the watch reads from the kernel; a unit test gives its own tables. */
export interface KernelTables {
  ensureFusectl(log: Logger): void;
  readMountInfo(): MountInfo[];
  connectionInode(device: string): number | null;
}

export interface MountInfo {
  device: string;
  point: string;
  type: string;
}

function readMountInfo(): MountInfo[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((line) => {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    return { device: fields[2]!, point: unescapeOctal(fields[4]!), type: fields[dash + 1]! };
  });
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The inode of a FUSE connection's fusectl directory (named by the device's minor number), or null if there is none. */
function connectionInode(device: string): number | null {
  try {
    return statSync(`${CONNECTIONS}/${device.split(':')[1]}`).ino;
  } catch {
    return null;
  }
}

/** Mount fusectl where the kernel offers it and nothing has yet (systemd does the same at boot). */
function ensureFusectl(log: Logger): void {
  try {
    if (!existsSync(CONNECTIONS) || readdirSync(CONNECTIONS).length > 0) return;
    if (readMountInfo().some((m) => m.type === 'fusectl')) return;
    execFileSync('mount', ['-t', 'fusectl', 'fusectl', CONNECTIONS], { stdio: 'ignore', timeout: 5000 });
  } catch (err) {
    log.debug({ err: (err as Error).message }, 'fusectl not available: a lazy unmount ends the mount at once');
  }
}
