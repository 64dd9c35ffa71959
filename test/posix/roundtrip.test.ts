import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHARED_GID, USER_A, USER_B, compareDirsWithOwners, makeTraversable, outcome, runPosix, snapshotWithOwners, usePosixMount, valueOf, type StatValue, type Step } from '../helpers/posix.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * The round trip: a tree holding every file type (files, directories,
 * symlinks, FIFOs, sockets, character and block devices, hard links), odd
 * UTF-8 names and names that are not UTF-8, user.* and trusted.* xattrs, POSIX
 * ACLs (access and default), nanosecond mtimes, setuid
 * files and setgid directories, several owners, is copied from local ext4
 * into the mount with rsync -aHAX, tar --acls --xattrs and cp -a, each into its own directory;
 * then `rsync -aHAXc --numeric-ids --delete --dry-run --itemize-changes`
 * must print nothing: the same command's copy on local ext4 (the oracle)
 * against the mount's copy, the mount's copy against each peer's data
 * directory, and a copy back out of the mount (rsync -aHAX) against the oracle.
 *
 * Every copy and comparison is a child process (rsync, tar, cp); the test
 * process itself never touches the mount.
 */

const TOOLS = [
  { cmd: 'rsync', pkg: 'rsync' },
  { cmd: 'tar', pkg: 'tar' },
  { cmd: 'cp', pkg: 'coreutils' },
  { cmd: 'bash', pkg: 'bash' },
  { cmd: 'setfacl', pkg: 'acl' },
  { cmd: 'getfacl', pkg: 'acl' },
  { cmd: 'setpriv', pkg: 'util-linux' },
];
const RUN_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------- child processes

const children = new Set<ChildProcess>();

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command (its own process group), collect everything it printed ('close'), kill it at the deadline. */
function sh(cmd: string, args: string[], timeoutMs = RUN_TIMEOUT_MS): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: '/', detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' } });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new Error(`${cmd} could not start: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (timedOut) return reject(new Error(`${cmd} ${args.join(' ').slice(0, 200)} timed out after ${timeoutMs} ms; stderr: ${stderr}`));
      resolve({ code: code ?? (signal ? 128 : null), stdout, stderr });
    });
  });
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

/** Fail with the package to install when a tool is missing. */
async function requireTools(): Promise<void> {
  const missing: string[] = [];
  for (const t of TOOLS) {
    const r = await sh('sh', ['-c', `command -v ${t.cmd}`]);
    if (r.code !== 0) missing.push(`${t.cmd} (Debian package ${t.pkg})`);
  }
  if (missing.length) throw new Error(`the round trip needs ${missing.join(', ')}: not installed. Install with apt-get install ${missing.map((m) => /package (\S+)\)/.exec(m)![1]).join(' ')} (the setup installs rsync, acl and tar)`);
}

// ---------------------------------------------------------------- the source tree

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** Odd but valid UTF-8 names (each a file with its own content). */
const ODD_NAMES = [
  'with space',
  ' leading space',
  'trailing space ',
  'new\nline',
  'tab\there',
  '-leading-dash',
  '--double-dash',
  'emoji 😀🎉',
  'quote\'s "double"',
  'back\\slash',
  '*glob?[x]',
  'ünïcödé Ωμέγα 漢字',
  'L'.repeat(255),
  'é'.repeat(127) + 'x', // 255 bytes
  '€'.repeat(85), // 255 bytes
];

const [ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20];

/** A POSIX ACL as the kernel's system.posix_acl_* xattr holds it (version 2, then tag, perm, id per entry), base64. */
function aclXattr(entries: Array<[tag: number, perm: number, id?: number]>): string {
  const b = Buffer.alloc(4 + entries.length * 8);
  b.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    b.writeUInt16LE(tag, 4 + i * 8);
    b.writeUInt16LE(perm, 6 + i * 8);
    b.writeUInt32LE(id ?? 0xffffffff, 8 + i * 8);
  });
  return b.toString('base64');
}

