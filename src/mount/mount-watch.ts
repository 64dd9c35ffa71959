import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import type { Logger } from '../log.js';

/**
 * Notices when this mount is gone without `mirrorfs unmount` (umount(8) calls
 * no helper for FUSE): the kernel's FUSE connection of this mount has ended.
 * Judged by the mount's device number, not its path (a mount point reached
 * through a symlink is listed under its real path). With the fusectl file
 * system (/sys/fs/fuse/connections, mounted here if it is not) a lazy unmount
 * (umount -l) keeps the mount alive until its last open file is closed, so
 * writers holding files open finish. A failure to read the tables is logged,
 * never taken for an unmount.
 */
export class MountWatch {
  private device: string | null = null;
  private misses = 0;
  private detachedLogged = false;
  private readErrorLogged = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly mountpoint: string, private readonly onGone: (reason: string) => void, private readonly log: Logger, private readonly everyMs = 1000) {}

  /** Start watching (right after the mount): records this mount's device number. */
  start(): void {
    ensureFusectl(this.log);
    this.device = this.findDevice();
    if (this.device === null) this.log.warn({ mountpoint: this.mountpoint }, 'cannot find this mount in /proc/self/mountinfo: an unmount by umount(8) will not be noticed');
    this.timer = setInterval(() => this.check(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private check(): void {
    if (this.device === null) return;
    let present: boolean;
    try {
      present = readMountInfo().some((m) => m.device === this.device);
      if (!present && existsSync(CONNECTIONS)) {
        // Detached (umount -l) but files are still open: the connection lives on until they close.
        if (existsSync(`${CONNECTIONS}/${this.device.split(':')[1]}`)) {
          if (!this.detachedLogged) this.log.warn({ mountpoint: this.mountpoint }, 'detached by a lazy unmount: serving the files still open until they are closed');
          this.detachedLogged = true;
          return;
        }
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
      return readMountInfo().find((m) => m.point === this.mountpoint && m.type === 'fuse.mirrorfs')?.device ?? null;
    } catch {
      return null;
    }
  }
}

const CONNECTIONS = '/sys/fs/fuse/connections';

interface MountInfo {
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
