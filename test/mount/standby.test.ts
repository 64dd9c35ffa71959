import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectAckedEverywhere } from '../helpers/converge.js';
import { MIRRORFS_BIN, cleanupMounts, isMounted, lazyUnmount, mountArgs, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { cleanupWriters, startWriter } from '../helpers/writer.js';

/** `mirrorfs standby`: the backup site takes over by itself once the primary's lease lapses, and starts the application. */

const standbys: Array<{ proc: ChildProcess; mountpoint: string }> = [];

afterEach(async () => {
  await cleanupWriters();
  for (const s of standbys.splice(0)) {
    if (s.proc.exitCode === null && s.proc.signalCode === null) {
      s.proc.kill('SIGTERM');
      await waitFor(() => s.proc.exitCode !== null || s.proc.signalCode !== null, 'the standby to stop', 30_000).catch(() => s.proc.kill('SIGKILL'));
    }
    if (isMounted(s.mountpoint)) lazyUnmount(s.mountpoint);
  }
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

describe('mirrorfs standby', () => {
  it('waits while the primary renews its lease; after the primary dies it takes over, mounts, and runs --exec, which sees every acknowledged write', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const primary = await startMount({ peers: [east, west] });
    const w = startWriter(primary.mountpoint, 's');
    await w.waitAcked(10);

    const base = tmpDir('mirrorfs-standby-');
    const mountpoint = join(base, 'mnt');
    mkdirSync(mountpoint);
    const seen = join(base, 'app-saw.json');
    const app = join(base, 'app.cjs');
    // Written aside, then renamed: the file appears only whole (CI once read it between its creation and its write).
    writeFileSync(app, `const fs = require('node:fs'); fs.writeFileSync(${JSON.stringify(`${seen}.part`)}, JSON.stringify(fs.readdirSync(process.env.MIRRORFS_MOUNTPOINT))); fs.renameSync(${JSON.stringify(`${seen}.part`)}, ${JSON.stringify(seen)});\n`);
    const args = mountArgs(mountpoint, [east, west], join(base, 'state')).slice(1); // without 'mount'
    const proc = spawn(process.execPath, [MIRRORFS_BIN, 'standby', ...args, '--grace', '4', '--peer-timeout', '1000', '--exec', `${process.execPath} ${app}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    standbys.push({ proc, mountpoint });
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));

    await waitFor(() => err.includes('holds the lease'), 'the standby to see the primary\'s lease', 15_000);
    await w.waitAcked(w.log().acked.length + 30); // the primary keeps writing while watched
    expect(out).not.toContain('mounted');
    expect(isMounted(mountpoint)).toBe(false);

    primary.proc.kill('SIGKILL');
    await waitFor(() => primary.proc.exitCode !== null || primary.proc.signalCode !== null, 'the primary to die');
    const log = await w.stop();
    lazyUnmount(primary.mountpoint);

    await waitFor(() => out.includes('mirrorfs: mounted'), 'the standby to take over and mount', 30_000);
    await waitFor(() => existsSync(seen), 'the application started by --exec to run', 15_000);
    const names = JSON.parse(readFileSync(seen, 'utf8')) as string[];
    for (const name of log.acked) expect(names, `${name} seen by the application`).toContain(name);
    expectAckedEverywhere(log, [mountpoint, east.dataDir, west.dataDir]);
    expect(err).toMatch(/lease has lapsed on every peer; taking over/);
  });
});
