import { spawn } from 'node:child_process';
import type { Logger } from '../log.js';

/**
 * Tell systemd the mount is ready (Type=notify units): READY=1 and MAINPID on
 * $NOTIFY_SOCKET. Node cannot send on a Unix datagram socket, so a small
 * python3 process sends it and stays two seconds, long enough for systemd to
 * find which unit it belongs to (the reason the unit needs NotifyAccess=all).
 * Without NOTIFY_SOCKET this does nothing.
 */
export function notifyReady(log: Logger): void {
  const socket = process.env.NOTIFY_SOCKET;
  if (!socket) return;
  const program = [
    'import os, socket, sys, time',
    'a = sys.argv[1]',
    'a = "\\0" + a[1:] if a.startswith("@") else a',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    's.connect(a)',
    's.send(("READY=1\\nMAINPID=" + sys.argv[2] + "\\n").encode())',
    'time.sleep(2)',
  ].join('\n');
  const child = spawn('python3', ['-c', program, socket, String(process.pid)], { stdio: 'ignore', detached: true });
  child.on('error', (err) => log.warn({ err: err.message }, 'cannot notify systemd that the mount is ready (python3 missing?): use Type=simple'));
  child.on('exit', (code) => {
    if (code !== 0) log.warn({ code }, 'notifying systemd that the mount is ready failed');
  });
  child.unref();
}
