import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureIdentity } from '../../src/security/identity.js';
import { Trust } from '../../src/security/trust.js';
import { cleanupMounts, startMount } from '../helpers/mount.js';
import { PEER_BIN, cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { runCollect } from '../helpers/child.js';
import { peerTlsArgs, testTlsDir } from '../helpers/tls.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 22: the files that hold payloads and every change's subject (the mount's
 * journal, a peer's state) are readable by their owner alone whatever the umask,
 * and an existing state directory with a looser mode is tightened.
 */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);

describe('a peer\'s state is out of the tree by default', () => {
  it('a new peer keeps it beside its data directory; one set up before keeps <data>/.mirrorfs and says how to move it', async () => {
    const fresh = await spawnPeer({ name: 'fresh' });
    await fresh.client().handshake('state-test', 1);
    expect(existsSync(join(`${fresh.dataDir}.state`, 'peer.db'))).toBe(true);
    // In the tree only the mark that ties it to that state: a file holding the peer id.
    expect(statSync(join(fresh.dataDir, '.mirrorfs')).isFile()).toBe(true);
    expect(readFileSync(join(fresh.dataDir, '.mirrorfs'), 'utf8').trim()).toBe((await fresh.client().status()).id);
    expect(fresh.stderr()).not.toContain('inside its data directory');
    // The layout before issue 22: the state inside the tree, still used (and still hidden from mounts), loudly.
    const dataDir = join(tmpDir('mirrorfs-legacy-'), 'data');
    const legacy = await spawnPeer({ name: 'legacy', dataDir, legacyState: true });
    await legacy.client().handshake('state-test', 1);
    expect(existsSync(join(dataDir, '.mirrorfs', 'peer.db'))).toBe(true);
    expect(existsSync(join(`${dataDir}.state`, 'peer.db'))).toBe(false);
    expect(legacy.stderr()).toMatch(/this peer's state is inside its data directory .* move it beside the tree/);
  });
});

describe('the data tree is marked as its state\'s', () => {
  it('a peer whose data was replaced under a kept state refuses to start rather than claim its history; so does one given another peer\'s tree', async () => {
    const east = await spawnPeer({ name: 'east' });
    const c = east.client();
    await c.handshake('mark-test', 1);
    await c.call({ op: 'mkdir', path: 'd', mode: 0o755, mount: 'mark-test', epoch: 1, seq: 1 });
    const oldId = (await c.status()).id;
    expect(readFileSync(join(east.dataDir, '.mirrorfs'), 'utf8').trim()).toBe(oldId);
    await east.kill9();
    // A new, empty disk where the data was; the state beside it survived.
    rmSync(east.dataDir, { recursive: true });
    mkdirSync(east.dataDir);
    const start = (extra: string[] = []) => runCollect(process.execPath, [PEER_BIN, '--data', east.dataDir, '--listen', '127.0.0.1:0', '--token-file', east.tokenFile, ...peerTlsArgs(), ...extra], 20_000);
    const refused = await start();
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is empty and unmarked, but the state in .* has peer .* history: the data was replaced/);
    expect(existsSync(join(east.dataDir, '.mirrorfs'))).toBe(false);
    // As the message says: the state moved aside, it starts as a new peer (which the next mount rebuilds).
    renameSync(east.stateDir, `${east.stateDir}.old`);
    const fresh = await spawnPeer({ name: 'east', dataDir: east.dataDir });
    const newId = (await fresh.client().status()).id;
    expect(newId).not.toBe(oldId);
    await fresh.stop();
    // The old state on the new peer's tree: refused, naming both.
    const mixed = await start(['--state', `${east.stateDir}.old`, '--token-file', east.tokenFile.replace(east.stateDir, `${east.stateDir}.old`)]);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toContain(`belongs to peer ${newId}, but the state in ${east.stateDir}.old is peer ${oldId}'s`);
  });
});

describe('a local user on a filer', () => {
  it('cannot swap the peer\'s state, even through a root the mount made writable by everyone (finding 3)', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const m = await startMount({ peers: [east, west] });
    chmodSync(m.mountpoint, 0o777); // allowed: the tree is the mount's
    expect(modeOf(east.dataDir)).toBe('777');
    chmodSync(dirname(east.dataDir), 0o755); // a filer's /srv: anyone may look in
    expect(modeOf(east.stateDir)).toBe('700');
    // The steps of the finding, as uid 2100: move the state away, make a new one trusting a rogue key.
    const rogue = (await ensureIdentity(join(tmpDir('mirrorfs-rogue-'), 'tls'), 'rogue')).identity;
    chmodSync(rogue.dir, 0o755);
    const planted = join(east.dataDir, '.mirrorfs');
    execFileSync('setpriv', ['--reuid', '2100', '--regid', '2100', '--clear-groups', '--', 'sh', '-c',
      `mv ${planted} ${join(east.dataDir, 'stolen')} 2>/dev/null; mkdir ${planted} && printf '%s rogue roles=mount\\n' ${rogue.fingerprint} > ${planted}/trust && printf '%s\\n' rogue-token-0123456789abcdef > ${planted}/token`]);
    expect(readFileSync(join(planted, 'trust'), 'utf8')).toContain(rogue.fingerprint);
    const asRogue = (p: PeerProcess) => p.client({ token: 'rogue-token-0123456789abcdef', transport: { kind: 'tls', identity: rogue, trust: new Trust(join(testTlsDir(), 'trust')) } });
    // The peer's state was never in the tree: the rogue key is refused, the mount goes on, running and after a restart.
    await expect(asRogue(east).status()).rejects.toMatchObject({ code: 'MFS_AUTH_CERT' });
    writeFileSync(join(m.mountpoint, 'after'), 'still mirrored');
    expect(readFileSync(join(east.dataDir, 'after'), 'utf8')).toBe('still mirrored');
    const restarted = await east.restart();
    await expect(asRogue(restarted).status()).rejects.toMatchObject({ code: 'MFS_AUTH_CERT' });
    expect(existsSync(join(planted, 'peer.db'))).toBe(false);
    await waitFor(() => { writeFileSync(join(m.mountpoint, 'after-restart'), 'yes'); return readFileSync(join(restarted.dataDir, 'after-restart'), 'utf8') === 'yes'; }, 'a write reaching the restarted peer');
  });
});