/** Every step that builds the source tree, as root, and the paths it sets times on (deepest first). */
function sourceTree(): Step[] {
  const steps: Step[] = [];
  const file = (path: string, mode: number, data: string | number, uid = 0, gid = 0): void => {
    steps.push({ op: 'create', path, mode: 0o600 });
    if (typeof data === 'number') steps.push({ op: 'write', path, data_len: data });
    else if (data) steps.push({ op: 'write', path, data });
    steps.push({ op: 'chown', path, uid, gid }, { op: 'chmod', path, mode });
  };
  const dir = (path: string, mode: number, uid = 0, gid = 0): void => {
    steps.push({ op: 'mkdir', path, mode: 0o700 }, { op: 'chown', path, uid, gid }, { op: 'chmod', path, mode });
  };
  dir('dir', 0o755);
  dir('dir/sub', 0o750, USER_A.uid, USER_A.gid);
  dir('setgid', 0o2775, 0, SHARED_GID);
  dir('sticky', 0o1777);
  dir('private', 0o700, USER_B.uid, USER_B.gid);
  dir('odd dir 😀', 0o755);
  file('plain', 0o644, 'plain content\n');
  file('empty', 0o600, '');
  file('exec', 0o755, '#!/bin/sh\necho hi\n');
  file('setuid', 0o4755, '#!/bin/sh\n');
  file('setgid-file', 0o2755, '#!/bin/sh\n', 0, SHARED_GID);
  file('big', 0o644, 1024 * 1024 + 123);
  file('owned-a', 0o640, 'a', USER_A.uid, USER_A.gid);
  file('owned-b', 0o664, 'b', USER_B.uid, SHARED_GID);
  file('private/secret', 0o600, 'secret', USER_B.uid, USER_B.gid);
  file('sticky/f', 0o666, 'anyone', USER_A.uid, USER_A.gid);
  // inherit the setgid directory's group (made by root inside it), and a subdirectory its setgid bit
  steps.push({ op: 'create', path: 'setgid/inherits', mode: 0o644 }, { op: 'mkdir', path: 'setgid/subdir', mode: 0o755 });
  ODD_NAMES.forEach((n, i) => file(n, 0o644, `odd name ${i}\n`));
  file(`odd dir 😀/${ODD_NAMES[3]}`, 0o644, 'newline name in an odd directory');
  // symlinks
  steps.push(
    { op: 'symlink', target: 'plain', path: 'link-rel' },
    { op: 'symlink', target: '/etc/hostname', path: 'link-abs' },
    { op: 'symlink', target: 'nowhere/at all', path: 'link-dangling' },
    { op: 'symlink', target: '../plain', path: 'dir/link-up' },
    { op: 'symlink', target: ODD_NAMES[7]!, path: 'link-to-emoji' },
    { op: 'symlink', target: 'dir', path: 'link-dir' },
    { op: 'symlink', target: 'owned-a', path: 'link-owned' },
    { op: 'lchown', path: 'link-owned', uid: USER_A.uid, gid: USER_A.gid },
  );
  // special files
  steps.push(
    { op: 'mkfifo', path: 'fifo', mode: 0o644 },
    { op: 'mkfifo', path: 'dir/fifo-owned', mode: 0o600 },
    { op: 'chown', path: 'dir/fifo-owned', uid: USER_A.uid, gid: USER_A.gid },
    { op: 'bindsocket', path: 'sock' },
    { op: 'mknod', path: 'null', mode: S_IFCHR | 0o666, major: 1, minor: 3 },
    { op: 'mknod', path: 'loop0', mode: S_IFBLK | 0o660, major: 7, minor: 0 },
    { op: 'chown', path: 'loop0', uid: USER_A.uid, gid: SHARED_GID },
    { op: 'mknod', path: 'dir/big-dev', mode: S_IFCHR | 0o600, major: 259, minor: 65539 },
  );
  // hard links: a pair across directories, a group of three
  steps.push({ op: 'link', src: 'plain', dst: 'dir/plain-hard' });
  file('h1', 0o640, 'three names', USER_A.uid, SHARED_GID);
  steps.push({ op: 'link', src: 'h1', dst: 'h2' }, { op: 'link', src: 'h1', dst: 'dir/sub/h3' });
  // xattrs: user.* and trusted.*, text and binary, on files and directories
  steps.push(
    { op: 'setxattr', path: 'plain', name: 'user.comment', value: b64('a comment') },
    { op: 'setxattr', path: 'plain', name: 'user.binary', value: b64(Buffer.from([0, 1, 2, 255, 0, 10])) },
    { op: 'setxattr', path: 'big', name: 'user.large', value_len: 2000 },
    { op: 'setxattr', path: 'dir', name: 'user.dir-note', value: b64('on a directory') },
    { op: 'setxattr', path: 'owned-a', name: 'trusted.secret', value: b64('root only') },
    { op: 'setxattr', path: 'setgid', name: 'trusted.dir', value: b64('trusted on a dir') },
    { op: 'setxattr', path: ODD_NAMES[7]!, name: 'user.emoji', value: b64('😀') },
    { op: 'setxattr', path: 'h1', name: 'user.shared', value: b64('one inode, three names') },
  );
  // POSIX ACLs: a named user and group on a file, and a default ACL a directory's new entries inherit
  steps.push(
    { op: 'setxattr', path: 'owned-b', name: 'system.posix_acl_access', value: aclXattr([[ACL_USER_OBJ, 6], [ACL_USER, 4, USER_A.uid], [ACL_GROUP_OBJ, 6], [ACL_GROUP, 4, USER_B.gid], [ACL_MASK, 6], [ACL_OTHER, 4]]) },
    { op: 'setxattr', path: 'dir/sub', name: 'system.posix_acl_default', value: aclXattr([[ACL_USER_OBJ, 7], [ACL_USER, 5, USER_B.uid], [ACL_GROUP_OBJ, 5], [ACL_MASK, 5], [ACL_OTHER, 0]]) },
    { op: 'create', path: 'dir/sub/inherits-acl', mode: 0o666 },
  );
  // names from a Latin-1 system: bytes that are not UTF-8, as names, a symlink target, a hard link and an xattr name
  const latin1 = (s: string) => Buffer.from(s, 'latin1').toString('base64');
  steps.push(
    { op: 'mkdir', path_b64: latin1('r\xe9pertoire'), mode: 0o755 },
    { op: 'create', path_b64: latin1('r\xe9pertoire/caf\xe9'), mode: 0o644 },
    { op: 'write', path_b64: latin1('r\xe9pertoire/caf\xe9'), data: 'a Latin-1 name\n' },
    { op: 'create', path_b64: latin1('\xff\xfe'), mode: 0o600 },
    { op: 'symlink', target_b64: latin1('r\xe9pertoire/caf\xe9'), path_b64: latin1('lien-\xe9') },
    { op: 'link', src_b64: latin1('r\xe9pertoire/caf\xe9'), dst_b64: latin1('dir/caf\xe9-hard') },
    { op: 'setxattr', path_b64: latin1('\xff\xfe'), name: 'user.\udce9t\udce9', value: b64('an xattr name that is not UTF-8') },
    ...['r\xe9pertoire/caf\xe9', '\xff\xfe', 'lien-\xe9', 'r\xe9pertoire'].map((p, i): Step => {
      const ns = `${1_500_000_000 + i * 1000}${String(987_654_321 - i).padStart(9, '0')}`;
      return { op: 'utime', path_b64: latin1(p), atime_ns: ns, mtime_ns: ns, nofollow: true };
    }),
  );
  // nanosecond mtimes on everything, deepest first (directories last: their entries are done)
  const timed = [
    'plain', 'empty', 'exec', 'setuid', 'setgid-file', 'big', 'owned-a', 'owned-b', 'private/secret', 'sticky/f', 'setgid/inherits', 'dir/sub/inherits-acl',
    ...ODD_NAMES, `odd dir 😀/${ODD_NAMES[3]}`,
    'link-rel', 'link-abs', 'link-dangling', 'dir/link-up', 'link-to-emoji', 'link-dir', 'link-owned',
    'fifo', 'dir/fifo-owned', 'sock', 'null', 'loop0', 'dir/big-dev', 'h1',
    'setgid/subdir', 'dir/sub', 'private', 'sticky', 'setgid', 'odd dir 😀', 'dir', '.',
  ];
  timed.forEach((path, i) => {
    const ns = `${1_600_000_000 + i * 1000}${String(123_456_789 + i).padStart(9, '0')}`;
    steps.push({ op: 'utime', path, atime_ns: ns, mtime_ns: ns, nofollow: true });
  });
  return steps;
}

