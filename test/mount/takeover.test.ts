import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCollect } from '../helpers/child.js';
import { expectAckedEverywhere, expectConverged } from '../helpers/converge.js';
import { cleanupMounts, isMounted, lazyUnmount, mirrorfsCli, mountArgs, startMount, type MountProcess } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { snapshotTree } from '../helpers/tree.js';
import { waitFor } from '../helpers/wait.js';
import { cleanupWriters, startWriter } from '../helpers/writer.js';

/**
 * Fig. 5: a backup site takes the peers over when the primary is lost
 * (`mirrorfs mount --takeover`). The old primary is fenced on every peer;
 * nothing it acknowledged is lost; of two mounts racing to take over, one wins.
 */

afterEach(async () => {
  await cleanupWriters();
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

async function killMount(m: MountProcess): Promise<void> {
  m.proc.kill('SIGKILL');
  await waitFor(() => m.proc.exitCode !== null || m.proc.signalCode !== null, 'the mount process to die');
  if (isMounted(m.mountpoint)) lazyUnmount(m.mountpoint);
}

/** Write a file from another process; resolves with 'ok' or the error code. */
async function tryWrite(path: string, content: string): Promise<string> {
  const r = await runCollect(process.execPath, ['-e', `try { require('node:fs').writeFileSync(process.argv[1], process.argv[2]); process.stdout.write('ok'); } catch (e) { process.stdout.write(e.code); }`, path, content], 60_000);
  return r.stdout;
}

describe('takeover by a backup site', () => {
  it('the primary is killed with -9 while one peer is down (ack 1); the backup takes over and has everything the primary acknowledged', async () => {
    const east = await spawnPeer({ name: 'east' });
    let west = await spawnPeer({ name: 'west' });
    const primary = await startMount({ peers: [east, west], extraArgs: ['--ack', '1'] });
    const w = startWriter(primary.mountpoint, 'p');
    await w.waitAcked(10);
    await west.kill9(); // from here the primary's changes reach east only (journaled for west on the primary)
    await w.waitAcked(w.log().acked.length + 20);
    await killMount(primary); // the primary site is lost, with its journal
    const log = await w.stop();
    west = await west.restart();
    const spare = tmpDir('mirrorfs-backup-');
    mkdirSync(join(spare, 'mnt'));
    const refused = await mirrorfsCli([...mountArgs(join(spare, 'mnt'), [east, west], join(spare, 'state')), '--foreground']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/owned by mount .* --takeover/);
    const backup = await startMount({ peers: [east, west], extraArgs: ['--takeover'] });
    expectAckedEverywhere(log, [backup.mountpoint, east.dataDir, west.dataDir]);
    expect(await tryWrite(join(backup.mountpoint, 'after-takeover'), 'backup writes')).toBe('ok');
    await expectConverged(backup, [east, west]);
  });

  it('the old primary, stopped and continued, is fenced: its next write fails and changes no peer', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const primary = await startMount({ peers: [east, west] });
    expect(await tryWrite(join(primary.mountpoint, 'before'), 'from the primary')).toBe('ok');
    primary.proc.kill('SIGSTOP'); // it still believes it is the primary
    try {
      const backup = await startMount({ peers: [east, west], extraArgs: ['--takeover'] });
      expect(await tryWrite(join(backup.mountpoint, 'by-backup'), 'from the backup')).toBe('ok');
      const backupId = readFileSync(join(backup.stateDir, 'mount-id'), 'utf8').trim();
      const before = [snapshotTree(east.dataDir), snapshotTree(west.dataDir)];
      primary.proc.kill('SIGCONT');
      expect(await tryWrite(join(primary.mountpoint, 'late'), 'from the old primary')).toMatch(/^(EROFS|EIO)$/);
      expect(await tryWrite(join(primary.mountpoint, 'later'), 'again')).toMatch(/^(EROFS|EIO)$/);
      expect([snapshotTree(east.dataDir), snapshotTree(west.dataDir)]).toEqual(before);
      await waitFor(() => /"msg":"fenced[^\n]*|owned by mount [^"\n]* since [^"\n]*"[^\n]*"msg":"fenced/.test(primary.stderr()), 'the old primary to log who fenced it');
      expect(primary.stderr()).toContain(backupId);
    } finally {
      primary.proc.kill('SIGCONT');
    }
  });

  it('two backups racing to take over: exactly one can write', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const primary = await startMount({ peers: [east, west] });
    await killMount(primary);
    const racers = await Promise.allSettled([
      startMount({ peers: [east, west], extraArgs: ['--takeover'] }),
      startMount({ peers: [east, west], extraArgs: ['--takeover'] }),
    ]);
    const mounted = racers.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(mounted.length).toBeGreaterThanOrEqual(1);
    const results = await Promise.all(mounted.map((m, i) => tryWrite(join(m.mountpoint, `racer-${i}`), 'mine')));
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    for (const r of racers) if (r.status === 'rejected') expect(String(r.reason)).toMatch(/taken by another mount|owned by mount|fenced/);
    const winner = mounted[results.indexOf('ok')]!;
    const winnerId = readFileSync(join(winner.stateDir, 'mount-id'), 'utf8').trim();
    for (const p of [east, west]) expect((await p.client().status()).owner).toBe(winnerId);
  });
});

/** Two peers, ordered as every mount handshakes them (by identity): the first is taken first. */
async function peersInHandshakeOrder() {
  const a = await spawnPeer({ name: 'east' });
  const b = await spawnPeer({ name: 'west' });
  const [ia, ib] = await Promise.all([a.client().status(), b.client().status()]);
  return ia.id < ib.id ? { first: a, second: b } : { first: b, second: a };
}

/** Overwrite a file in place from another process (same size: a structural comparison cannot see it). */
async function overwrite(path: string, content: string): Promise<void> {
  expect(await tryWrite(path, content)).toBe('ok');
}

describe('takeover edge cases', () => {
  it('a takeover that failed half way and is retried still reconciles the lost primary', async () => {
    const { first, second } = await peersInHandshakeOrder();
    const primary = await startMount({ peers: [first, second], extraArgs: ['--ack', '1'] });
    await overwrite(join(primary.mountpoint, 'f'), 'AAAA');
    await second.kill9(); // from here the primary's changes reach `first` only
    await overwrite(join(primary.mountpoint, 'f'), 'BBBB'); // acknowledged
    await killMount(primary);
    // The backup's first step, then it dies: it has taken `first` (the first peer in handshake
    // order) at a new epoch and nothing else. Done here with the protocol itself, so that it
    // stops exactly there.
    const base = tmpDir('mirrorfs-backup-');
    mkdirSync(join(base, 'mnt'));
    mkdirSync(join(base, 'state'));
    writeFileSync(join(base, 'state', 'mount-id'), 'backup-t1\n');
    const epoch = (await first.client().status()).epoch + 1;
    await first.client().handshake('backup-t1', epoch);
    const restarted = await second.restart();
    // Retried from the same state: it owns `first` already, so nothing looks like a rival any more.
    const backup = await startMount({ peers: [first, restarted], mountpoint: join(base, 'mnt'), stateDir: join(base, 'state') });
    for (const dir of [backup.mountpoint, first.dataDir, restarted.dataDir]) expect(readFileSync(join(dir, 'f'), 'utf8'), dir).toBe('BBBB');
    for (const p of [first, restarted]) expect((await p.client().status()).unreconciled).toEqual([]);
  });

  it('the old primary failing back from its old state drops its out-of-date journal instead of replaying it over newer data', async () => {
    const { first, second } = await peersInHandshakeOrder();
    const primary = await startMount({ peers: [first, second], extraArgs: ['--ack', '1'] });
    await overwrite(join(primary.mountpoint, 'f'), 'AAAA');
    await second.kill9();
    await overwrite(join(primary.mountpoint, 'f'), 'BBBB'); // journaled on the primary for `second`
    await killMount(primary);
    const restarted = await second.restart();
    const backup = await startMount({ peers: [first, restarted], extraArgs: ['--takeover'] });
    await overwrite(join(backup.mountpoint, 'f'), 'NEW!');
    await backup.stop();
    // Failback: the old primary, with its old state directory and journal, takes the peers back.
    const again = await startMount({ peers: [first, restarted], mountpoint: primary.mountpoint, stateDir: primary.stateDir, extraArgs: ['--takeover'] });
    for (const dir of [again.mountpoint, first.dataDir, restarted.dataDir]) expect(readFileSync(join(dir, 'f'), 'utf8'), dir).toBe('NEW!');
    expect(again.stderr()).toMatch(/journal is out of date and was dropped/);
  });

  it('an old primary that reaches one peer through a relay the backup does not use is still fenced (ack 1)', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const relay = await spawnPeer({ name: 'relay', pure: true, extraArgs: ['--forward-to', west.url] });
    const primary = await startMount({ peers: [east, { ...relay, name: 'west' }], extraArgs: ['--ack', '1'] });
    expect(await tryWrite(join(primary.mountpoint, 'before'), 'x')).toBe('ok');
    primary.proc.kill('SIGSTOP');
    try {
      const backup = await startMount({ peers: [east, west], extraArgs: ['--takeover'] });
      const before = [snapshotTree(east.dataDir), snapshotTree(west.dataDir)];
      primary.proc.kill('SIGCONT');
      expect(await tryWrite(join(primary.mountpoint, 'late'), 'from the old primary')).toMatch(/^(EROFS|EIO)$/);
      await waitFor(async () => (await relay.client().status()).relay!.refused > 0 || (await relay.client().status()).relay!.queue.depth === 0, 'the relay to settle the old write');
      expect([snapshotTree(east.dataDir), snapshotTree(west.dataDir)]).toEqual(before);
      expect(await tryWrite(join(backup.mountpoint, 'by-backup'), 'y')).toBe('ok');
    } finally {
      primary.proc.kill('SIGCONT');
    }
  });
});
