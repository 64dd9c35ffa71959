import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerStatus } from '../../src/protocol/ops.js';
import { run } from '../helpers/child.js';
import { cleanupMounts, mirrorfsCli, mountArgs, mountStatus, startMount, type MountProcess } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { compareDirs } from '../helpers/tree.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Commit levels (issue 21): a change returns once every required peer applied
 * it, with no flush on that path; fsync, fdatasync, fsyncdir and O_DSYNC writes
 * return only once the peers made it durable; `--sync` makes every change
 * durable; a peer whose machine went down (played here by restarting it from
 * a copy of its data taken at its last durable point, under another boot id)
 * is found out and repaired before it serves again.
 *
 * Peers run with a long flush interval, so nothing but the call under test
 * can have flushed them.
 */

const QUIET_FLUSH = ['--flush-interval', '60000'];

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

async function peerStatus(p: PeerProcess): Promise<PeerStatus> {
  const c = p.client();
  return c.status();
}

/** Every flush a peer made: background and barrier flushes (syncfs) and flushes of single entries (fsync of a file or directory). */
function allFlushes(s: PeerStatus): number {
  return s.flush.flushes + s.flush.changeFlushes.data + s.flush.changeFlushes.all + s.flush.changeFlushes.dir;
}

async function mountIdOf(m: MountProcess): Promise<string> {
  const r = await mirrorfsCli(['status', m.mountpoint, '--json']);
  return (JSON.parse(r.stdout) as { mountId: string }).mountId;
}

/** Run a Python snippet as another process (argv[1] is the path). */
function py(code: string, path: string): Promise<string> {
  return run('python3', ['-c', code, path], 30_000);
}

async function twoPeers(env: Record<string, string> = {}): Promise<[PeerProcess, PeerProcess]> {
  return [await spawnPeer({ name: 'east', extraArgs: QUIET_FLUSH, env }), await spawnPeer({ name: 'west', extraArgs: QUIET_FLUSH, env })];
}

