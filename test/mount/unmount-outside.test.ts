import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCollect, runNode } from '../helpers/child.js';
import { cleanupMounts, isMounted, lazyUnmount, mirrorfsCli, mountArgs, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/** A mount unmounted without mirrorfs (umount, umount -l), and one reached through a symlink. */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

describe('unmounted from outside', () => {
  it('a mount point given through a symlink stays mounted (the kernel lists its real path)', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const base = tmpDir('mirrorfs-link-');
    const real = join(base, 'real');
    mkdirSync(real);
    symlinkSync(real, join(base, 'link'));
    const state = join(base, 'state');
    const mounted = await mirrorfsCli(mountArgs(join(base, 'link'), [east, west], state));
    expect(mounted.code, mounted.stderr).toBe(0);
    try {
      // Writes for three seconds: the watch looks every second and acts after two misses.
      await runNode(`
        import { writeFileSync } from 'node:fs';
        const end = Date.now() + 3000;
        for (let i = 0; Date.now() < end; i++) { writeFileSync(ARGS[0] + '/f' + (i % 20), String(i)); await new Promise((r) => setTimeout(r, 50)); }
      `, [join(base, 'link')]);
      expect(isMounted(real)).toBe(true);
      expect(readFileSync(join(state, 'mount.log'), 'utf8')).not.toMatch(/unmounted by umount/);
      // mirrorfs status and unmount find it through the symlink too.
      expect((await mirrorfsCli(['status', join(base, 'link')])).code).toBe(0);
    } finally {
      await mirrorfsCli(['unmount', join(base, 'link')]);
      if (isMounted(real)) lazyUnmount(real);
    }
    expect(isMounted(real)).toBe(false);
  });

  it('umount -l with a file still open: the writer finishes, and the mount stops when the file is closed', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const mount = await startMount({ peers: [east, west] });
    // A writer that opens a file, says so, waits for a line on stdin, then writes, fsyncs and closes.
    const writer = spawn(process.execPath, ['--input-type=module', '-e', `
      import { openSync, writeSync, fsyncSync, closeSync } from 'node:fs';
      const fd = openSync(process.argv[1] + '/held', 'w');
      console.log('open');
      process.stdin.once('data', () => {
        writeSync(fd, 'written after the lazy unmount');
        fsyncSync(fd);
        closeSync(fd);
        console.log('closed');
        process.exit(0);
      });
    `, mount.mountpoint], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    writer.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => writer.once('exit', r));
    try {
      await waitFor(() => out.includes('open'), 'the writer holding the file open');
      const r = await runCollect('umount', ['-l', mount.mountpoint]);
      expect(r.code, r.stderr).toBe(0);
      await waitFor(() => /detached by a lazy unmount/.test(mount.stderr()), 'the mount noticing it was detached');
      expect(mount.proc.exitCode).toBeNull(); // still serving the open file
      writer.stdin!.write('go\n');
      expect(await exited).toBe(0);
      expect(out).toContain('closed');
      await waitFor(() => mount.proc.exitCode !== null, 'the mount process stopping once the file was closed');
      expect(mount.stderr()).toMatch(/"reason":"lazily unmounted, and the last open file closed"/);
      expect(readFileSync(join(east.dataDir, 'held'), 'utf8')).toBe('written after the lazy unmount');
      expect(readFileSync(join(west.dataDir, 'held'), 'utf8')).toBe('written after the lazy unmount');
    } finally {
      writer.kill('SIGKILL');
    }
  });
});
