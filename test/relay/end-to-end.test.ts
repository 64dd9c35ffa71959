import { afterEach, describe, expect, it } from 'vitest';
import { runCollect, runNode } from '../helpers/child.js';
import { cleanupLinks, spawnLink } from '../helpers/link.js';
import { cleanupMounts, mirrorfsCli, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Ack mode end-to-end (para. 41): a call returns once each route's first hop
 * holds the change; the change is "executing" until the far mirror commits
 * it. West is reached through a pure relay and an emulated far link.
 */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  await cleanupLinks();
  cleanupTmp();
});

const FSYNC_TIMEOUT_MS = 4000;

async function setUp() {
  const east = await spawnPeer({ name: 'east' });
  const mirror = await spawnPeer({ name: 'mirror' });
  const farLink = await spawnLink(mirror.port, '1ms');
  const relay = await spawnPeer({ name: 'relay', pure: true, extraArgs: ['--forward-to', farLink.url] });
  const west: PeerProcess = { ...relay, name: 'west' };
  const m = await startMount({ peers: [east, west], extraArgs: ['--ack-mode', 'end-to-end', '--fsync-timeout', String(FSYNC_TIMEOUT_MS)] });
  return { east, mirror, farLink, relay, m };
}

/** Write a file from another process (returns once the first hops hold it). */
function writeFile(path: string, content: string): Promise<string> {
  return runNode(`import { writeFileSync } from 'node:fs'; writeFileSync(ARGS[0], ARGS[1]);`, [path, content]);
}

function stateOf(path: string): Promise<string> {
  return runNode(`import { getAttributeSync } from 'fs-xattr'; process.stdout.write(getAttributeSync(ARGS[0], 'user.mirrorfs.state').toString());`, [path]);
}

/** fsync a file from another process; prints the wall-clock time it returned, or the error code. */
function fsyncFile(path: string) {
  return runCollect(process.execPath, [
    '--input-type=module', '-e',
    `import { openSync, fsyncSync } from 'node:fs'; const fd = openSync(process.argv[1], 'r+'); try { fsyncSync(fd); process.stdout.write('ok ' + Date.now()); } catch (e) { process.stdout.write('err ' + e.code); }`,
    '--', path,
  ], 60_000);
}

async function e2eStatus(mountpoint: string): Promise<{ ackMode: string; endToEnd: { executing: number; committed: number; fsyncWaiting: number } }> {
  const r = await mirrorfsCli(['status', mountpoint, '--json']);
  return JSON.parse(r.stdout);
}

describe('ack mode end-to-end', () => {
  it('a change is executing while the far link is cut and committed when it returns; fsync waits for it, bounded by its timeout', async () => {
    const { farLink, mirror, m } = await setUp();
    const a = `${m.mountpoint}/a`;
    await writeFile(a, 'first');
    expect((await fsyncFile(a)).stdout).toMatch(/^ok /);
    expect(await stateOf(a)).toBe('committed');

    await farLink.setMode('cut');
    const b = `${m.mountpoint}/b`;
    await writeFile(b, 'while the far link is cut'); // returns: the relay holds it
    expect(await stateOf(b)).toBe('executing');
    expect(await stateOf(a)).toBe('committed');
    const st = await e2eStatus(m.mountpoint);
    expect(st.ackMode).toBe('end-to-end');
    expect(st.endToEnd.executing).toBeGreaterThan(0);

    // Bounded: with the link still cut, fsync fails with EIO after the timeout.
    expect((await fsyncFile(b)).stdout).toBe('err EIO');

    // A barrier: an fsync issued while the link is cut returns only after it is restored.
    const pending = fsyncFile(b);
    await waitFor(async () => (await e2eStatus(m.mountpoint)).endToEnd.fsyncWaiting === 1, 'the fsync to wait for the far mirror');
    const restoredAt = Date.now();
    await farLink.setMode('up');
    const done = await pending;
    expect(done.stdout).toMatch(/^ok \d+$/);
    expect(Number(done.stdout.split(' ')[1])).toBeGreaterThanOrEqual(restoredAt);
    expect(await stateOf(b)).toBe('committed');
    expect((await e2eStatus(m.mountpoint)).endToEnd.executing).toBe(0);
    // The far mirror has it.
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(`${mirror.dataDir}/b`, 'utf8')).toBe('while the far link is cut');
  });

  it('the state xattr cannot be set or removed, and a missing name has none', async () => {
    const { m } = await setUp();
    await writeFile(`${m.mountpoint}/f`, 'x');
    const out = await runNode(
      `import { setAttributeSync, removeAttributeSync, getAttributeSync } from 'fs-xattr';
       const codes = [];
       for (const f of [() => setAttributeSync(ARGS[0], 'user.mirrorfs.state', 'committed'), () => removeAttributeSync(ARGS[0], 'user.mirrorfs.state'), () => getAttributeSync(ARGS[1], 'user.mirrorfs.state')]) {
         try { f(); codes.push('ok'); } catch (e) { codes.push(e.code); }
       }
       process.stdout.write(codes.join(' '));`,
      [`${m.mountpoint}/f`, `${m.mountpoint}/missing`],
    );
    expect(out).toBe('EPERM EPERM ENOENT');
  });

  it('mirrorfs status shows each hop of a route with its queue', async () => {
    const { farLink, m } = await setUp();
    await farLink.setMode('cut');
    await writeFile(`${m.mountpoint}/queued`, 'waits at the relay');
    const r = await mirrorfsCli(['status', m.mountpoint]);
    expect(r.stdout).toMatch(/ack mode\s+end-to-end \(\d+ changes executing/);
    expect(r.stdout).toMatch(/west route: relay \[queue [1-9]\d*, oldest \d+ ms.*\] -> /);
    await farLink.setMode('up');
  });
});
