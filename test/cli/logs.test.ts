import { afterEach, describe, expect, it } from 'vitest';
import { runCollect, runNode } from '../helpers/child.js';
import { cleanupMounts, startMount } from '../helpers/mount.js';
import { PEER_BIN, cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp, removeAtCleanup, tmpDir } from '../helpers/tmp.js';
import { peerTlsArgs } from '../helpers/tls.js';

/** Logs: JSON by default, readable lines on a terminal, and error lines that name the peer, the path and the errno. */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

const jsonLines = (text: string) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('logs', () => {
  it('are JSON lines when stderr is not a terminal, and readable lines on a terminal', async () => {
    const east = await spawnPeer({ name: 'east' });
    await east.stop();
    const lines = east.stderr().split('\n').filter(Boolean);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    // The lines written while stopping reach stderr before the process exits (they used to be lost under load).
    expect(jsonLines(east.stderr()).map((l) => l.msg)).toEqual(expect.arrayContaining(['peer listening', 'signal received', 'peer stopped']));
    // Under script(1) stderr is a pseudo-terminal: pino-pretty lines, not JSON. The shell stops
    // the peer with SIGTERM once it listens (ss shows its socket; at most 30 s), not after a
    // fixed time, which a busy machine can outlast before the peer has started.
    const data = tmpDir('mirrorfs-tty-');
    removeAtCleanup(`${data}.state`); // where the peer keeps its state
    const peer = [process.execPath, PEER_BIN, '--data', data, '--listen', '127.0.0.1:0', '--token-file', `${data}/token`, ...peerTlsArgs()].join(' ');
    const command = `sh -c '${peer} & p=$!; i=0; while [ $i -lt 300 ] && ! ss -ltnpH | grep -q "pid=$p,"; do sleep 0.1; i=$((i+1)); done; kill -TERM $p; wait $p'`;
    const r = await runCollect('script', ['-qec', command, '/dev/null'], 30_000);
    expect(r.stdout).toMatch(/\[\d\d:\d\d:\d\d\.\d{3}\] .*INFO.* \(peer:[^)]+\): .*peer listening/);
    expect(r.stdout).toMatch(/INFO.*: .*signal received[^\n]*\r?\n[^\n]*signal[^\n]*SIGTERM/);
    expect(r.stdout).not.toMatch(/^\{"level"/m);
  });

  it('every error line of a failing change names the peer, the path and the errno', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    // ack 1: west's absence is an error (it lacks changes) but the writer goes on.
    const lenient = await startMount({ peers: [east, west], extraArgs: ['--ack', '1', '--peer-timeout', '1000'] });
    await west.stop();
    await runNode(`import { writeFileSync } from 'node:fs'; writeFileSync(ARGS[0] + '/while-west-is-down', 'x');`, [lenient.mountpoint]);
    await lenient.stop();
    // ack all: the same absence fails the call.
    const westAgain = await west.restart();
    const strict = await startMount({ peers: [east, westAgain], stateDir: lenient.stateDir, extraArgs: ['--peer-timeout', '1000'] });
    await westAgain.kill9();
    await runNode(`import { writeFileSync } from 'node:fs'; try { writeFileSync(ARGS[0] + '/refused', 'x'); } catch (e) { if (e.code !== 'EIO') throw e; }`, [strict.mountpoint]);
    await strict.stop();
    const errors = [...jsonLines(lenient.stderr()), ...jsonLines(strict.stderr())].filter((l) => (l.level as number) >= 50);
    expect(errors.map((l) => l.msg)).toEqual(expect.arrayContaining([expect.stringMatching(/^peer is behind/), expect.stringMatching(/^operation failed/)]));
    for (const line of errors) {
      expect(line, JSON.stringify(line)).toMatchObject({ peer: expect.stringMatching(/west/), errno: expect.stringMatching(/^E[A-Z]+$/) });
      expect(line, JSON.stringify(line)).toHaveProperty('path');
    }
    expect(errors.find((l) => /^peer is behind/.test(l.msg as string))).toMatchObject({ peer: 'west', path: 'while-west-is-down' });
    expect(errors.find((l) => /^operation failed/.test(l.msg as string))).toMatchObject({ peer: 'west', path: 'refused', errno: 'EIO' });
  });
});
