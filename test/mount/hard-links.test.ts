import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run, runNode } from '../helpers/child.js';
import { cleanupMounts, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';

/**
 * Hard links through a real mount, beyond the conformance cases of
 * test/posix (which compare single steps with ext4): a tool that depends on
 * them (git's local clone) and changes racing through the names of one file.
 */
describe('hard links through the mount', () => {
  afterAll(async () => {
    await cleanupMounts();
    await cleanupPeers();
    cleanupTmp();
  });

  it('git clone of a repository on the mount links its objects, and the clone is sound; a change through one name shows through the other at once', async () => {
    const [east, west] = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    const mount = await startMount({ peers: [east, west] });
    const m = (p: string) => join(mount.mountpoint, p);
    const git = (...args: string[]) => run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'init.defaultBranch=main', ...args]);
    await git('init', '-q', m('repo'));
    await runNode(`import { writeFileSync } from 'node:fs'; for (let i = 0; i < 20; i++) writeFileSync(ARGS[0] + '/file' + i, 'content ' + i);`, [m('repo')]);
    await git('-C', m('repo'), 'add', '.');
    await git('-C', m('repo'), 'commit', '-q', '-m', 'first');
    // Failed with "hardlink different from source" while each name had its own inode number.
    await git('clone', '-q', m('repo'), m('clone'));
    await git('-C', m('clone'), 'fsck', '--full', '--strict');
    expect((await git('-C', m('clone'), 'log', '--format=%s')).trim()).toBe('first');
    expect((await git('-C', m('clone'), 'status', '--porcelain')).trim()).toBe('');

    // The objects are the same files under two names, on the mount and on each peer.
    const objects = readdirSync(m('repo/.git/objects')).filter((d) => /^[0-9a-f]{2}$/.test(d));
    expect(objects.length).toBeGreaterThan(0);
    const sub = objects[0]!;
    const object = `.git/objects/${sub}/${readdirSync(m(`repo/.git/objects/${sub}`))[0]!}`;
    for (const root of [mount.mountpoint, east.dataDir, west.dataDir]) {
      const [a, b] = [lstatSync(join(root, 'repo', object)), lstatSync(join(root, 'clone', object))];
      expect(a.ino, root).toBe(b.ino);
      expect(a.nlink, root).toBe(2);
    }
    // git made it read-only; a chmod through the clone's name shows through the repository's,
    // which this process has just stat'ed (so the kernel holds its attributes).
    expect(lstatSync(m(`repo/${object}`)).mode & 0o7777).toBe(0o444);
    await run('chmod', ['0640', m(`clone/${object}`)]);
    expect(lstatSync(m(`repo/${object}`)).mode & 0o7777).toBe(0o640);
    await run('rm', ['-rf', m('clone')]);
    expect(lstatSync(m(`repo/${object}`)).nlink).toBe(1);
  });

  it('a descriptor and a map already open on one name read what a write through another name wrote (same size)', async () => {
    const [east, west] = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    const mount = await startMount({ peers: [east, west] });
    // One process holds the second name open and mapped while another process writes through the first.
    const out = await run('/usr/bin/python3', ['-c', `
import mmap, os, subprocess, sys
m = sys.argv[1]
with open(m + '/f', 'w') as f: f.write('AAAAAAAA')
os.link(m + '/f', m + '/g')
fd = os.open(m + '/g', os.O_RDONLY)
mm = mmap.mmap(fd, 8, prot=mmap.PROT_READ)
before = os.pread(fd, 8, 0) + mm[:8]
subprocess.run([sys.executable, '-c', "open(__import__('sys').argv[1], 'r+').write('BBBBBBBB')", m + '/f'], check=True)
print((before + os.pread(fd, 8, 0) + mm[:8]).decode())
`, mount.mountpoint]);
    expect(out.trim()).toBe('AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB');
  });

  it('changes racing through the names of one file in one directory all complete, and every name ends showing what the peers hold', async () => {
    const [east, west] = await Promise.all([spawnPeer({ name: 'east' }), spawnPeer({ name: 'west' })]);
    const mount = await startMount({ peers: [east, west] });
    const d = join(mount.mountpoint, 'd');
    await runNode(`import { mkdirSync, writeFileSync, linkSync } from 'node:fs'; mkdirSync(ARGS[0]); writeFileSync(ARGS[0] + '/f', 'x'); linkSync(ARGS[0] + '/f', ARGS[0] + '/g');`, [d]);
    const rounds = 150;
    // Three processes at once on one file's names in one directory: a chmod loop, a
    // link/unlink loop (which holds the directory's lock while the mount answers), and a
    // stat loop; a fourth drops the kernel's dentries now and then, so that refreshing
    // another name sometimes needs the directory's lock the link or unlink holds. All
    // must finish: a refresh that waits for that lock is bounded.
    const chmods = runNode(`import { chmodSync } from 'node:fs'; for (let i = 0; i < ${rounds}; i++) chmodSync(ARGS[0] + '/f', i % 2 ? 0o600 : 0o640);`, [d]);
    const links = runNode(
      `import { linkSync, unlinkSync } from 'node:fs';
       for (let i = 0; i < ${rounds}; i++) { linkSync(ARGS[0] + '/g', ARGS[0] + '/h'); unlinkSync(ARGS[0] + '/h'); }`,
      [d],
    );
    const stats = runNode(
      `import { lstatSync } from 'node:fs';
       for (let i = 0; i < ${rounds * 2}; i++) for (const n of ['f', 'g', 'h']) { try { lstatSync(ARGS[0] + '/' + n); } catch (e) { if (e.code !== 'ENOENT') throw e; } }`,
      [d],
    );
    let racing = true;
    const dropper = (async () => {
      while (racing) await run('sh', ['-c', 'echo 2 > /proc/sys/vm/drop_caches']);
    })();
    try {
      await Promise.all([chmods, links, stats]);
    } finally {
      racing = false;
      await dropper;
    }
    const seen = JSON.parse(
      await runNode(`import { lstatSync } from 'node:fs'; console.log(JSON.stringify(['f', 'g'].map((n) => { const s = lstatSync(ARGS[0] + '/' + n); return { mode: s.mode, nlink: s.nlink }; })));`, [d]),
    ) as Array<{ mode: number; nlink: number }>;
    const onPeer = lstatSync(join(east.dataDir, 'd/f'));
    expect(onPeer.nlink).toBe(2);
    expect(onPeer.mode & 0o7777).toBe(rounds % 2 ? 0o640 : 0o600); // the last chmod: i = rounds - 1
    for (const s of seen) expect(s).toEqual({ mode: onPeer.mode, nlink: 2 });
    expect(lstatSync(join(west.dataDir, 'd/g')).mode).toBe(onPeer.mode);
  });
});
