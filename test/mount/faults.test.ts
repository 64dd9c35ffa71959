import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync, existsSync, openSync, writeSync, closeSync, symlinkSync, statSync, utimesSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { setAttributeSync } from 'fs-xattr';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/child.js';
import { MIRRORFS_BIN, cleanupMounts, controlUrl, isMounted, lazyUnmount, mirrorfsCli, mountArgs, mountStatus, setMountDefaults, startMount, waitAllInSync, type MountProcess } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { scrape, sumOf } from '../helpers/prom.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { compareDirs } from '../helpers/tree.js';
import { waitFor } from '../helpers/wait.js';
import { cleanupWriters, startWriter } from '../helpers/writer.js';
import { expectAckedEverywhere, expectConverged } from '../helpers/converge.js';

/**
 * Failures the promise must survive (issue 4): peers killed, stopped, out of
 * space or replaced; the mount killed; a rolling disaster; a byte changed
 * behind a peer's back. Each ends with the tree comparison of the mount, the
 * local copy and every peer.
 */

const tmpfsMounts: string[] = [];

afterEach(async () => {
  await cleanupWriters();
  await cleanupMounts();
  await cleanupPeers();
  for (const dir of tmpfsMounts.splice(0)) execFileSync('umount', ['-l', dir]);
  cleanupTmp();
});

/** A new disk: the peer (already killed) comes back with an empty data directory and a new identity. */
async function replaceDataDir(peer: PeerProcess): Promise<PeerProcess> {
  const token = readFileSync(peer.tokenFile); // the test keeps its token file in the peer's state directory
  // A new disk: the data and the state beside it (a new peer identity) both gone.
  rmSync(peer.dataDir, { recursive: true, force: true });
  rmSync(peer.stateDir, { recursive: true, force: true });
  mkdirSync(peer.dataDir, { recursive: true });
  mkdirSync(peer.stateDir, { recursive: true });
  writeFileSync(peer.tokenFile, token, { mode: 0o600 });
  return peer.restart();
}

