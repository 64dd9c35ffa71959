import { chmodSync, chownSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupMounts, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

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
        const dir = join(p.dataDir, '.mirrorfs');
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
