import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll } from '../helpers/child.js';
import { MIRRORFS_BIN, cleanupMounts, isMounted, lazyUnmount, mountArgs } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { mkdirSync } from 'node:fs';

/** A Type=notify service: the mount tells $NOTIFY_SOCKET it is ready, once mounted. systemd stands in as a socket listener. */

const procs = new Set<ReturnType<typeof spawn>>();

afterEach(async () => {
  await killAll(procs);
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

describe('systemd readiness', () => {
  it('sends READY=1 and its MAINPID on NOTIFY_SOCKET only once the file system is mounted', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const base = tmpDir('mirrorfs-notify-');
    const socketPath = join(base, 'notify.sock');
    // What systemd does: a Unix datagram socket that prints each message it receives.
    const listener = spawn('python3', ['-u', '-c', 'import socket,sys\ns=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("bound", flush=True)\nwhile True:\n  m=s.recv(4096).decode()\n  print(m.replace("\\n", ";"), flush=True)', socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.add(listener);
    let heard = '';
    listener.stdout!.on('data', (d: Buffer) => (heard += d.toString()));
    await waitFor(() => heard.includes('bound'), 'the notify socket');
    const mountpoint = join(base, 'mnt');
    mkdirSync(mountpoint);
    const mount = spawn(process.execPath, [MIRRORFS_BIN, ...mountArgs(mountpoint, [east, west], join(base, 'state')), '--foreground'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: socketPath } });
    procs.add(mount);
    try {
      const message = await waitFor(() => /READY=1;MAINPID=(\d+);/.exec(heard), 'READY=1 on the notify socket', 30_000);
      expect(Number(message[1])).toBe(mount.pid);
      // Ready means mounted.
      expect(isMounted(mountpoint)).toBe(true);
    } finally {
      mount.kill('SIGTERM');
      await waitFor(() => mount.exitCode !== null, 'the mount stopping', 30_000).catch(() => undefined);
      if (isMounted(mountpoint)) lazyUnmount(mountpoint);
    }
  });
});
