import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, statSync, truncateSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MIRRORFS_BIN, cleanupMounts, mirrorfsCli, startMount, type MountProcess } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 23: verify shows its progress (a JSON line about once a second with
 * --json, on stderr), can be interrupted (it stops in the mount too), and
 * resumed after the last path it compared (--from) without starting over.
 */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

/** Flip one byte of a peer's file behind its back, keeping its size and modification time. */
function flipByte(file: string): void {
  const before = statSync(file);
  const fd = openSync(file, 'r+');
  writeSync(fd, 'X', 1);
  closeSync(fd);
  utimesSync(file, before.atime, before.mtime);
}

async function twoPeers(): Promise<{ east: PeerProcess; west: PeerProcess; m: MountProcess }> {
  const east = await spawnPeer({ name: 'east' });
  const west = await spawnPeer({ name: 'west' });
  return { east, west, m: await startMount({ peers: [east, west] }) };
}

function progressLines(stderr: string): Array<{ entries: number; at: string | null; phase: string }> {
  return stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { progress: { entries: number; at: string | null; phase: string } }).progress);
}

describe('mirrorfs verify, progress and resume', () => {
  it('tells its progress with --json, and --from compares only what comes after a path', async () => {
    const { east, west, m } = await twoPeers();
    for (const d of ['a', 'm', 'z']) {
      mkdirSync(join(m.mountpoint, d));
      for (let i = 0; i < 20; i++) writeFileSync(join(m.mountpoint, d, `f${i}`), `${d} ${i} `.repeat(50));
    }
    flipByte(join(east.dataDir, 'a/f1'));
    writeFileSync(join(west.dataDir, 'z/f2'), 'shorter');

    const whole = await mirrorfsCli(['verify', m.mountpoint, '--json']);
    expect(whole.code, whole.stderr).toBe(1);
    const report = JSON.parse(whole.stdout);
    expect(report.differences.map((d: { path: string }) => d.path)).toEqual(['a/f1', 'z/f2']);
    const lines = progressLines(whole.stderr);
    expect(lines.length).toBeGreaterThanOrEqual(1); // the first at once, then about one a second
    expect(lines[0]!.entries).toBeGreaterThan(0);
    expect(lines[0]!.at).not.toBeNull();

    const resumed = await mirrorfsCli(['verify', m.mountpoint, '--from', 'm/f5', '--json']);
    expect(resumed.code, resumed.stderr).toBe(1);
    const after = JSON.parse(resumed.stdout);
    expect(after.from).toBe('m/f5');
    expect(after.differences.map((d: { path: string }) => d.path)).toEqual(['z/f2']);
    expect(after.entries).toBeLessThan(report.entries);
    // Its own progress starts after that path.
    for (const p of progressLines(resumed.stderr)) if (p.at !== null) expect(p.at > 'm/f5').toBe(true);
    const text = await mirrorfsCli(['verify', m.mountpoint, '--from', 'm']);
    expect(text.stdout).toMatch(/entries after m \(resumed\)/);
    // An absolute path inside the mount is the same place; a path with .. is refused before anything is compared.
    const absolute = await mirrorfsCli(['verify', m.mountpoint, '--from', `${m.mountpoint}/m/./f5`, '--json']);
    expect(absolute.code, absolute.stderr).toBe(1);
    expect(JSON.parse(absolute.stdout).from).toBe('m/f5');
    const refused = await mirrorfsCli(['verify', m.mountpoint, '--from', 'm/../z']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--from "m\/..\/z": ".." is not taken/);
  });

  it('interrupted, stops in the mount and says how to resume; resumed from there, it finishes', async () => {
    const { east, m } = await twoPeers();
    mkdirSync(join(m.mountpoint, 'a'));
    for (let i = 0; i < 5; i++) writeFileSync(join(m.mountpoint, 'a', `f${i}`), `early ${i}`);
    // A large sparse file, in a directory of its own after 'a' (a batch of entries is listed once its
    // files are hashed), whose hashing keeps the comparison busy well past the first progress line.
    mkdirSync(join(m.mountpoint, 'b'));
    writeFileSync(join(m.mountpoint, 'b/big'), '');
    truncateSync(join(m.mountpoint, 'b/big'), 4 * 1024 ** 3);
    writeFileSync(join(m.mountpoint, 'z'), 'late');
    flipByte(join(east.dataDir, 'z'));
    // A difference found before the interrupt but not yet checked: the resume point must not pass it.
    flipByte(join(east.dataDir, 'a/f2'));

    const cli = spawn(process.execPath, [MIRRORFS_BIN, 'verify', m.mountpoint, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    cli.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => cli.once('close', (code) => resolve(code)));
    try {
      await waitFor(() => progressLines(stderr).length > 0, 'the first progress line', 30_000);
      cli.kill('SIGINT');
      expect(await exited).toBe(130);
    } finally {
      cli.kill('SIGKILL');
    }
    const resume = /resume with: mirrorfs verify \S+ --from '([^']+)'/.exec(stderr);
    expect(resume, stderr).not.toBeNull();
    // The mount stopped comparing (it does not hash on for a requester that is gone).
    await waitFor(() => m.stderr().includes('verify stopped'), 'the mount to stop the verify', 60_000);

    const rest = await mirrorfsCli(['verify', m.mountpoint, '--from', resume![1]!, '--json'], 300_000);
    expect(rest.code, rest.stderr).toBe(1);
    const finished = JSON.parse(rest.stdout);
    expect(finished.from).toBe(resume![1]);
    expect(finished.differences.map((d: { path: string }) => d.path)).toEqual(['a/f2', 'z']);
  });
});
