import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { LinkMode, LinkStatus } from '../../src/link/emulator.js';
import { killAll } from './child.js';

export const LINK_BIN = resolve(import.meta.dirname, '../../dist/cli/mirrorfs-link.js');

export interface LinkProcess {
  port: number;
  url: string;
  proc: ChildProcess;
  setMode: (mode: LinkMode) => Promise<LinkStatus>;
  status: () => Promise<LinkStatus>;
}

const live = new Set<ChildProcess>();

/** Start a real `mirrorfs-link run` process in front of 127.0.0.1:targetPort and wait until it listens. */
export async function spawnLink(targetPort: number, delay = '0'): Promise<LinkProcess> {
  const proc = spawn(process.execPath, [LINK_BIN, 'run', '--to', `127.0.0.1:${targetPort}`, '--delay', delay], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const { port, control } = await new Promise<{ port: number; control: number }>((resolvePorts, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`link did not start within 10 s: ${err}`)), 10_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = / on [^ ]+:(\d+) -> .* control [^ ]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePorts({ port: Number(m[1]), control: Number(m[2]) });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`link exited with ${code}: ${err}`));
    });
  });
  const call = async (method: string, path: string) => {
    const res = await fetch(`http://127.0.0.1:${control}${path}`, { method, signal: AbortSignal.timeout(5000) });
    return (await res.json()) as LinkStatus;
  };
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    proc,
    setMode: (mode) => call('POST', `/mode/${mode}`),
    status: () => call('GET', '/status'),
  };
}

export async function cleanupLinks(): Promise<void> {
  await killAll(live);
}
