import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync, readFileSync, existsSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SERVICE_V8_FLAGS } from '../../src/cli/node-flags.js';
import { encodeFrame } from '../../src/protocol/codec.js';
import { run, runCollect } from '../helpers/child.js';
import { MIRRORFS_BIN, cleanupMounts, isMounted, lazyUnmount, mountArgs, mountStatus, startMount, waitAllInSync } from '../helpers/mount.js';
import { compareDirs } from '../helpers/tree.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { mountTlsArgs, testPeerKeyPair } from '../helpers/tls.js';

/** Mounting, refusing to mount, status, unmounting, and dead mounts, through the real CLI. */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

/** Run the mirrorfs CLI; resolves with exit code and output (never throws on a non-zero exit). */
function cli(args: string[], timeoutMs = 60_000) {
  return runCollect(process.execPath, [MIRRORFS_BIN, ...args], timeoutMs);
}

function fresh() {
  const base = tmpDir('mirrorfs-life-');
  const mountpoint = join(base, 'mnt');
  mkdirSync(mountpoint);
  return { mountpoint, stateDir: join(base, 'state') };
}

describe('mount refuses, with a message that says what to do', () => {
  it('when a peer is unreachable', async () => {
    const east = await spawnPeer({ name: 'east' });
    const { mountpoint, stateDir } = fresh();
    const dead = { ...east, name: 'west', url: 'https://127.0.0.1:1' };
    const r = await cli([...mountArgs(mountpoint, [east, dead], stateDir), '--foreground', '--peer-timeout', '1000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/peer west \(https:\/\/127\.0\.0\.1:1\) is unreachable.*Start mirrorfs-peer there/);
    expect(isMounted(mountpoint)).toBe(false);
  });

  it('when a peer speaks another protocol version', async () => {
    // A server answering as a future peer would: it refuses our version.
    const server = http2.createSecureServer({ ...testPeerKeyPair(), allowHTTP1: false });
    server.on('stream', (stream) => {
      stream.respond({ ':status': 426, 'mirrorfs-protocol': '3' });
      stream.end(encodeFrame({ ok: false, error: { errno: 'EPROTO', code: 'MFS_PROTOCOL_MISMATCH', message: 'MFS_PROTOCOL_MISMATCH: peer speaks mirrorfs protocol 3, client sent "2"' } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const east = await spawnPeer({ name: 'east' });
      const future = { ...east, name: 'west', url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` };
      const { mountpoint, stateDir } = fresh();
      const r = await cli([...mountArgs(mountpoint, [east, future], stateDir), '--foreground']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/peer west .* speaks another protocol version.*protocol 3.*Run the same mirrorfs version/);
    } finally {
      server.close();
    }
  });

  it('when the token is wrong', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west', token: 'a-different-token-for-west-0000' });
    const { mountpoint, stateDir } = fresh();
    const r = await cli([...mountArgs(mountpoint, [east, west], stateDir), '--foreground']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/peer west .* refused our token: check --token-file/);
  });

  it('when the peers hold different trees', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    writeFileSync(join(east.dataDir, 'only-on-east'), 'x');
    const { mountpoint, stateDir } = fresh();
    const r = await cli([...mountArgs(mountpoint, [east, west], stateDir), '--foreground']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/peers east and west hold different trees[\s\S]*only-on-east: only on east[\s\S]*cannot be reconciled automatically[\s\S]*--resync-from NAME/);
  });

  it('when the peers are owned by another live mount', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    await startMount({ peers: [east, west] });
    const { mountpoint, stateDir } = fresh();
    const r = await cli([...mountArgs(mountpoint, [east, west], stateDir), '--foreground']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/peer east is owned by mount .* since .*another primary may be using these peers/);
  });

  it('when the mount point is not empty, already mounted, or missing', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const { mountpoint, stateDir } = fresh();
    writeFileSync(join(mountpoint, 'x'), 'x');
    let r = await cli([...mountArgs(mountpoint, [east, west], stateDir), '--foreground']);
    expect(r.stderr).toMatch(/is not empty/);
    r = await cli([...mountArgs(join(mountpoint, 'nope'), [east, west], stateDir), '--foreground']);
    expect(r.stderr).toMatch(/does not exist \(create it: mkdir -p/);
    const live = await startMount({ peers: [east, west] });
    r = await cli([...mountArgs(live.mountpoint, [east, west], live.stateDir), '--foreground']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is already mounted .*mirrorfs unmount/);
  });
});

describe('configuration and help', () => {
  it('peers, URLs, routes and tokens can come from a config file', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west', token: 'west-has-its-own-token-000000' });
    const { mountpoint, stateDir } = fresh();
    const config = join(stateDir, '..', 'config.json');
    writeFileSync(config, JSON.stringify({ tokenFile: east.tokenFile, tlsIdentity: mountTlsArgs()[1], trust: mountTlsArgs()[3], peers: { east: { routes: ['https://127.0.0.1:1', east.url] }, west: { url: west.url, tokenFile: west.tokenFile } } }));
    const r = await cli(['mount', mountpoint, '--peers', 'east,west', '--config', config, '--state-dir', stateDir]);
    const pid = /pid (\d+)/.exec(r.stdout)?.[1];
    try {
      expect(r.stdout).toMatch(/mounted/);
      writeFileSync(join(mountpoint, 'via-config'), 'yes');
      expect(readFileSync(join(west.dataDir, 'via-config'), 'utf8')).toBe('yes');
      expect(readFileSync(join(east.dataDir, 'via-config'), 'utf8')).toBe('yes');
      // east's first route refuses connections: the second one is in use
      expect((await mountStatus(mountpoint)).peers.find((p) => p.name === 'east')?.route).toBe(east.url);
    } finally {
      await cli(['unmount', mountpoint]);
      if (isMounted(mountpoint)) lazyUnmount(mountpoint);
      if (pid) try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
    }
    const bad = join(stateDir, '..', 'bad.json');
    writeFileSync(bad, JSON.stringify({ peers: { east: { url: 'not a url' } } }));
    const refused = await cli(['mount', mountpoint, '--peers', 'east', '--config', bad, '--state-dir', stateDir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/config file .*bad\.json: peers\.east\.url/);
  });

  it('every command has --help', async () => {
    for (const args of [['--help'], ['mount', '--help'], ['status', '--help'], ['unmount', '--help'], ['verify', '--help']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: mirrorfs/);
    }
    expect((await cli(['mount', '--help'])).stdout).toMatch(/--ack <policy>[\s\S]*all, quorum[\s\S]*--resync-from <peer>/);
    const tokenFile = join(tmpDir('mirrorfs-help-'), 'token');
    writeFileSync(tokenFile, 'some-token-0123456789abcdef');
    const badAck = await cli(['mount', '/nonexistent', '--peers', 'a=http://127.0.0.1:1,b=http://127.0.0.1:2', '--token-file', tokenFile, '--ack', '3', '--insecure-cleartext']);
    expect(badAck.code).toBe(1);
    expect(badAck.stderr).toMatch(/--ack: give all, quorum, a number of peers from 1 to 2, or 0 for the asynchronous mode/);
    const peer = await run(process.execPath, [MIRRORFS_BIN.replace('mirrorfs.js', 'mirrorfs-peer.js'), '--help']);
    expect(peer).toMatch(/Usage: mirrorfs-peer[\s\S]*--data <dir>[\s\S]*--token-file/);
  });
});

describe('running a mount', () => {
  it('in the background: mount, write, status, unmount', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const { mountpoint, stateDir } = fresh();
    const r = await cli(mountArgs(mountpoint, [east, west], stateDir));
    try {
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/mounted .* in the background \(pid \d+, log /);
      expect(isMounted(mountpoint)).toBe(true);
      writeFileSync(join(mountpoint, 'hello'), 'world');
      const status = await cli(['status', mountpoint]);
      // applied and durable points (a dash before the first lease renewal), then p50, p99, operations
      expect(status.stdout).toMatch(/peer\s+address\s+state\s+connected\s+applied\s+durable\s+p50/);
      expect(status.stdout).toMatch(/east\s+https:\/\/127\.0\.0\.1:\d+\s+in sync\s+yes\s+(\d+|-)\s+.*\d+\s+\d+\s+\d+/);
      expect(status.stdout).toMatch(/commit\s+applied: changes applied on the peers before they return/);
      expect(status.stdout).toMatch(/west\s+https:\/\/127\.0\.0\.1:\d+\s+in sync\s+yes/);
      const json = JSON.parse((await cli(['status', mountpoint, '--json'])).stdout);
      expect(json.peers.map((p: { name: string }) => p.name)).toEqual(['east', 'west']);
      expect(json.peers[0].bytes).toBeGreaterThanOrEqual(5);
      expect(json.peers[0].operations).toBeGreaterThan(0);
      expect(json.peers[0].latencyUsP50).toBeGreaterThan(0);
      // The background process runs with the service's V8 flags (src/cli/node-flags.ts).
      expect(readFileSync(`/proc/${json.pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining([...SERVICE_V8_FLAGS]));
      // Its memory, as the process itself counts it (an operator tells a leak from an uncollected heap).
      expect(json.memory.rss).toBeGreaterThan(json.memory.heapUsed);
      expect(json.memory.heapTotal).toBeGreaterThanOrEqual(json.memory.heapUsed);
      expect(json.memory.external).toBeGreaterThanOrEqual(json.memory.arrayBuffers);
      expect(json.memory.heapUsed).toBeGreaterThan(1024 * 1024);
      // The comparison of the peers' trees at mount time says it is alive as it goes (at a million
      // entries it outlasts the launcher's patience for a silent log), whatever the log level.
      const logLines = readFileSync(join(stateDir, 'mount.log'), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { job?: string; msg?: string });
      expect(logLines.some((l) => l.job === "comparing the peers' trees" && l.msg === 'started')).toBe(true);
      expect(logLines.some((l) => l.job === "comparing the peers' trees" && l.msg === 'finished')).toBe(true);
      const u = await cli(['unmount', mountpoint]);
      expect(u.stdout).toMatch(/unmounted/);
      expect(isMounted(mountpoint)).toBe(false);
      expect(readFileSync(join(east.dataDir, 'hello'), 'utf8')).toBe('world');
    } finally {
      if (isMounted(mountpoint)) lazyUnmount(mountpoint);
      const pid = /pid (\d+)/.exec(r.stdout)?.[1];
      if (pid) try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
  });

  it('SIGTERM drains and unmounts; a remount continues as the same writer', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const first = await startMount({ peers: [east, west] });
    writeFileSync(join(first.mountpoint, 'a'), 'first session');
    await first.stop();
    expect(isMounted(first.mountpoint)).toBe(false);
    expect(first.stderr()).toContain('"msg":"unmounted"');
    const second = await startMount({ peers: [east, west], mountpoint: first.mountpoint, stateDir: first.stateDir });
    writeFileSync(join(second.mountpoint, 'b'), 'second session');
    expect(readFileSync(join(second.mountpoint, 'a'), 'utf8')).toBe('first session');
    expect(readFileSync(join(west.dataDir, 'b'), 'utf8')).toBe('second session');
  });

  it('a dead mount left by a crash is reported, and cleared by mirrorfs unmount', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const m = await startMount({ peers: [east, west] });
    m.proc.kill('SIGKILL');
    await waitFor(() => m.proc.exitCode !== null || m.proc.signalCode !== null, 'mount process to die');
    expect(isMounted(m.mountpoint)).toBe(true);
    const r = await cli([...mountArgs(m.mountpoint, [east, west], m.stateDir), '--foreground']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is a dead mount .* Clear it with: mirrorfs unmount/);
    const st = await cli(['status', m.mountpoint]);
    expect(st.stderr).toMatch(/no mirrorfs process answers .*mirrorfs unmount/);
    const u = await cli(['unmount', m.mountpoint]);
    expect(u.stdout).toMatch(/cleared the dead mount/);
    expect(isMounted(m.mountpoint)).toBe(false);
    // and it mounts again
    const again = await startMount({ peers: [east, west], mountpoint: m.mountpoint, stateDir: m.stateDir });
    expect(existsSync(again.mountpoint)).toBe(true);
  });

  it('a peer error maps to the same errno; peers that disagree give EIO, logged, and the odd one is repaired', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const m = await startMount({ peers: [east, west], localCopy: true });
    const enoent = await run('rmdir', [join(m.mountpoint, 'not-there')]).then(() => null, (e: Error) => e);
    expect(enoent?.message).toMatch(/No such file or directory/);
    // Plant a difference behind the mount's back: "clash" exists on east only, as a file.
    writeFileSync(join(east.dataDir, 'clash'), 'planted');
    const err = await run('mkdir', [join(m.mountpoint, 'clash')]).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/Input\/output error/);
    await waitFor(() => m.stderr().includes('peers disagree on the outcome'), 'the disagreement log line');
    expect(m.stderr()).toMatch(/east: EEXIST.*west: ok/);
    // west committed the mkdir, so it is rolled forward: east's "clash" is repaired from west
    await waitAllInSync(m.mountpoint);
    expect(lstatSync(join(east.dataDir, 'clash')).isDirectory()).toBe(true);
    await run('mkdir', [join(m.mountpoint, 'next')]);
    // the kernel remembers the failed name as absent for the negative-lookup cache time (1 s)
    await waitFor(() => existsSync(join(m.mountpoint, 'clash')), 'the rolled-forward name to be visible through the mount');
    expect(compareDirs([{ label: 'mount', dir: m.mountpoint }, { label: 'local', dir: m.localCopyDir! }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
  });
});

describe('a peer that stops answering', () => {
  it('makes a change fail with EIO within the peer timeout, refuses the next, and catches the peer up after SIGCONT', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const m = await startMount({ peers: [east, west], localCopy: true, extraArgs: ['--peer-timeout', '1000'] });
    writeFileSync(join(m.mountpoint, 'before'), 'ok');
    west.proc.kill('SIGSTOP');
    try {
      // bounded: run() kills the writer after 30 s, far above the 1 s peer timeout
      const err = await run('sh', ['-c', `echo x > ${join(m.mountpoint, 'during')}`], 30_000).then(() => null, (e: Error) => e);
      expect(err?.message).toMatch(/Input\/output error/);
      // logs are written asynchronously: wait (bounded) for the line
      await waitFor(() => /"peer":"west".*peer is behind/.test(m.stderr()), 'the peer-is-behind log line');
      // ack all: the next change is refused before it is sent anywhere
      const again = await run('mkdir', [join(m.mountpoint, 'later')], 30_000).then(() => null, (e: Error) => e);
      expect(again?.message).toMatch(/Input\/output error/);
      expect(existsSync(join(east.dataDir, 'later'))).toBe(false);
      const status = await cli(['status', m.mountpoint]);
      expect(status.stdout).toMatch(/west\s+http\S+\s+(down since \S+|catching up) \(1 ops, 0 B behind/);
      // the reason names the timeout: why it fell behind, or, once its catch-up loop has begun, why that waits.
      // The cause, not the wording: under load the catch-up's TLS handshake times out first, with its own message.
      expect(status.stdout).toMatch(/west: (since seq \d+|catch-up waits): MFS_TIMEOUT\b/);
    } finally {
      west.proc.kill('SIGCONT');
    }
    // the change east committed (the create) is rolled forward to west; then changes flow again
    await waitAllInSync(m.mountpoint);
    expect(existsSync(join(west.dataDir, 'during'))).toBe(true);
    await run('mkdir', [join(m.mountpoint, 'later')]);
    await waitFor(() => existsSync(join(m.mountpoint, 'during')), 'the rolled-forward name to be visible through the mount');
    expect(compareDirs([{ label: 'mount', dir: m.mountpoint }, { label: 'local', dir: m.localCopyDir! }, { label: 'east', dir: east.dataDir }, { label: 'west', dir: west.dataDir }])).toEqual([]);
  });
});