describe('state files and directories are private', () => {
  it('journal.db, peer.db and their WAL files are 0600, state directories 0700, even when they existed looser', async () => {
    const previous = process.umask(0o022); // what most services run with: files 0644 unless asked otherwise
    try {
      const east = await spawnPeer({ name: 'east' });
      const west = await spawnPeer({ name: 'west' });
      const stateDir = join(tmpDir('mirrorfs-private-'), 'state');
      mkdirSync(stateDir, { mode: 0o755 });
      chmodSync(stateDir, 0o755);
      // Left by an older build: a journal and its WAL file readable by everyone.
      for (const f of ['journal.db', 'journal.db-wal']) {
        writeFileSync(join(stateDir, f), '');
        chmodSync(join(stateDir, f), 0o644);
      }
      const m = await startMount({ peers: [east, west], stateDir });
      writeFileSync(join(m.mountpoint, 'f'), 'x'); // so every database has written its WAL
      expect(modeOf(stateDir)).toBe('700');
      for (const f of ['journal.db', 'journal.db-wal', 'mount-id']) if (existsSync(join(stateDir, f))) expect(modeOf(join(stateDir, f)), f).toMatch(/^[46]00$/);
      expect(modeOf(join(stateDir, 'journal.db'))).toBe('600');
      for (const p of [east, west]) {
        const dir = p.stateDir;
        expect(modeOf(dir)).toBe('700');
        expect(modeOf(join(dir, 'peer.db'))).toBe('600');
        expect(modeOf(join(dir, 'peer.db-wal'))).toBe('600');
      }
    } finally {
      process.umask(previous);
    }
  });

  it('a state directory that belongs to another user is refused, saying whose it is', async () => {
    const east = await spawnPeer({ name: 'east' });
    const stateDir = join(tmpDir('mirrorfs-private-'), 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    chownSync(stateDir, 2100, 2100);
    await expect(startMount({ peers: [east], stateDir })).rejects.toThrow(/belongs to uid 2100, not to this user/);
  });
});
