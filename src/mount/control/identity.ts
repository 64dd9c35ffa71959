import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { privateDir } from '../../security/private-paths.js';
import { Refusal } from '../../refusal.js';

/** Default state directory for a mount point: /var/lib/mirrorfs/<mount point with / as _>. */
export function defaultStateDir(mountpoint: string): string {
  return join('/var/lib/mirrorfs', mountpoint.replace(/^\/+/, '').replace(/\//g, '_') || 'root');
}

/**
 * The mount's identity, kept in its state directory so that a remount of the
 * same mount point is the same writer to the peers (same owner, seqs continue).
 */
export function loadMountId(stateDir: string): string {
  privateDir(stateDir);
  const file = join(stateDir, 'mount-id');
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9_.:-]{1,128}$/.test(id)) return id;
    throw new Refusal('STATE_INVALID', `${file} does not hold a valid mount id; remove it to create a new identity`);
  }
  const host = hostname().replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 40) || 'host';
  const id = `${host}:${randomUUID()}`;
  writeFileSync(file, `${id}\n`, { mode: 0o600 });
  return id;
}
