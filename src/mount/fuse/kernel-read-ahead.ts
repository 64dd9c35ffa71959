import { readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from '../../log.js';

/**
 * The kernel's read-ahead for this mount, in KiB. FUSE starts every mount at 128 KiB, so a
 * sequential reader's pages come as 128 KiB reads, one at a time, each a trip into JavaScript
 * while the mount's main thread sits mostly idle. At 1 MiB the kernel sends 1 MiB reads, several
 * at once, which the read-ahead blocks (cache/read-ahead.ts) serve. Three cold 512 MiB reads
 * over TLS, three runs each (docs/PERFORMANCE.md, session 20): 205-340 MB/s and 5.8-6.3 s of
 * the mount's CPU at 128 KiB, 226-424 MB/s and 4.7-5.1 s at 1 MiB.
 */
export const KERNEL_READ_AHEAD_KB = 1024;

/**
 * Set the read-ahead of the FUSE mount with device `device` ("major:minor", as
 * /proc/self/mountinfo names it) through its backing device in sysfs; root only. Never fails
 * the mount: where sysfs is read-only or the process is not root, the kernel's default stays
 * (logged). Returns the value in force afterwards, or null when it cannot be read.
 */
export function widenKernelReadAhead(device: string, log: Logger, kb = KERNEL_READ_AHEAD_KB, sysfs = '/sys/class/bdi'): number | null {
  const file = `${sysfs}/${device}/read_ahead_kb`;
  try {
    writeFileSync(file, `${kb}\n`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    log.info({ device, code, err: (err as Error).message }, `kernel read-ahead left at its default (setting ${file} needs root in the initial user namespace and a writable /sys)`);
  }
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return null;
  }
}

/**
 * Sets the read-ahead once both are known: the mount's device number (found in
 * /proc/self/mountinfo after the mount) and that the kernel has finished FUSE's INIT with this
 * process. The INIT answer sets the read-ahead to FUSE's default, and the mount(2) call returns
 * before it is handled: a value written earlier was overwritten under load (seen in a test
 * beside two busy CPUs). The kernel sends no request before INIT is done, so the first request
 * of any kind says it is.
 */
export class KernelReadAhead {
  private device: string | null = null;
  private initialised = false;
  private done = false;

  constructor(
    private readonly log: Logger,
    private readonly widen: (device: string, log: Logger) => number | null = widenKernelReadAhead,
  ) {}

  /** The mount's device number ("major:minor"), or null when it is not known (then nothing is set). */
  deviceKnown(device: string | null): void {
    this.device = device;
    if (device === null) this.log.info('kernel read-ahead left at its default: this mount\'s device was not found in /proc/self/mountinfo');
    this.apply();
  }

  /** A FUSE request arrived: INIT is done. Cheap after the first. */
  requestSeen(): void {
    if (this.initialised) return;
    this.initialised = true;
    this.apply();
  }

  private apply(): void {
    if (this.done || !this.initialised || this.device === null) return;
    this.done = true;
    const kb = this.widen(this.device, this.log);
    this.log.info({ device: this.device, readAheadKb: kb }, 'kernel read-ahead for this mount');
  }
}
