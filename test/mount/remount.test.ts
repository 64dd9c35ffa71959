import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../helpers/child.js';
import { MIRRORFS_BIN, cleanupMounts, isMounted, lazyUnmount, mountArgs, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { compareDirs } from '../helpers/tree.js';
import { waitFor } from '../helpers/wait.js';

/** Remounting over copies that may have drifted: a crash, a peer that missed a change, a fresh local copy. */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

describe('remount', () => {
  it('a full resync cut short is taken up again by the next mount, not taken for a copy that merely differs', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const first = await startMount({ peers: [east, west] });
    for (let d = 0; d < 10; d++) {
      mkdirSync(join(first.mountpoint, `d${d}`));
      for (let i = 0; i < 100; i++) writeFileSync(join(first.mountpoint, `d${d}`, `f${i}`), `file ${d}/${i}`);
    }
    await first.stop();
    // A new, empty peer takes west's place: the next mount rebuilds it from east. It is stopped
    // once the copy has begun (east held still, the mount killed).
    const north = await spawnPeer({ name: 'north' });
    const proc = spawn(process.execPath, [MIRRORFS_BIN, ...mountArgs(first.mountpoint, [east, north], first.stateDir), '--foreground'], { stdio: ['ignore', 'ignore', 'ignore'] });
    const exited = new Promise<void>((r) => proc.once('close', () => r()));
    try {
      await waitFor(() => readdirSync(north.dataDir).some((n) => n.startsWith('d')), 'the resync to begin copying', 60_000, 5);
      east.proc.kill('SIGSTOP');
      proc.kill('SIGKILL');
      await exited;
    } finally {
      east.proc.kill('SIGCONT');
      proc.kill('SIGKILL');
      if (isMounted(first.mountpoint)) lazyUnmount(first.mountpoint);
    }
    // North says it is not exact (and it has no history of this mount, and is not empty: without
    // the mark, the next mount would find two copies that differ and refuse).
    const status = await north.client().status();
    expect(status.unclean?.reason).toMatch(/full resync .* not finished/);
    await waitFor(async () => (await north.client().status()).pull === null, 'north\'s own pull to end', 60_000);
    const again = await startMount({ peers: [east, north], mountpoint: first.mountpoint, stateDir: first.stateDir });
    expect(again.stderr()).toMatch(/full resync finished and verified/);
    expect((await north.client().status()).unclean).toBeNull();
    expect(compareDirs([{ label: 'mount', dir: again.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'north', dir: north.dataDir }])).toEqual([]);
  });

  it('a peer that missed a change while the mount was up gets it from the journal at the next mount', async () => {
    const east = await spawnPeer({ name: 'east' });
    let west = await spawnPeer({ name: 'west' });
    const first = await startMount({ peers: [east, west], extraArgs: ['--peer-timeout', '1000'] });
    writeFileSync(join(first.mountpoint, 'a'), 'both have this');
    west.proc.kill('SIGSTOP');
    const err = await run('sh', ['-c', `printf 'only east' > ${join(first.mountpoint, 'b')}`], 30_000).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/Input\/output error/);
    await first.stop();
    west = await west.restart(); // killed while stopped: the change it never read is gone
    expect(existsSync(join(west.dataDir, 'b'))).toBe(false);
    const again = await startMount({ peers: [east, west], mountpoint: first.mountpoint, stateDir: first.stateDir });
    expect(again.stderr()).toMatch(/"peer":"west".*catching up from the journal/);
    // the create reached east before west stopped answering and is rolled forward; the write never happened (the call had failed)
    expect(readFileSync(join(west.dataDir, 'b'), 'utf8')).toBe('');
    writeFileSync(join(again.mountpoint, 'c'), 'after catch-up');
    expect(compareDirs([{ label: 'mount', dir: again.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
  });

  it('copies that cannot be reconciled are refused, and --resync-from rebuilds the others from the chosen one', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    writeFileSync(join(east.dataDir, 'only-east'), 'e');
    writeFileSync(join(west.dataDir, 'only-west'), 'w');
    const base = tmpDir('mirrorfs-remount-');
    const refused = await startMount({ peers: [east, west], stateDir: join(base, 'state') }).then(() => null, (e: Error) => e);
    expect(refused?.message).toMatch(/hold different trees[\s\S]*only-east: only on east[\s\S]*--resync-from/);
    const m = await startMount({ peers: [east, west], stateDir: join(base, 'state'), extraArgs: ['--resync-from', 'west'] });
    expect(m.stderr()).toContain('full resync finished and verified by content hash');
    expect(existsSync(join(east.dataDir, 'only-east'))).toBe(false);
    expect(readFileSync(join(east.dataDir, 'only-west'), 'utf8')).toBe('w');
    expect(compareDirs([{ label: 'mount', dir: m.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
  });

  it('a fresh local copy is filled with hard links kept as links', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    for (const p of [east, west]) {
      writeFileSync(join(p.dataDir, 'orig'), 'v1');
      linkSync(join(p.dataDir, 'orig'), join(p.dataDir, 'hard'));
    }
    const m = await startMount({ peers: [east, west], localCopy: true });
    const local = m.localCopyDir!;
    expect(lstatSync(join(local, 'hard')).ino).toBe(lstatSync(join(local, 'orig')).ino);
    writeFileSync(join(m.mountpoint, 'orig'), 'v2');
    expect(readFileSync(join(m.mountpoint, 'hard'), 'utf8')).toBe('v2');
    expect(compareDirs([{ label: 'mount', dir: m.mountpoint }, { label: 'local', dir: local }, { label: 'east', dir: east.dataDir }])).toEqual([]);
  });

  it('a local copy left by a crash is checked by content, and refused when it differs', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const base = tmpDir('mirrorfs-remount-');
    const first = await startMount({ peers: [east, west], localCopy: true, stateDir: join(base, 'state') });
    writeFileSync(join(first.mountpoint, 'f'), 'AAAA');
    first.proc.kill('SIGKILL');
    await waitFor(() => first.proc.exitCode !== null || first.proc.signalCode !== null, 'mount process to die');
    lazyUnmount(first.mountpoint);
    expect(isMounted(first.mountpoint)).toBe(false);
    // same size, different bytes: only a content comparison notices
    writeFileSync(join(first.localCopyDir!, 'f'), 'BBBB');
    const refused = await startMount({ peers: [east, west], mountpoint: first.mountpoint, stateDir: join(base, 'state'), extraArgs: ['--local-copy', first.localCopyDir!] }).then(() => null, (e: Error) => e);
    expect(refused?.message).toMatch(/local copy .* differs from the peers/);
    expect(existsSync(join(base, 'state', 'local-copy.clean'))).toBe(false);
  });
});
