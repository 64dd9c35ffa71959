/**
 * mount(8) conventions: `mount -t fuse.mirrorfs east,west /data -o local_copy=/x,ack=quorum`
 * and the same as an /etc/fstab line. mount(8) runs /sbin/mount.fuse.mirrorfs with
 * `SPEC MOUNTPOINT [-o OPTIONS] [-n] [-s] [-f] [-v]`; this maps each -o option to the
 * `mirrorfs mount` flag of the same name (underscores or dashes), and drops the generic
 * options mount(8) and fstab use for themselves.
 */

/** mirrorfs mount flags that take a value, as -o names (key=value). */
const VALUE_OPTIONS = [
  'local-copy', 'config', 'token-file', 'state-dir', 'peer-timeout', 'ack', 'ack-mode', 'fsync-timeout', 'max-lag',
  'tls-identity', 'trust', 'trust-ca', 'log-level', 'control-listen', 'resync-from',
] as const;
/** mirrorfs mount flags without a value. */
const FLAG_OPTIONS = ['insecure-cleartext', 'takeover', 'nodiratime'] as const;

/**
 * Options that belong to mount(8), fstab or the kernel and are true of every mirrorfs
 * mount (FUSE mounts are nosuid and nodev), or do not apply to it: accepted and ignored.
 */
const GENERIC = new Set(['rw', 'defaults', 'auto', 'noauto', 'nouser', '_netdev', 'nofail', 'nodev', 'nosuid', 'exec', 'diratime', 'lazytime', 'nolazytime', 'silent', 'loud', 'iversion', 'noiversion', 'symfollow']);

/**
 * The commit level, as mount(8) says it: sync (every change durable on the peers before it
 * returns: --sync), dirsync (changes to names: --dirsync), async (the default: applied, and
 * durable on fsync). The last one given wins, as with mount; async undoes both.
 */
const SYNC_OPTIONS: Record<string, string | null> = { sync: '--sync', dirsync: '--dirsync', async: null };

/** The atime options of mount(8), as `mirrorfs mount --atime` (the last one given wins, as with mount). */
const ATIME_OPTIONS: Record<string, string> = { atime: 'relatime', relatime: 'relatime', noatime: 'noatime' };

/** Options mirrorfs cannot honour: refused, each with why, rather than ignored. */
const REFUSED: Record<string, string> = {
  ro: 'a mirrorfs mount cannot be read-only (ro): drop the option',
  noexec: 'noexec is not supported by the mirrorfs mount helper yet: drop it (or restrict execution another way)',
  suid: 'FUSE mounts are always nosuid: drop suid',
  dev: 'FUSE mounts are always nodev: drop dev',
  nosymfollow: 'nosymfollow is not supported by the mirrorfs mount helper: drop it',
  user: 'mirrorfs mounts need root: drop user (mount as root, or from a root service unit)',
  users: 'mirrorfs mounts need root: drop users',
  owner: 'mirrorfs mounts need root: drop owner',
  group: 'mirrorfs mounts need root: drop group',
  remount: 'a mirrorfs mount cannot be remounted with new options: unmount it and mount it again',
  strictatime: 'strictatime cannot be honoured: each copy stamps atime under its own mount options (relatime by default); use relatime or noatime',
  bind: 'a mirrorfs mount cannot be bind-mounted through its helper: bind-mount the mounted directory instead',
};

export interface HelperInvocation {
  spec: string;
  mountpoint: string;
  /** The `mirrorfs mount` arguments (after `mount MOUNTPOINT`). */
  args: string[];
  /** mount -f: pretend (check the options, mount nothing). */
  fake: boolean;
  /** Options ignored because mount -s (sloppy) was given. */
  ignored: string[];
}

/** Parse a mount helper's argv (without node and script); throws a clear error on anything unknown. */
/**
 * The -o lists, split at commas outside double quotes (libmount quotes a value
 * that holds a comma: local_copy="/a,b").
 */
function splitOptions(lists: string[]): string[] {
  const out: string[] = [];
  for (const list of lists) {
    let current = '';
    let quoted = false;
    for (const ch of list) {
      if (ch === '"') quoted = !quoted;
      if (ch === ',' && !quoted) {
        if (current) out.push(current);
        current = '';
      } else current += ch;
    }
    if (quoted) throw new Error(`unbalanced quote in -o ${list}`);
    if (current) out.push(current);
  }
  return out;
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

export function parseHelperArgs(argv: string[]): HelperInvocation {
  const positional: string[] = [];
  const options: string[] = [];
  let fake = false;
  let sloppy = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-o') {
      const value = argv[++i];
      if (value === undefined) throw new Error('-o needs a list of options');
      options.push(value);
    } else if (a.startsWith('-o') && a.length > 2) options.push(a.slice(2));
    else if (a === '-f') fake = true;
    else if (a === '-s') sloppy = true;
    else if (a === '-n' || a === '-v') continue; // no mtab, verbose: nothing to do for FUSE
    else if (a.startsWith('-')) throw new Error(`unknown mount helper flag ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 2) throw new Error(`expected SPEC MOUNTPOINT (for example: mount -t fuse.mirrorfs east,west /data), got ${JSON.stringify(positional)}`);
  const [spec, mountpoint] = positional as [string, string];
  const args = ['--peers', spec];
  const ignored: string[] = [];
  let syncFlag: string | null = null;
  for (const option of splitOptions(options)) {
    const eq = option.indexOf('=');
    const rawName = eq === -1 ? option : option.slice(0, eq);
    const name = rawName.replace(/_/g, '-');
    if (GENERIC.has(rawName) || rawName.startsWith('x-') || rawName === 'comment' || rawName === 'context' || rawName.endsWith('context')) continue;
    if (Object.hasOwn(ATIME_OPTIONS, rawName)) {
      args.push('--atime', ATIME_OPTIONS[rawName]!);
      continue;
    }
    if (Object.hasOwn(SYNC_OPTIONS, rawName)) {
      syncFlag = SYNC_OPTIONS[rawName]!;
      continue;
    }
    if (Object.hasOwn(REFUSED, rawName)) throw new Error(REFUSED[rawName]!);
    if ((VALUE_OPTIONS as readonly string[]).includes(name)) {
      if (eq === -1 || eq === option.length - 1) throw new Error(`option ${rawName} needs a value (${rawName}=...)`);
      args.push(`--${name}`, unquote(option.slice(eq + 1)));
    } else if ((FLAG_OPTIONS as readonly string[]).includes(name)) {
      if (eq !== -1) throw new Error(`option ${rawName} takes no value`);
      args.push(`--${name}`);
    } else if (sloppy) {
      ignored.push(option);
    } else {
      throw new Error(`unknown option ${rawName}; mirrorfs takes ${[...VALUE_OPTIONS, ...FLAG_OPTIONS].map((o) => o.replace(/-/g, '_')).join(', ')} (see mirrorfs mount --help; mount -s ignores unknown options)`);
    }
  }
  if (syncFlag) args.push(syncFlag);
  return { spec, mountpoint, args, fake, ignored };
}