describe('the applied level (default)', () => {
  it('a write returns once both peers applied it, with no flush on either', async () => {
    const peers = await twoPeers();
    const m = await startMount({ peers });
    const mount = await mountIdOf(m);
    const before = await Promise.all(peers.map(peerStatus));
    await run('sh', ['-c', `mkdir ${m.mountpoint}/d && printf 'applied' > ${m.mountpoint}/d/f && mv ${m.mountpoint}/d/f ${m.mountpoint}/d/g`]);
    // In both trees the moment the calls returned.
    for (const p of peers) expect(readFileSync(join(p.dataDir, 'd/g'), 'utf8')).toBe('applied');
    const after = await Promise.all(peers.map(peerStatus));
    for (const [i, s] of after.entries()) {
      expect(allFlushes(s)).toBe(allFlushes(before[i]!));
      const d = s.flush.mounts[mount]!;
      expect(d.appliedThrough).toBeGreaterThan(d.durableThrough);
      expect(d.oldestUndurableAgeMs).not.toBeNull();
    }
    // mirrorfs status shows each peer's applied and durable points (from the lease renewals).
    await waitFor(async () => {
      const st = (await mountStatus(m.mountpoint)) as unknown as { commitLevel: string; peers: Array<{ durability: { appliedThrough: number; durableThrough: number } | null }> };
      return st.commitLevel === 'applied' && st.peers.every((p) => p.durability !== null && p.durability.appliedThrough > p.durability.durableThrough);
    }, 'status to show applied beyond durable', 15_000, 100);
  });

  it('fsync, fdatasync, fsyncdir and an O_DSYNC write each return only once the peers flushed', async () => {
    const peers = await twoPeers();
    const m = await startMount({ peers });
    const f = join(m.mountpoint, 'f');
    const cases: Array<[string, string, string, 'data' | 'all' | 'dir']> = [
      ['fsync', 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY|os.O_CREAT, 0o644); os.write(fd, b"one"); os.fsync(fd)', f, 'all'],
      ['fdatasync', 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.pwrite(fd, b"two", 3); os.fdatasync(fd)', f, 'data'],
      ['fsyncdir', 'import os,sys; os.mkdir(sys.argv[1] + "/sub"); fd=os.open(sys.argv[1], os.O_RDONLY|os.O_DIRECTORY); os.fsync(fd)', m.mountpoint, 'dir'],
      ['O_DSYNC write', 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY|os.O_DSYNC); os.pwrite(fd, b"three", 6)', f, 'data'],
    ];
    for (const [what, code, path, kind] of cases) {
      const before = await Promise.all(peers.map(peerStatus));
      await py(code, path);
      const after = await Promise.all(peers.map(peerStatus));
      // Nothing else flushes (a 60 s interval, and changes are only applied): the call itself made each peer flush that entry.
      for (const [i, s] of after.entries()) expect(s.flush.changeFlushes[kind], `${what} on ${peers[i]!.name}`).toBeGreaterThan(before[i]!.flush.changeFlushes[kind]);
    }
    for (const p of peers) expect(readFileSync(join(p.dataDir, 'f'), 'utf8')).toBe('onetwothree');
    const st = (await mountStatus(m.mountpoint)) as unknown as { barriers: { sent: number; failed: number } };
    expect(st.barriers.sent).toBeGreaterThanOrEqual(cases.length);
    expect(st.barriers.failed).toBe(0);
  });

  it('close is not a durability point (a file written and closed is applied, not flushed); mirrorfs sync is', async () => {
    const peers = await twoPeers();
    const m = await startMount({ peers });
    const mount = await mountIdOf(m);
    const before = await Promise.all(peers.map(peerStatus));
    await py('import sys; open(sys.argv[1], "w").write("closed")', join(m.mountpoint, 'c'));
    const after = await Promise.all(peers.map(peerStatus));
    for (const [i, s] of after.entries()) expect(allFlushes(s)).toBe(allFlushes(before[i]!));
    for (const p of peers) expect(readFileSync(join(p.dataDir, 'c'), 'utf8')).toBe('closed');
    // sync(1) does not reach a FUSE file system; mirrorfs sync flushes everything on every peer.
    const r = await mirrorfsCli(['sync', m.mountpoint]);
    expect(r.code, r.stderr).toBe(0);
    for (const [i, p] of peers.entries()) {
      const s = await peerStatus(p);
      expect(s.flush.flushes).toBeGreaterThan(after[i]!.flush.flushes);
      expect(s.flush.mounts[mount]!.durableThrough).toBe(s.flush.mounts[mount]!.appliedThrough);
    }
  });
});

describe('the sync level (--sync, mount -o sync)', () => {
  it('every change is flushed on each peer before it returns', async () => {
    const peers = await twoPeers();
    const m = await startMount({ peers, extraArgs: ['--sync'] });
    const before = await Promise.all(peers.map(peerStatus));
    await run('sh', ['-c', `printf 'durable' > ${m.mountpoint}/s && mkdir ${m.mountpoint}/sd`]);
    const after = await Promise.all(peers.map(peerStatus));
    for (const [i, s] of after.entries()) {
      const was = before[i]!.flush.changeFlushes;
      // The create and the mkdir flushed their directory, the write its data.
      expect(s.flush.changeFlushes.dir).toBeGreaterThanOrEqual(was.dir + 2);
      expect(s.flush.changeFlushes.data).toBeGreaterThanOrEqual(was.data + 1);
    }
    // An fsync has nothing left to flush: every change was durable when it returned.
    const flushes = (await Promise.all(peers.map(peerStatus))).map(allFlushes);
    await py('import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)', join(m.mountpoint, 's'));
    expect((await Promise.all(peers.map(peerStatus))).map(allFlushes)).toEqual(flushes);
    const st = (await mountStatus(m.mountpoint)) as unknown as { commitLevel: string };
    expect(st.commitLevel).toBe('sync');
  });
});

describe('through a relay (ack mode first-hop)', () => {
  it('an fsync returns with the far mirror stopped (the relay holds the change durably); the mirror applies it as a durable change when it resumes', async () => {
    const east = await spawnPeer({ name: 'east', extraArgs: QUIET_FLUSH });
    const mirror = await spawnPeer({ name: 'mirror', extraArgs: QUIET_FLUSH });
    const relay = await spawnPeer({ name: 'relay', pure: true, extraArgs: ['--forward-to', mirror.url] });
    const m = await startMount({ peers: [east, { ...relay, name: 'west' }] });
    const f = join(m.mountpoint, 'f');
    writeFileSync(f, 'x');
    await waitFor(() => existsSync(join(mirror.dataDir, 'f')) && readFileSync(join(mirror.dataDir, 'f'), 'utf8') === 'x', 'the mirror to have the file', 15_000);
    const before = await peerStatus(mirror);
    mirror.proc.kill('SIGSTOP');
    try {
      await py('import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.pwrite(fd, b"y", 0); os.fsync(fd)', f);
      // Returned while the mirror cannot answer: the change waits in the relay's queue (committed with FULL).
      expect((await relay.client().status()).relay!.queue.depth).toBeGreaterThanOrEqual(1);
    } finally {
      mirror.proc.kill('SIGCONT');
    }
    await waitFor(() => readFileSync(join(mirror.dataDir, 'f'), 'utf8') === 'y', 'the mirror to get the change', 15_000);
    // The relay forwarded it as a durable change: flushed on the mirror before the relay forgot it.
    expect((await peerStatus(mirror)).flush.changeFlushes.data).toBeGreaterThan(before.flush.changeFlushes.data);
  });
});

describe('the asynchronous mode (--ack 0)', () => {
  type AsyncStatus = { lag: { waiting: number; peers: Record<string, { ops: number }> }; barriers: { waiting: number } };
  const asyncStatus = async (m: MountProcess) => (await mountStatus(m.mountpoint)) as unknown as AsyncStatus;

  it('calls return while the peers are stopped, up to --max-lag; then they wait; the peers follow in order; fsync waits for every peer', async () => {
    const peers = await twoPeers();
    const m = await startMount({ peers, localCopy: true, extraArgs: ['--ack', '0', '--max-lag', '5', '--peer-timeout', '1000'] });
    writeFileSync(join(m.mountpoint, 'first'), 'one');
    // Followed: every change delivered (the mount counts a change once the peer answered it).
    const caughtUp = async () => Object.values((await asyncStatus(m)).lag.peers).every((p) => p.ops === 0);
    await waitFor(caughtUp, 'the peers to follow', 15_000, 50);
    for (const p of peers) expect(readFileSync(join(p.dataDir, 'first'), 'utf8')).toBe('one');
    for (const p of peers) p.proc.kill('SIGSTOP');
    try {
      // One change each: they return with no peer answering (the local copy decides, the journal holds them).
      for (let i = 0; i < 5; i++) mkdirSync(join(m.mountpoint, `d${i}`));
      for (const p of peers) expect(existsSync(join(p.dataDir, 'd0'))).toBe(false);
      expect((await asyncStatus(m)).lag.peers.east!.ops).toBe(5);
      // The sixth would put them past --max-lag: it waits, applied nowhere yet.
      const sixth = run('mkdir', [join(m.mountpoint, 'd5')], 60_000);
      await waitFor(async () => (await asyncStatus(m)).lag.waiting === 1, 'a change to wait for the peers', 15_000, 50);
      expect(existsSync(join(m.localCopyDir!, 'd5'))).toBe(false);
      for (const p of peers) p.proc.kill('SIGCONT');
      await sixth;
    } finally {
      for (const p of peers) p.proc.kill('SIGCONT');
    }
    await waitFor(caughtUp, 'the peers to catch up', 30_000, 50);
    for (let i = 0; i < 6; i++) for (const p of peers) expect(existsSync(join(p.dataDir, `d${i}`))).toBe(true);
    // fsync waits until every peer has every change and made it durable.
    const before = await Promise.all(peers.map(peerStatus));
    for (const p of peers) p.proc.kill('SIGSTOP');
    let synced: Promise<string>;
    try {
      writeFileSync(join(m.mountpoint, 'last'), 'fsynced');
      synced = py('import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)', join(m.mountpoint, 'last'));
      await waitFor(async () => (await asyncStatus(m)).barriers.waiting === 1, 'fsync to wait for the peers', 15_000, 50);
    } finally {
      for (const p of peers) p.proc.kill('SIGCONT');
    }
    await synced;
    for (const [i, p] of peers.entries()) {
      expect(readFileSync(join(p.dataDir, 'last'), 'utf8')).toBe('fsynced');
      expect(allFlushes(await peerStatus(p))).toBeGreaterThan(allFlushes(before[i]!));
    }
    expect(compareDirs([{ label: 'mount', dir: m.mountpoint }, { label: 'local', dir: m.localCopyDir! }, { label: 'east', dir: peers[0]!.dataDir }, { label: 'west', dir: peers[1]!.dataDir }])).toEqual([]);
  });

  it('is refused without a local copy, saying why', async () => {
    const peers = await twoPeers();
    const base = tmpDir('mirrorfs-async-');
    mkdirSync(join(base, 'mnt'));
    const r = await mirrorfsCli([...mountArgs(join(base, 'mnt'), peers, join(base, 'state')), '--ack', '0', '--foreground']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--ack 0 \(the asynchronous mode\) needs --local-copy DIR/);
  });
});

describe('a peer whose machine went down (unclean restart)', () => {
  /** What a disk holds: contents, modes, owners, times and extended attributes (the peers' inode ids live in one). */
  function copyAll(from: string, to: string): void {
    execFileSync('cp', ['-a', '--preserve=all', from, to]);
  }

  function readMeta(stateDir: string, key: string): string | null {
    const db = new Database(join(stateDir, 'peer.db')); // not readonly: the killed peer left its WAL to be read
    try {
      return db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(key)?.value ?? null;
    } finally {
      db.close();
    }
  }

  function writeMeta(stateDir: string, key: string, value: string): void {
    const db = new Database(join(stateDir, 'peer.db'));
    try {
      db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
    } finally {
      db.close();
    }
  }

  /** Take a copy of a peer's data and state at this moment (the peer stopped meanwhile, so the copy is consistent). */
  function snapshot(p: PeerProcess): string {
    const dir = tmpDir('mirrorfs-snap-');
    p.proc.kill('SIGSTOP');
    try {
      copyAll(p.dataDir, join(dir, 'data'));
      copyAll(p.stateDir, join(dir, 'state'));
    } finally {
      p.proc.kill('SIGCONT');
    }
    return dir;
  }

  /**
   * Play a power loss: kill the peer, put back what its disk held at the snapshot, start it
   * under a new boot id. What the peer committed with a flush after the snapshot (its mark
   * that changes not yet flushed were applied, PeerState.noteUndurable) is on the disk too.
   */
  async function powerLoss(p: PeerProcess, snap: string, bootId: string): Promise<PeerProcess> {
    await p.kill9();
    const token = readFileSync(p.tokenFile);
    const undurable = readMeta(p.stateDir, 'undurable');
    rmSync(p.dataDir, { recursive: true, force: true });
    rmSync(p.stateDir, { recursive: true, force: true });
    copyAll(join(snap, 'data'), p.dataDir);
    copyAll(join(snap, 'state'), p.stateDir);
    if (undurable !== null) writeMeta(p.stateDir, 'undurable', undurable);
    writeFileSync(p.tokenFile, token, { mode: 0o600 });
    return spawnPeer({ name: p.name, dataDir: p.dataDir, port: p.port, extraArgs: QUIET_FLUSH, env: { MIRRORFS_BOOT_ID: bootId } });
  }

  it('while the mount runs: only the names changed since its durable point are copied from the clean peer, the journal brings the rest, and it serves and counts again', async () => {
    let [east, west] = await twoPeers({ MIRRORFS_BOOT_ID: 'boot-1' });
    const m = await startMount({ peers: [east, west], extraArgs: ['--peer-timeout', '1000', '--ack', '1'] });
    // Durable everywhere before the "power loss": a tree the repair must not copy again.
    mkdirSync(join(m.mountpoint, 'old'));
    for (let i = 0; i < 40; i++) writeFileSync(join(m.mountpoint, 'old', `f${i}`), `old ${i}`);
    await py('import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY|os.O_CREAT, 0o644); os.write(fd, b"durable"); os.fsync(fd)', join(m.mountpoint, 'before'));
    expect((await mirrorfsCli(['sync', m.mountpoint])).code).toBe(0);
    const durableSeq = (await mountStatus(m.mountpoint)).seq;
    // The mount learns east's durable point from its lease answers (about every second).
    await waitFor(async () => ((await mountStatus(m.mountpoint)).peers.find((p) => p.name === 'east')!.durability?.durableThrough ?? 0) >= durableSeq, 'east to report its durable point', 30_000, 100);
    const snap = snapshot(east);
    // Acknowledged, applied on both, not yet durable on east: its power loss takes these back.
    await run('sh', ['-c', `printf 'applied only' > ${m.mountpoint}/after && mkdir ${m.mountpoint}/dir && mv ${m.mountpoint}/before ${m.mountpoint}/dir/moved && printf ' changed' >> ${m.mountpoint}/old/f3 && rm ${m.mountpoint}/old/f4 && ln ${m.mountpoint}/old/f5 ${m.mountpoint}/dir/hard`]);
    east = await powerLoss(east, snap, 'boot-2');
    expect(existsSync(join(east.dataDir, 'after'))).toBe(false); // what the "disk" held
    // (That it refuses everyone else meanwhile is the next tests' business: the running mount may repair it at once.)
    // Changes go on meanwhile (ack 1: west takes them), some to names east holds wrongly.
    writeFileSync(join(m.mountpoint, 'while'), 'written while east was down');
    await run('sh', ['-c', `printf ' and more' >> ${m.mountpoint}/after && printf 'new' > ${m.mountpoint}/dir/new`]);
    await waitFor(async () => {
      const peers = (await mountStatus(m.mountpoint)).peers;
      const e = peers.find((p) => p.name === 'east')!;
      return e.state === 'in-sync' && !e.unclean;
    }, 'the running mount to repair east and take it back in step', 40_000, 100);
    expect(m.stderr()).toMatch(/"peer":"east".*"names":\d+.*repairing the names changed since its durable point/);
    const copied = Number(/"names":(\d+)[^\n]*repairing the names changed since its durable point/.exec(m.stderr())![1]);
    expect(copied).toBeLessThan(20); // the names changed since the durable point, not the tree of 40 files
    expect(m.stderr()).toContain('peer repaired after its unclean restart');
    expect(m.stderr()).not.toContain('full resync');
    expect((await peerStatus(east)).unclean).toBeNull();
    expect(readFileSync(join(east.dataDir, 'after'), 'utf8')).toBe('applied only and more');
    expect(readFileSync(join(east.dataDir, 'dir/moved'), 'utf8')).toBe('durable');
    expect(readFileSync(join(east.dataDir, 'old/f3'), 'utf8')).toBe('old 3 changed');
    expect(existsSync(join(east.dataDir, 'old/f4'))).toBe(false);
    // A file with two names is still one file there (a copy of each name alone would make two).
    expect(statSync(join(east.dataDir, 'dir/hard')).ino).toBe(statSync(join(east.dataDir, 'old/f5')).ino);
    expect(compareDirs([{ label: 'mount', dir: m.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
    // It serves and counts again, and its history holds no hole a later recovery would replay.
    writeFileSync(join(m.mountpoint, 'later'), 'both');
    expect(readFileSync(join(east.dataDir, 'later'), 'utf8')).toBe('both');
    const mountId = await mountIdOf(m);
    const progress = await east.client().progress(mountId);
    expect(progress.contiguousSeq).toBe(progress.maxSeq);
    await m.stop();
    const again = await startMount({ peers: [east, west], mountpoint: m.mountpoint, stateDir: m.stateDir });
    expect(again.stderr()).not.toMatch(/rolled forward|full resync/);
    expect(compareDirs([{ label: 'mount', dir: again.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
  });

  it('when every peer went down while a mount with a local copy runs: both are repaired from the local copy and nothing acknowledged is lost', async () => {
    let [east, west] = await twoPeers({ MIRRORFS_BOOT_ID: 'boot-1' });
    const m = await startMount({ peers: [east, west], localCopy: true, extraArgs: ['--peer-timeout', '1000'] });
    writeFileSync(join(m.mountpoint, 'one'), 'one');
    expect((await mirrorfsCli(['sync', m.mountpoint])).code).toBe(0);
    const durableSeq = (await mountStatus(m.mountpoint)).seq;
    await waitFor(async () => (await mountStatus(m.mountpoint)).peers.every((p) => (p.durability?.durableThrough ?? 0) >= durableSeq), 'both peers to report their durable points', 30_000, 100);
    const [eastSnap, westSnap] = [snapshot(east), snapshot(west)];
    // Applied on both peers, flushed on neither: both power losses take these back.
    await run('sh', ['-c', `printf 'applied only' > ${m.mountpoint}/two && mkdir ${m.mountpoint}/d && mv ${m.mountpoint}/one ${m.mountpoint}/d/one`]);
    east = await powerLoss(east, eastSnap, 'boot-2');
    west = await powerLoss(west, westSnap, 'boot-2');
    // The mount finds out from the peers' lease answers (no change needed) and repairs both from its local copy.
    await waitFor(async () => (await mountStatus(m.mountpoint)).peers.every((p) => p.state === 'in-sync' && !p.unclean), 'both peers repaired and in step', 40_000, 100);
    expect(m.stderr()).toContain('"from":"local copy"');
    expect(m.stderr()).not.toContain('full resync');
    for (const p of [east, west]) {
      expect((await peerStatus(p)).unclean).toBeNull();
      expect(readFileSync(join(p.dataDir, 'two'), 'utf8')).toBe('applied only');
      expect(readFileSync(join(p.dataDir, 'd/one'), 'utf8')).toBe('one');
    }
    expect(compareDirs([{ label: 'mount', dir: m.mountpoint }, { label: 'local', dir: m.localCopyDir! }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
    writeFileSync(join(m.mountpoint, 'later'), 'all');
    for (const p of [east, west]) expect(readFileSync(join(p.dataDir, 'later'), 'utf8')).toBe('all');
  });

  it('with the primary restarted too: refused until repaired; the mount repairs it at start from the clean peer (a verified full resync) and nothing acknowledged is lost', async () => {
    let [east, west] = await twoPeers({ MIRRORFS_BOOT_ID: 'boot-1' });
    const base = tmpDir('mirrorfs-unclean-');
    const m = await startMount({ peers: [east, west], stateDir: join(base, 'state'), extraArgs: ['--peer-timeout', '1000'] });
    await py('import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY|os.O_CREAT, 0o644); os.write(fd, b"durable"); os.fsync(fd)', join(m.mountpoint, 'before'));
    const snap = snapshot(east);
    // Acknowledged, applied on both, not yet durable on east: its power loss takes these back.
    await run('sh', ['-c', `printf 'applied only' > ${m.mountpoint}/after && mkdir ${m.mountpoint}/dir && mv ${m.mountpoint}/before ${m.mountpoint}/dir/moved`]);
    await m.stop(); // the primary goes too: what it knew of the names changed goes with it
    east = await powerLoss(east, snap, 'boot-2');
    expect(existsSync(join(east.dataDir, 'after'))).toBe(false); // what the "disk" held
    // The peer itself refuses to serve: no read, no change, no listing, until its owner repairs it.
    const st = await peerStatus(east);
    expect(st.unclean).not.toBeNull();
    await expect(east.client().call({ op: 'getattr', path: '' })).rejects.toMatchObject({ code: 'MFS_UNCLEAN' });
    await expect(east.client().manifest({ content: false })).rejects.toMatchObject({ code: 'MFS_UNCLEAN' });
    const again = await startMount({ peers: [east, west], mountpoint: m.mountpoint, stateDir: m.stateDir });
    expect(again.stderr()).toMatch(/"peer":"east".*restarted after its machine went down/);
    expect(again.stderr()).toContain('full resync finished and verified by content hash');
    expect((await peerStatus(east)).unclean).toBeNull();
    expect(readFileSync(join(east.dataDir, 'after'), 'utf8')).toBe('applied only');
    expect(readFileSync(join(east.dataDir, 'dir/moved'), 'utf8')).toBe('durable');
    expect(compareDirs([{ label: 'mount', dir: again.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
    // And it serves and counts again.
    writeFileSync(join(again.mountpoint, 'later'), 'both');
    expect(readFileSync(join(east.dataDir, 'later'), 'utf8')).toBe('both');
  });

  it('only the session that said it repairs an unclean peer is served by it, and only its owner may say so', async () => {
    let [east] = [await spawnPeer({ name: 'east', extraArgs: QUIET_FLUSH, env: { MIRRORFS_BOOT_ID: 'boot-1' } })];
    const m = await startMount({ peers: [east] });
    writeFileSync(join(m.mountpoint, 'f'), 'x');
    const mountId = await mountIdOf(m);
    await m.stop();
    const snap = snapshot(east);
    east = await powerLoss(east, snap, 'boot-2');
    const owner = east.client();
    const other = east.client();
    const { epoch } = await peerStatus(east);
    const hello = await owner.handshake(mountId, epoch);
    expect(hello.unclean).not.toBeNull();
    await expect(owner.repairing('another-mount', epoch)).rejects.toMatchObject({ code: 'MFS_NOT_OWNER' });
    await expect(owner.call({ op: 'getattr', path: 'f' })).rejects.toMatchObject({ code: 'MFS_UNCLEAN' }); // not before it says so
    expect(await owner.repairing(mountId, epoch)).toBe(true);
    expect((await owner.call<{ type: string }>({ op: 'getattr', path: 'f' })).result.type).toBe('file');
    await expect(other.call({ op: 'getattr', path: 'f' })).rejects.toMatchObject({ code: 'MFS_UNCLEAN' });
    await expect(other.manifest({ content: false })).rejects.toMatchObject({ code: 'MFS_UNCLEAN' });
    await owner.clean(mountId, epoch);
    expect((await other.call<{ type: string }>({ op: 'getattr', path: 'f' })).result.type).toBe('file');
  });

  it('when every peer went down, the copy durable the furthest is kept, the others are made equal to it, and the window is named', async () => {
    let [east, west] = await twoPeers({ MIRRORFS_BOOT_ID: 'boot-1' });
    const base = tmpDir('mirrorfs-unclean-');
    const m = await startMount({ peers: [east, west], stateDir: join(base, 'state') });
    // mirrorfs sync: everything so far durable on both, so each copy's durable point moves.
    const sync = async () => expect((await mirrorfsCli(['sync', m.mountpoint])).code).toBe(0);
    writeFileSync(join(m.mountpoint, 'one'), 'one');
    await sync();
    const westSnap = snapshot(west);
    writeFileSync(join(m.mountpoint, 'two'), 'two');
    await sync();
    const eastSnap = snapshot(east); // east is durable further than west
    writeFileSync(join(m.mountpoint, 'three'), 'never flushed');
    await m.stop();
    east = await powerLoss(east, eastSnap, 'boot-2');
    west = await powerLoss(west, westSnap, 'boot-2');
    const again = await startMount({ peers: [east, west], mountpoint: m.mountpoint, stateDir: m.stateDir });
    expect(again.stderr()).toMatch(/"keep":"east","durableThrough":[1-9]\d*.*"mayBeLost":"[^"]+".*every peer restarted after its machine went down/);
    expect(readFileSync(join(west.dataDir, 'two'), 'utf8')).toBe('two');
    expect(existsSync(join(west.dataDir, 'three'))).toBe(false);
    for (const p of [east, west]) expect((await peerStatus(p)).unclean).toBeNull();
    expect(compareDirs([{ label: 'mount', dir: again.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
  });

  it('a peer that applied nothing unflushed since its last flush (a --sync mount) is not unclean after its machine went down: it lost nothing and counts at once', async () => {
    let [east, west] = await twoPeers({ MIRRORFS_BOOT_ID: 'boot-1' });
    const m = await startMount({ peers: [east, west], extraArgs: ['--sync'] });
    mkdirSync(join(m.mountpoint, 'd'));
    writeFileSync(join(m.mountpoint, 'd', 'f'), 'durable when it returned');
    // One flush of east (its background flush is a minute away here): what came before it, say the
    // handshake's bookkeeping, is on stable storage; every change after is flushed before it returns.
    await east.client().call({ op: 'fsync', mount: await mountIdOf(m) });
    writeFileSync(join(m.mountpoint, 'g'), 'also durable');
    const snap = snapshot(east); // what a power loss now leaves: everything, as every change was flushed
    east = await powerLoss(east, snap, 'boot-2');
    expect((await peerStatus(east)).unclean).toBeNull();
    writeFileSync(join(m.mountpoint, 'h'), 'after');
    await waitFor(async () => (await mountStatus(m.mountpoint)).peers.every((p) => p.state === 'in-sync'), 'east back in step', 40_000, 100);
    expect(m.stderr()).not.toMatch(/unclean|full resync/);
    expect(compareDirs([{ label: 'mount', dir: m.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
  });

  it('a far mirror behind a relay (which forwards every change as durable) is not unclean after its machine went down, and the chain goes on', async () => {
    const east = await spawnPeer({ name: 'east', extraArgs: QUIET_FLUSH });
    let mirror = await spawnPeer({ name: 'mirror', extraArgs: QUIET_FLUSH, env: { MIRRORFS_BOOT_ID: 'boot-1' } });
    const relay = await spawnPeer({ name: 'relay', pure: true, extraArgs: ['--forward-to', mirror.url] });
    const m = await startMount({ peers: [east, { ...relay, name: 'west' }] });
    writeFileSync(join(m.mountpoint, 'a'), 'one');
    await waitFor(() => existsSync(join(mirror.dataDir, 'a')), 'the mirror to have the first file', 15_000);
    // One flush of the mirror (its background flush is a minute away here); then only durable changes arrive.
    await mirror.client().call({ op: 'fsync', mount: await mountIdOf(m) });
    writeFileSync(join(m.mountpoint, 'b'), 'two');
    await waitFor(() => existsSync(join(mirror.dataDir, 'b')) && readFileSync(join(mirror.dataDir, 'b'), 'utf8') === 'two', 'the mirror to have the second file', 15_000);
    const snap = snapshot(mirror);
    mirror = await powerLoss(mirror, snap, 'boot-2');
    expect((await peerStatus(mirror)).unclean).toBeNull();
    writeFileSync(join(m.mountpoint, 'c'), 'three');
    await waitFor(() => existsSync(join(mirror.dataDir, 'c')) && readFileSync(join(mirror.dataDir, 'c'), 'utf8') === 'three', 'the mirror to get a change after its power loss', 15_000);
    expect(compareDirs([{ label: 'mount', dir: m.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'mirror', dir: mirror.dataDir }])).toEqual([]);
  });

  it('a peer killed (same boot) is not unclean: it loses nothing and catches up', async () => {
    let [east, west] = await twoPeers({ MIRRORFS_BOOT_ID: 'boot-1' });
    const m = await startMount({ peers: [east, west] });
    writeFileSync(join(m.mountpoint, 'k'), 'kept by the page cache');
    east = await east.restart();
    expect((await peerStatus(east)).unclean).toBeNull();
    expect(readFileSync(join(east.dataDir, 'k'), 'utf8')).toBe('kept by the page cache');
    writeFileSync(join(m.mountpoint, 'k2'), 'after');
    expect(compareDirs([{ label: 'mount', dir: m.mountpoint }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
  });
});