// ---------------------------------------------------------------- the test

interface Copier {
  name: string;
  /** The command line that copies SRC's contents into the existing directory DST. */
  args: (src: string, dst: string) => [string, string[]];
}

const COPIERS: Copier[] = [
  { name: 'rsync', args: (src, dst) => ['rsync', ['-aHAX', '--numeric-ids', `${src}/`, `${dst}/`]] },
  {
    name: 'tar',
    args: (src, dst) => [
      'bash',
      ['-c', 'set -o pipefail; cd "$1" && tar --acls --xattrs --xattrs-include="*" --numeric-owner -cpf - . | (cd "$2" && tar --acls --xattrs --xattrs-include="*" --numeric-owner -xpf -)', 'tar-copy', src, dst],
    ],
  },
  { name: 'cp', args: (src, dst) => ['cp', ['-a', `${src}/.`, `${dst}/`]] },
];

/** Every difference `rsync -aHAXc --dry-run --itemize-changes` finds between two trees (none: equal). */
async function differences(a: string, b: string, label: string, opts: { times?: boolean } = {}): Promise<string[]> {
  // (The copies keep the mirror's inode number as an xattr the mount hides: not compared.)
  // Without times (-a less -t): two trees made by the same commands at different moments.
  const archive = opts.times === false ? '-rlpgoDHAXc' : '-aHAXc';
  const r = await sh('rsync', [archive, '--numeric-ids', '--delete', '--dry-run', '--itemize-changes', '--filter=-x trusted.mirrorfs.ino', `${a}/`, `${b}/`]);
  if (r.code !== 0) return [`${label}: rsync --dry-run exited ${r.code}: ${r.stderr.trim()}`];
  return r.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => `${label}: ${l}`);
}

