/**
 * mount(8) conventions: `mount -t fuse.mirrorfs east,west /data -o local_copy=/x,ack=quorum`
 * and the same as an /etc/fstab line. mount(8) runs /sbin/mount.fuse.mirrorfs with
 * `SPEC MOUNTPOINT [-o OPTIONS] [-n] [-s] [-f] [-v]`; this maps each -o option to the
 * `mirrorfs mount` flag of the same name (underscores or dashes), and drops the generic
 * options mount(8) and fstab use for themselves.
 */

/** mirrorfs mount flags that take a value, as -o names (key=value). */
const VALUE_OPTIONS = [
  'local-copy', 'config', 'token-file', 'state-dir', 'peer-timeout', 'ack', 'ack-mode', 'fsync-timeout',
  'tls-identity', 'trust', 'trust-ca', 'log-level', 'control-listen', 'resync-from',
] as const;
/** mirrorfs mount flags without a value. */
const FLAG_OPTIONS = ['insecure-cleartext', 'takeover'] as const;

/**
 * Options that belong to mount(8), fstab or the kernel, not to mirrorfs: accepted and
 * ignored (rw is what a mirrorfs mount always is).
 */
const GENERIC = new Set(['rw', 'defaults', 'auto', 'noauto', 'user', 'nouser', 'users', '_netdev', 'nofail', 'dev', 'nodev', 'suid', 'nosuid', 'exec', 'noexec', 'atime', 'noatime', 'relatime', 'strictatime', 'nodiratime', 'async', 'owner', 'group']);

export interface HelperInvocation {
  spec: string;
  mountpoint: string;
  /** The `mirrorfs mount` arguments (after `mount MOUNTPOINT`). */
  args: string[];
  /** mount -f: pretend (check the options, mount nothing). */
  fake: boolean;
}

/** Parse a mount helper's argv (without node and script); throws a clear error on anything unknown. */
export function parseHelperArgs(argv: string[]): HelperInvocation {
  const positional: string[] = [];
  const options: string[] = [];
  let fake = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-o') {
      const value = argv[++i];
      if (value === undefined) throw new Error('-o needs a list of options');
      options.push(...value.split(',').filter(Boolean));
    } else if (a.startsWith('-o') && a.length > 2) options.push(...a.slice(2).split(',').filter(Boolean));
    else if (a === '-f') fake = true;
    else if (a === '-n' || a === '-s' || a === '-v') continue; // no mtab, sloppy, verbose: nothing to do for FUSE
    else if (a.startsWith('-')) throw new Error(`unknown mount helper flag ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 2) throw new Error(`expected SPEC MOUNTPOINT (for example: mount -t fuse.mirrorfs east,west /data), got ${JSON.stringify(positional)}`);
  const [spec, mountpoint] = positional as [string, string];
  const args = ['--peers', spec];
  for (const option of options) {
    const eq = option.indexOf('=');
    const rawName = eq === -1 ? option : option.slice(0, eq);
    const name = rawName.replace(/_/g, '-');
    if (GENERIC.has(rawName) || rawName.startsWith('x-') || rawName === 'comment') continue;
    if (rawName === 'ro') throw new Error('a mirrorfs mount cannot be read-only (ro): drop the option');
    if ((VALUE_OPTIONS as readonly string[]).includes(name)) {
      if (eq === -1 || eq === option.length - 1) throw new Error(`option ${rawName} needs a value (${rawName}=...)`);
      args.push(`--${name}`, option.slice(eq + 1));
    } else if ((FLAG_OPTIONS as readonly string[]).includes(name)) {
      if (eq !== -1) throw new Error(`option ${rawName} takes no value`);
      args.push(`--${name}`);
    } else {
      throw new Error(`unknown option ${rawName}; mirrorfs takes ${[...VALUE_OPTIONS, ...FLAG_OPTIONS].map((o) => o.replace(/-/g, '_')).join(', ')} (see mirrorfs mount --help)`);
    }
  }
  return { spec, mountpoint, args, fake };
}