// Every fault at both commit levels (issue 21): applied (the default) and sync (--sync).
describe.each(['applied', 'sync'] as const)('at the %s commit level', (level) => {
  beforeAll(() => setMountDefaults(level === 'sync' ? ['--sync'] : []));
  afterAll(() => setMountDefaults([]));

  describe('a peer killed in the middle of a stream of writes', () => {
    it('ack all: the writer gets EIO within the timeout; after a restart the peer catches up and writes resume', async () => {
      const east = await spawnPeer({ name: 'east' });
      let west = await spawnPeer({ name: 'west' });
      const m = await startMount({ peers: [east, west], localCopy: true, extraArgs: ['--peer-timeout', '1000'] });
      const w = startWriter(m.mountpoint, 'a');
      await w.waitAcked(20);
      await west.kill9();
      await waitFor(() => w.log().errors.length > 0, 'the writer to see the failure', 10_000);
      expect(w.log().errors[0]!.code).toBe('EIO');
      const st = await mountStatus(m.mountpoint);
      expect(st.peers.find((p) => p.name === 'west')!.state).not.toBe('in-sync');
      west = await west.restart();
      await waitAllInSync(m.mountpoint);
      const resumedFrom = w.log().acked.length;
      await w.waitAcked(resumedFrom + 10);
      const log = await w.stop();
      expectAckedEverywhere(log, [m.mountpoint, east.dataDir, west.dataDir]);
      await expectConverged(m, [east, west]);
    });

    it('ack quorum (3 peers): the writer never notices, and the peer catches up after its restart', async () => {
      const east = await spawnPeer({ name: 'east' });
      const west = await spawnPeer({ name: 'west' });
      let north = await spawnPeer({ name: 'north' });
      const m = await startMount({ peers: [east, west, north], localCopy: true, extraArgs: ['--ack', 'quorum', '--peer-timeout', '1000'] });
      const w = startWriter(m.mountpoint, 'q');
      await w.waitAcked(20);
      await north.kill9();
      await w.waitAcked(w.log().acked.length + 30); // goes on with two of three
      const st = await mountStatus(m.mountpoint);
      expect(st.peers.find((p) => p.name === 'north')!.behind!.ops).toBeGreaterThan(0);
      north = await north.restart();
      await waitAllInSync(m.mountpoint);
      await w.waitAcked(w.log().acked.length + 10);
      const log = await w.stop();
      expect(log.errors).toEqual([]);
      expectAckedEverywhere(log, [m.mountpoint, east.dataDir, west.dataDir, north.dataDir]);
      await expectConverged(m, [east, west, north]);
    });

    it('ack quorum: a stopped peer (SIGSTOP) is left behind after a short wait and writes go on; after SIGCONT it catches up', async () => {
      const east = await spawnPeer({ name: 'east' });
      const west = await spawnPeer({ name: 'west' });
      const north = await spawnPeer({ name: 'north' });
      const m = await startMount({ peers: [east, west, north], extraArgs: ['--ack', 'quorum', '--peer-timeout', '1000'] });
      const w = startWriter(m.mountpoint, 's');
      await w.waitAcked(10);
      north.proc.kill('SIGSTOP');
      try {
        await w.waitAcked(w.log().acked.length + 30);
        await waitFor(async () => (await mountStatus(m.mountpoint)).peers.find((p) => p.name === 'north')!.state === 'down', 'north to show as down');
      } finally {
        north.proc.kill('SIGCONT');
      }
      await waitAllInSync(m.mountpoint);
      const log = await w.stop();
      expect(log.errors).toEqual([]);
      expectAckedEverywhere(log, [m.mountpoint, east.dataDir, west.dataDir, north.dataDir]);
      await expectConverged(m, [east, west, north]);
    });
  });

  describe('a peer that stays down while writes go on', () => {
    it('is retried with a backoff, not once per change (each attempt costs a TLS handshake)', async () => {
      const east = await spawnPeer({ name: 'east' });
      const west = await spawnPeer({ name: 'west' });
      const m = await startMount({ peers: [east, west], extraArgs: ['--ack', '1', '--peer-timeout', '1000', '--control-listen', '127.0.0.1:0'] });
      const metrics = `${await controlUrl(m)}/metrics`;
      const attempts = async () => sumOf(await scrape(metrics), 'mirrorfs_peer_connect_attempts_total', { peer: 'west' });
      const w = startWriter(m.mountpoint, 'd');
      await w.waitAcked(10);
      await west.kill9();
      await waitFor(async () => (await mountStatus(m.mountpoint)).peers.find((p) => p.name === 'west')!.state !== 'in-sync', 'west to fall behind');
      const before = await attempts();
      const startedAt = Date.now();
      await w.waitAcked(w.log().acked.length + 300, 120_000);
      const seconds = (Date.now() - startedAt) / 1000;
      const made = (await attempts()) - before;
      // Catch-up backs off from 200 ms up to 1 s (a handful at first, then one a second),
      // and the lease is renewed with every peer each second. Before the fix every change
      // journaled for west woke catch-up into another attempt (907 in 3.3 s once).
      expect(made, `${made} connection attempts to the down peer during ${seconds.toFixed(1)} s of writes`).toBeLessThanOrEqual(6 + 2 * Math.ceil(seconds));
      const log = await w.stop();
      expect(log.errors).toEqual([]);
    });
  });

  /**
   * A TCP proxy in front of a peer whose link can go silent: while stalled it
   * neither forwards nor closes anything (as when packets are dropped and TCP
   * keeps retransmitting); resumed, everything queued flows on late.
   */
  async function stallableLink(target: PeerProcess): Promise<{ url: string; stall: () => void; resume: () => void; close: () => void }> {
    const sockets = new Set<net.Socket>();
    let stalled = false;
    const server = net.createServer((client) => {
      const upstream = net.connect(target.port, '127.0.0.1');
      for (const sock of [client, upstream]) {
        sockets.add(sock);
        sock.on('error', () => undefined);
        sock.on('close', () => sockets.delete(sock));
        if (stalled) sock.pause();
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return {
      url: `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
      stall: () => {
        stalled = true;
        for (const sock of sockets) sock.pause();
      },
      resume: () => {
        stalled = false;
        for (const sock of sockets) sock.resume();
      },
      close: () => {
        server.close();
        for (const sock of sockets) sock.destroy();
      },
    };
  }

  describe('a peer whose link goes silent', () => {
    it('ack all: the call fails with EIO within the timeout (no wait without bound); when the link returns the peer catches up', async () => {
      const east = await spawnPeer({ name: 'east' });
      const west = await spawnPeer({ name: 'west' });
      const link = await stallableLink(west);
      try {
        const m = await startMount({ peers: [east, { ...west, url: link.url }], extraArgs: ['--peer-timeout', '1000'] });
        // every syscall from another process: the proxy runs in this one and must keep forwarding
        await run('sh', ['-c', `echo both > ${join(m.mountpoint, 'before')}`]);
        link.stall();
        const err = await run('sh', ['-c', `echo x > ${join(m.mountpoint, 'during')}`], 30_000).then(() => null, (e: Error) => e);
        expect(err?.message).toMatch(/Input\/output error/);
        expect(m.stderr()).toMatch(/"peer":"west".*did not answer/);
        link.resume();
        await waitAllInSync(m.mountpoint);
        await run('mkdir', [join(m.mountpoint, 'after')]);
        await waitFor(async () => (await run('ls', [m.mountpoint])).includes('during'), 'the rolled-forward name through the mount');
        expect(compareDirs([{ label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
      } finally {
        link.close();
      }
    });
  });

  describe('a peer whose disk fills up', () => {
    it('the writer gets ENOSPC; when space returns the peer catches up and nothing is left half-applied', async () => {
      const fsDir = tmpDir('mirrorfs-tmpfs-');
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', fsDir]);
      tmpfsMounts.push(fsDir);
      const east = await spawnPeer({ name: 'east' });
      const west = await spawnPeer({ name: 'west', dataDir: join(fsDir, 'data') });
      const m = await startMount({ peers: [east, west], localCopy: true, extraArgs: ['--peer-timeout', '2000'] });
      writeFileSync(join(m.mountpoint, 'small'), 'fits');
      // Leave west about 1 MiB (outside its data directory, so its tree is untouched).
      const free = Number(statfsSync(fsDir).bavail) * Number(statfsSync(fsDir).bsize);
      writeFileSync(join(fsDir, 'filler'), Buffer.alloc(free - 1024 * 1024));
      const err = await run(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(join(m.mountpoint, 'big'))}, Buffer.alloc(4 * 1024 * 1024, 7))`]).then(() => null, (e: Error) => e);
      expect(err?.message).toMatch(/ENOSPC/);
      // while west is out of space, further changes fail the same way (nothing is sent anywhere)
      const next = await run('mkdir', [join(m.mountpoint, 'next')]).then(() => null, (e: Error) => e);
      expect(next?.message).toMatch(/No space left on device/);
      expect(existsSync(join(east.dataDir, 'next'))).toBe(false);
      rmSync(join(fsDir, 'filler'));
      await waitAllInSync(m.mountpoint);
      // what reached east is rolled forward to west: the copies hold the same (partial) file
      expect(readFileSync(join(west.dataDir, 'big')).equals(readFileSync(join(east.dataDir, 'big')))).toBe(true);
      await run('mkdir', [join(m.mountpoint, 'next')]);
      await expectConverged(m, [east, west]);
    });
  });

  describe('the mount killed in the middle of writes and renames', () => {
    it('remounting reconciles the peers; every call that returned success is present everywhere', async () => {
      const east = await spawnPeer({ name: 'east' });
      const west = await spawnPeer({ name: 'west' });
      const first = await startMount({ peers: [east, west] });
      const writers = ['k1', 'k2', 'k3', 'k4'].map((tag) => startWriter(first.mountpoint, tag));
      await Promise.all(writers.map((w) => w.waitAcked(15)));
      first.proc.kill('SIGKILL');
      await waitFor(() => first.proc.exitCode !== null || first.proc.signalCode !== null, 'the mount process to die');
      const logs = await Promise.all(writers.map((w) => w.stop()));
      lazyUnmount(first.mountpoint);
      expect(isMounted(first.mountpoint)).toBe(false);
      const again = await startMount({ peers: [east, west], mountpoint: first.mountpoint, stateDir: first.stateDir });
      for (const log of logs) expectAckedEverywhere(log, [again.mountpoint, east.dataDir, west.dataDir]);
      writeFileSync(join(again.mountpoint, 'after'), 'remounted');
      await expectConverged(again, [east, west]);
    });
  });

  /** A stopped mount's identity, the peer's epoch and the last seq it recorded: to play that primary's next changes. */
  async function lastStampOf(m: MountProcess, peer: PeerProcess): Promise<{ mount: string; epoch: number; maxSeq: number }> {
    const mount = readFileSync(join(m.stateDir, 'mount-id'), 'utf8').trim();
    const { epoch } = await peer.client().status();
    const { maxSeq } = await peer.client().progress(mount);
    return { mount, epoch, maxSeq };
  }

  describe('changes in doubt after the primary died mid-call', () => {
    it('a change that reached one peer and not the other is rolled forward at the next mount', async () => {
      const east = await spawnPeer({ name: 'east' });
      const west = await spawnPeer({ name: 'west' });
      const first = await startMount({ peers: [east, west] });
      writeFileSync(join(first.mountpoint, 'a'), 'abcdef');
      await first.stop();
      // Play the primary that died after sending its next changes to east only:
      // the same mount identity and epoch, the next seqs, to one peer.
      const { mount, epoch, maxSeq } = await lastStampOf(first, east);
      const client = east.client();
      await client.call({ op: 'mkdir', path: 'made-in-doubt', mode: 0o751, mount, epoch, seq: maxSeq + 1 });
      await client.call({ op: 'write', path: 'a', offset: 2, mount, epoch, seq: maxSeq + 2 }, Buffer.from('ZZ'));
      expect(existsSync(join(west.dataDir, 'made-in-doubt'))).toBe(false);
      const again = await startMount({ peers: [east, west], mountpoint: first.mountpoint, stateDir: first.stateDir });
      expect(again.stderr()).toMatch(/"peer":"west","seq":\d+,"op":"mkdir".*rolled forward a change in doubt/);
      expect(again.stderr()).toMatch(/"peer":"west","seq":\d+,"op":"write","from":"east".*rolled forward a change in doubt by copying it/);
      expect(readFileSync(join(west.dataDir, 'a'), 'utf8')).toBe('abZZef');
      // both peers now record both seqs: the histories agree again
      const [pe, pw] = await Promise.all([east.client().progress(mount), west.client().progress(mount)]);
      expect(pw.contiguousSeq).toBe(pe.contiguousSeq);
      writeFileSync(join(again.mountpoint, 'after'), 'x');
      await expectConverged(again, [east, west]);
    });
  });

  describe('a peer killed between the intent of a rename and the rename', () => {
    it('is seen to lack it: the next mount rolls it forward (the intent alone once counted as applied, and the mount was refused)', async () => {
      const east = await spawnPeer({ name: 'east' });
      let west = await spawnPeer({ name: 'west' });
      const first = await startMount({ peers: [east, west] });
      writeFileSync(join(first.mountpoint, 'f.tmp'), 'renamed into place');
      await first.stop();
      // Play the primary's next change, a rename: east applies it; west records its
      // intent and is killed before renaming (the state the takeover test once met).
      const { mount, epoch, maxSeq } = await lastStampOf(first, east);
      const rename = { op: 'rename' as const, from: 'f.tmp', to: 'f' };
      await east.client().call({ ...rename, mount, epoch, seq: maxSeq + 1 });
      await west.kill9();
      const db = new Database(join(west.stateDir, 'peer.db'));
      db.prepare("INSERT INTO outcomes(mount, seq, epoch, op, subject, state, result, at_ms) VALUES (?, ?, ?, 'rename', ?, 'intent', NULL, 0)").run(mount, maxSeq + 1, epoch, JSON.stringify(rename));
      db.close();
      west = await west.restart();
      expect(existsSync(join(west.dataDir, 'f.tmp'))).toBe(true);
      const again = await startMount({ peers: [east, west], mountpoint: first.mountpoint, stateDir: first.stateDir });
      await waitFor(() => /"peer":"west","seq":\d+,"op":"rename".*rolled forward a change in doubt/.test(again.stderr()), 'the mount logging the roll-forward');
      expect(readFileSync(join(west.dataDir, 'f'), 'utf8')).toBe('renamed into place');
      expect(existsSync(join(west.dataDir, 'f.tmp'))).toBe(false);
      await expectConverged(again, [east, west]);
    });
  });

  describe('a peer that answers a journaled change differently', () => {
    it('gets the names copied whole once, after the changes that touch them, not replayed on top', async () => {
      const east = await spawnPeer({ name: 'east' });
      let west = await spawnPeer({ name: 'west' });
      const m = await startMount({ peers: [east, west], extraArgs: ['--ack', '1', '--peer-timeout', '1000'] });
      writeFileSync(join(m.mountpoint, 'a'), 'old');
      await west.kill9();
      // journaled for west: overwrite a, rename a -> b, a new a
      writeFileSync(join(m.mountpoint, 'a'), 'old2');
      await run('mv', [join(m.mountpoint, 'a'), join(m.mountpoint, 'b')]);
      writeFileSync(join(m.mountpoint, 'a'), 'new');
      // behind west's back, its a disappears: the first journaled write will fail there (ENOENT)
      rmSync(join(west.dataDir, 'a'));
      west = await west.restart();
      await waitAllInSync(m.mountpoint);
      expect(m.stderr()).toContain('catch-up: copying names the peer holds differently');
      expect(readFileSync(join(west.dataDir, 'b'), 'utf8')).toBe('old2');
      expect(readFileSync(join(west.dataDir, 'a'), 'utf8')).toBe('new');
      await expectConverged(m, [east, west]);
    });
  });

  describe('a rolling disaster', () => {
    it('east dies, writes go on; west dies; east returns and is caught up from the journal; west returns; nothing acknowledged is lost', async () => {
      let east = await spawnPeer({ name: 'east' });
      let west = await spawnPeer({ name: 'west' });
      // --ack 1 keeps two peers writable with one down (a quorum of two peers is both)
      const m = await startMount({ peers: [east, west], localCopy: true, extraArgs: ['--ack', '1', '--peer-timeout', '1000'] });
      const w = startWriter(m.mountpoint, 'r');
      await w.waitAcked(10);
      await east.kill9();
      await w.waitAcked(w.log().acked.length + 20);
      expect(w.log().errors).toEqual([]);
      await west.kill9();
      await waitFor(() => w.log().errors.length > 0, 'writes to fail with no peer left', 10_000);
      east = await east.restart();
      // east lacks everything since it died, and west (which has it) is down: only the journal has it
      await waitFor(async () => (await mountStatus(m.mountpoint)).peers.find((p) => p.name === 'east')!.state === 'in-sync', 'east to be caught up from the journal', 30_000);
      await w.waitAcked(w.log().acked.length + 10);
      west = await west.restart();
      await waitAllInSync(m.mountpoint);
      const log = await w.stop();
      expectAckedEverywhere(log, [m.mountpoint, east.dataDir, west.dataDir]);
      await expectConverged(m, [east, west]);
    });
  });

  describe('a peer whose data directory was replaced by an empty one', () => {
    it('is not caught up onto an empty tree while mounted; the next mount rebuilds it with a verified full resync', async () => {
      const east = await spawnPeer({ name: 'east' });
      let west = await spawnPeer({ name: 'west' });
      const first = await startMount({ peers: [east, west], extraArgs: ['--peer-timeout', '1000'] });
      mkdirSync(join(first.mountpoint, 'dir/sub'), { recursive: true });
      for (let i = 0; i < 50; i++) writeFileSync(join(first.mountpoint, 'dir/sub', `f${i}`), `file ${i}\n`.repeat(i * 100));
      // several large files: the resync sends their 4 MiB chunks at once
      for (let i = 0; i < 3; i++) writeFileSync(join(first.mountpoint, `big${i}`), Buffer.alloc(9 * 1024 * 1024, 3 + i));
      symlinkSync('dir/sub/f1', join(first.mountpoint, 'link'));
      setAttributeSync(join(first.mountpoint, 'big0'), 'user.note', 'kept');
      await run('chmod', ['0750', join(first.mountpoint, 'dir')]);
      await west.kill9();
      const failed = await run('touch', [join(first.mountpoint, 'while-west-is-away')]).then(() => null, (e: Error) => e);
      expect(failed?.message).toMatch(/Input\/output error/);
      west = await replaceDataDir(west);
      // catch-up notices the new identity and refuses to replay changes onto an empty tree
      await waitFor(() => first.stderr().includes('peer came back with a new identity'), 'the replaced peer to be noticed');
      const st = await mountStatus(first.mountpoint);
      expect(st.peers.find((p) => p.name === 'west')!.behind!.reason).toMatch(/data was replaced .* unmount and mount again/);
      expect(existsSync(join(west.dataDir, 'while-west-is-away'))).toBe(false);
      await first.stop();
      const again = await startMount({ peers: [east, west], mountpoint: first.mountpoint, stateDir: first.stateDir });
      expect(again.stderr()).toMatch(/peer has a new identity \(its data was replaced\): full resync/);
      expect(again.stderr()).toContain('full resync finished and verified by content hash');
      writeFileSync(join(again.mountpoint, 'after'), 'resynced');
      await expectConverged(again, [east, west]);
    });
  });

  describe('progress on a terminal', () => {
    it('a full resync at mount shows a progress bar when the mount runs on a terminal', async () => {
      const east = await spawnPeer({ name: 'east' });
      let west = await spawnPeer({ name: 'west' });
      const first = await startMount({ peers: [east, west] });
      for (let i = 0; i < 4; i++) writeFileSync(join(first.mountpoint, `f${i}`), Buffer.alloc(2 * 1024 * 1024, i));
      await first.stop();
      await west.kill9();
      west = await replaceDataDir(west);
      // script(1) gives the mount a pseudo-terminal, as when an operator runs it by hand
      const command = [process.execPath, MIRRORFS_BIN, ...mountArgs(first.mountpoint, [east, west], first.stateDir), '--foreground'].join(' ');
      const tty = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      tty.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<void>((r) => tty.once('exit', () => r()));
      try {
        await waitFor(() => isMounted(first.mountpoint), 'the mount on a terminal', 30_000);
        expect(out).toMatch(/resync east -> west \[[^\]]*\] 100% \| \d+\/\d+ bytes/);
      } finally {
        await mirrorfsCli(['unmount', first.mountpoint]);
        const timer = setTimeout(() => tty.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
    });
  });

  describe('mirrorfs verify', () => {
    it('finds a byte changed behind a peer\'s back, and --repair fixes it from the majority', async () => {
      const east = await spawnPeer({ name: 'east' });
      const west = await spawnPeer({ name: 'west' });
      const m = await startMount({ peers: [east, west], localCopy: true });
      mkdirSync(join(m.mountpoint, 'd'));
      writeFileSync(join(m.mountpoint, 'd/f'), 'abcdefgh'.repeat(1000));
      const clean = await mirrorfsCli(['verify', m.mountpoint]);
      expect(clean.code).toBe(0);
      expect(clean.stdout).toMatch(/the copies are equal/);
      // flip one byte on east, same size and modification time
      const before = statSync(join(east.dataDir, 'd/f'));
      const fd = openSync(join(east.dataDir, 'd/f'), 'r+');
      writeSync(fd, 'X', 4000);
      closeSync(fd);
      utimesSync(join(east.dataDir, 'd/f'), before.atime, before.mtime);
      // Without content hashes it is not seen (what --metadata-only says it misses)...
      const quick = await mirrorfsCli(['verify', m.mountpoint, '--metadata-only']);
      expect(quick.code, quick.stderr).toBe(0);
      expect(quick.stdout).toMatch(/the copies are equal/);
      const found = await mirrorfsCli(['verify', m.mountpoint, '--json']);
      expect(found.code).toBe(1);
      const report = JSON.parse(found.stdout);
      expect(report.differences.map((d: { path: string }) => d.path)).toEqual(['d/f']);
      expect(report.differences[0].copies.east).not.toBe(report.differences[0].copies.west);
      const repaired = await mirrorfsCli(['verify', m.mountpoint, '--repair']);
      expect(repaired.code).toBe(0);
      expect(repaired.stdout).toMatch(/d\/f:[\s\S]*repaired from (west|local copy)/);
      expect(readFileSync(join(east.dataDir, 'd/f'), 'utf8')).toBe('abcdefgh'.repeat(1000));
      expect((await mirrorfsCli(['verify', m.mountpoint])).stdout).toMatch(/the copies are equal/);
      // ...but a change of size is, also without them.
      writeFileSync(join(west.dataDir, 'd/f'), 'short');
      const sized = await mirrorfsCli(['verify', m.mountpoint, '--metadata-only', '--json']);
      expect(sized.code).toBe(1);
      expect(JSON.parse(sized.stdout).differences.map((d: { path: string }) => d.path)).toEqual(['d/f']);
      expect((await mirrorfsCli(['verify', m.mountpoint, '--repair'])).code).toBe(0);
      await expectConverged(m, [east, west]);
    });

    it('a root that differs on one copy is repaired alone, and differences below it are still found and repaired', async () => {
      const east = await spawnPeer({ name: 'east' });
      const west = await spawnPeer({ name: 'west' });
      const m = await startMount({ peers: [east, west], localCopy: true });
      writeFileSync(join(m.mountpoint, 'g'), 'abcdefgh'.repeat(100));
      // Behind the peers' backs: west's root mode, and one byte of g on east (same size and time).
      chmodSync(west.dataDir, 0o750);
      const before = statSync(join(east.dataDir, 'g'));
      const fd = openSync(join(east.dataDir, 'g'), 'r+');
      writeSync(fd, 'X', 10);
      closeSync(fd);
      utimesSync(join(east.dataDir, 'g'), before.atime, before.mtime);
      const found = await mirrorfsCli(['verify', m.mountpoint, '--json']);
      expect(found.code).toBe(1);
      expect(JSON.parse(found.stdout).differences.map((d: { path: string }) => d.path)).toEqual(['', 'g']);
      // Each from its own majority: the root from east and the local copy, g from west and the local copy.
      const repaired = await mirrorfsCli(['verify', m.mountpoint, '--repair', '--json']);
      expect(repaired.code, repaired.stdout).toBe(0);
      expect(JSON.parse(repaired.stdout).repaired).toBe(2);
      expect(statSync(west.dataDir).mode & 0o7777).toBe(statSync(east.dataDir).mode & 0o7777);
      expect(readFileSync(join(east.dataDir, 'g'), 'utf8')).toBe('abcdefgh'.repeat(100));
      await expectConverged(m, [east, west]);
    });

    it('with two copies split evenly, --repair needs --source to choose', async () => {
      const east = await spawnPeer({ name: 'east' });
      const west = await spawnPeer({ name: 'west' });
      const m = await startMount({ peers: [east, west] });
      writeFileSync(join(m.mountpoint, 'f'), 'original');
      writeFileSync(join(west.dataDir, 'f'), 'tampered');
      const tie = await mirrorfsCli(['verify', m.mountpoint, '--repair']);
      expect(tie.code).toBe(1);
      expect(tie.stdout).toMatch(/NOT repaired: the copies are split evenly; run verify --repair --source NAME/);
      const chosen = await mirrorfsCli(['verify', m.mountpoint, '--repair', '--source', 'east']);
      expect(chosen.code).toBe(0);
      expect(readFileSync(join(west.dataDir, 'f'), 'utf8')).toBe('original');
      await expectConverged(m, [east, west]);
    });
  });
});