/** Inode numbers and link counts of the hard-linked names, on the mount (three looks) and on each peer: what a hard-link difference comes from. */
async function hardLinkEvidence(mounted: string, peers: { label: string; dir: string }[]): Promise<string> {
  const names = ['plain', 'dir/plain-hard', 'h1', 'h2', 'dir/sub/h3'];
  const look = async (dir: string) =>
    (await runPosix(dir, names.map((path): Step => ({ op: 'lstat', path })))).map((r, i) => ('ok' in r ? `${names[i]} ino ${(r.value as StatValue).ino} nlink ${(r.value as StatValue).nlink}` : `${names[i]} ${outcome(r)}`)).join(', ');
  const lines = [];
  for (let i = 0; i < 3; i++) lines.push(`mount (look ${i + 1}): ${await look(mounted)}`);
  for (const p of peers) lines.push(`${p.label}: ${await look(p.dir)}`);
  return `hard-link evidence:\n    ${lines.join('\n    ')}`;
}

describe('round trip of every file type through the mount: rsync -aHAX, tar, cp -a', () => {
  const fx = usePosixMount();
  let src = '';
  let local = '';

  beforeAll(async () => {
    await requireTools();
    local = tmpDir('mirrorfs-roundtrip-');
    makeTraversable(local);
    src = join(local, 'src');
    mkdirSync(src, { mode: 0o755 });
    const steps = sourceTree();
    const r = await runPosix(src, steps);
    const failed = r.map((x, i) => [x, i] as const).filter(([x]) => outcome(x) !== 'ok');
    if (failed.length) throw new Error(`building the source tree failed: ${failed.map(([x, i]) => `${JSON.stringify(steps[i])}: ${outcome(x)}`).join('; ')}`);
    // the source holds what the round trip is about
    const tree = [...(await snapshotWithOwners(src, { mtimes: true })).values()];
    const has = {
      types: [...new Set(tree.map((e) => e.type))].sort(),
      hardLinked: tree.filter((e) => e.hardlink_group).length,
      owners: new Set(tree.map((e) => `${e.uid}:${e.gid}`)).size,
      xattrNamespaces: [...new Set(tree.flatMap((e) => Object.keys(e.xattrs ?? {}).map((k) => k.split('.')[0])))].sort(),
      nanoseconds: tree.filter((e) => e.mtime_ns && !e.mtime_ns.endsWith('000')).length,
      setgidDirs: tree.filter((e) => e.type === 'dir' && (parseInt(e.mode.slice(2), 8) & 0o2000) !== 0).length,
      notUtf8: (await runPosix(src, [{ op: 'listdir', path: '.' }, { op: 'listdir', path_b64: Buffer.from('r\xe9pertoire', 'latin1').toString('base64') }])).flatMap((x) => valueOf<unknown[]>(x)).filter((n) => typeof n !== 'string').length,
    };
    expect(has).toMatchObject({ types: ['blk', 'chr', 'dir', 'fifo', 'file', 'socket', 'symlink'], xattrNamespaces: ['system', 'trusted', 'user'] });
    expect(has.hardLinked).toBe(7);
    expect(has.notUtf8).toBe(4); // répertoire, \xff\xfe and lien-é at the root; café inside
    expect(has.owners).toBeGreaterThanOrEqual(5);
    expect(has.nanoseconds).toBeGreaterThan(30);
    expect(has.setgidDirs).toBe(2);
  });

  afterAll(() => {
    for (const c of children) killGroup(c);
  });

  for (const copier of COPIERS) {
    it(`${copier.name}: the mount's copy equals ext4's copy by the same command, each peer's equals the mount's, and a copy back out equals it too`, async () => {
      await requireTools();
      const oracle = join(local, `oracle-${copier.name}`);
      const back = join(local, `back-${copier.name}`);
      mkdirSync(oracle, { mode: 0o755 });
      mkdirSync(back, { mode: 0o755 });
      const mounted = join(fx.mount.mountpoint, copier.name);
      const [made] = await runPosix(fx.mount.mountpoint, [{ op: 'mkdir', path: copier.name, mode: 0o755 }]);
      expect(outcome(made), `mkdir ${copier.name} in the mount`).toBe('ok');

      // the same command into local ext4 and into the mount
      const [ocmd, oargs] = copier.args(src, oracle);
      const [mcmd, margs] = copier.args(src, mounted);
      const [o, m] = await Promise.all([sh(ocmd, oargs), sh(mcmd, margs)]);
      expect({ code: m.code, stderr: m.stderr.trim() }, `${copier.name} into the mount answered unlike into ext4`).toEqual({ code: o.code, stderr: o.stderr.trim().split(oracle).join(mounted) });

      const problems: string[] = [];
      // the oracle's copy is the reference (rsync's must also equal the source)
      if (copier.name === 'rsync') problems.push(...(await differences(src, oracle, 'source -> ext4 copy (rsync itself)')));
      problems.push(...(await differences(oracle, mounted, `ext4 copy -> mount copy`)));
      for (const p of fx.peers) problems.push(...(await differences(mounted, join(p.dataDir, copier.name), `mount copy -> ${p.name}'s data dir`)));
      // and back out of the mount
      const out = await sh('rsync', ['-aHAX', '--numeric-ids', `${mounted}/`, `${back}/`]);
      if (out.code !== 0) problems.push(`copy back out of the mount: rsync exited ${out.code}: ${out.stderr.trim()}`);
      problems.push(...(await differences(oracle, back, `ext4 copy -> copy back out of the mount`)));
      // the harness's own snapshot too: owners, modes, rdev, hard-link groups, xattrs, and mtimes to the nanosecond
      // (of directories too), which rsync's itemized check does not compare
      const snap = await compareDirsWithOwners(
        [
          { label: 'ext4 copy', dir: oracle },
          { label: 'mount copy', dir: mounted },
          ...fx.peers.map((p) => ({ label: `${p.name}'s copy`, dir: join(p.dataDir, copier.name) })),
          { label: 'copy back', dir: back },
        ],
        { mtimes: true, dirMtimes: true }, // every time was set by the copy (rsync's own check compares whole seconds only)
      );
      problems.push(...snap.map((d) => `snapshot: ${d}`));
      if (problems.some((l) => /hardlink_group| h[fLDS]/.test(l))) problems.push(await hardLinkEvidence(mounted, fx.peers.map((p) => ({ label: p.name, dir: join(p.dataDir, copier.name) }))));
      expect(problems, `${copier.name} round trip: ${problems.length} difference(s)`).toEqual([]);
    }, 120_000);
  }

  // The tools people use on ACLs, run as a user on a file and directory of their own: the
  // same commands on local ext4 and on the mount must print the same, and the peers hold it.
  it('setfacl and getfacl as a user: the same ACLs and answers as on ext4, on the mount and on every peer', async () => {
    await requireTools();
    const oracle = join(local, 'facl');
    mkdirSync(oracle, { mode: 0o755 });
    const [made] = await runPosix(fx.mount.mountpoint, [{ op: 'mkdir', path: 'facl', mode: 0o755 }]);
    expect(outcome(made)).toBe('ok');
    const script = [
      'set -e; cd "$1"; umask 022',
      'mkdir shared; echo data > shared/before; echo notes > notes',
      `setfacl -m u:${USER_B.uid}:r,g:${SHARED_GID}:rw notes`,
      `setfacl -d -m u:${USER_B.uid}:rwx,m::rwx shared`,
      'echo new > shared/after; mkdir shared/child',
      'chmod g-w notes', // the mask follows the group bits
      'getfacl -n -p notes shared shared/before shared/after shared/child',
      `setfacl -x u:${USER_B.uid} notes; setfacl -k shared; getfacl -n -p -c notes shared`,
      'setfacl -m u:nosuchuser:r notes || echo "refused: $?"',
      'ls -l notes | cut -c1-11',
    ].join('\n');
    const asUser = (dir: string) => sh('setpriv', [`--reuid=${USER_A.uid}`, `--regid=${USER_A.gid}`, '--clear-groups', 'bash', '-c', script, 'facl', dir]);
    for (const dir of [oracle, join(fx.mount.mountpoint, 'facl')]) {
      const [own] = await runPosix(dir, [{ op: 'chown', path: '.', uid: USER_A.uid, gid: USER_A.gid }]);
      expect(outcome(own)).toBe('ok');
    }
    const [o, m] = [await asUser(oracle), await asUser(join(fx.mount.mountpoint, 'facl'))];
    expect(o.stdout).toContain(`user:${USER_B.uid}:r--`); // the oracle did what the script says
    expect(o.stdout).toContain('refused: 2');
    expect({ code: m.code, stdout: m.stdout, stderr: m.stderr.split(join(fx.mount.mountpoint, 'facl')).join(oracle) }).toEqual({ code: o.code, stdout: o.stdout, stderr: o.stderr });
    const problems = [...(await differences(oracle, join(fx.mount.mountpoint, 'facl'), 'ext4 -> mount', { times: false }))];
    for (const p of fx.peers) problems.push(...(await differences(join(fx.mount.mountpoint, 'facl'), join(p.dataDir, 'facl'), `mount -> ${p.name}'s data dir`)));
    expect(problems).toEqual([]);
  }, 60_000);
});
