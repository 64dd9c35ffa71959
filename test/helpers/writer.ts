import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpDir } from './tmp.js';
import { waitFor } from './wait.js';

/**
 * A writer in its own process: creates a file, fills it, renames it into
 * place, and logs each step that returned success ("ok NAME") or the error
 * ("err NAME CODE"), until told to stop. What it logged as ok is what the
 * mount acknowledged, so it must be present everywhere afterwards.
 */
const PROGRAM = `
import { writeFileSync, appendFileSync, existsSync, renameSync } from 'node:fs';
const [dir, logFile, stopFile, tag] = process.argv.slice(1);
let i = 0;
while (!existsSync(stopFile)) {
  const name = tag + '-' + i;
  try {
    writeFileSync(dir + '/' + name + '.tmp', ('content of ' + name + '\\n').repeat(64));
    renameSync(dir + '/' + name + '.tmp', dir + '/' + name);
    appendFileSync(logFile, 'ok ' + name + '\\n');
  } catch (e) {
    appendFileSync(logFile, 'err ' + name + ' ' + e.code + '\\n');
    if (e.code === 'ENOTCONN' || e.code === 'ENOENT' && !existsSync(dir)) break;
  }
  i++;
}
`;

export interface WriterLog {
  acked: string[];
  errors: Array<{ name: string; code: string }>;
}

export interface Writer {
  proc: ChildProcess;
  /** What the log says so far. */
  log: () => WriterLog;
  /** Wait (bounded) until at least n writes were acknowledged since the writer started. */
  waitAcked: (n: number, timeoutMs?: number) => Promise<void>;
  /** Ask it to stop and wait (bounded) for it to exit. */
  stop: () => Promise<WriterLog>;
}

const live = new Set<Writer>();

export function startWriter(dir: string, tag: string): Writer {
  const base = tmpDir('mirrorfs-writer-');
  const logFile = join(base, 'log');
  const stopFile = join(base, 'stop');
  writeFileSync(logFile, '');
  const proc = spawn(process.execPath, ['--input-type=module', '-e', PROGRAM, '--', dir, logFile, stopFile, tag], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const log = (): WriterLog => {
    const out: WriterLog = { acked: [], errors: [] };
    for (const line of readFileSync(logFile, 'utf8').split('\n')) {
      const [kind, name, code] = line.split(' ');
      if (kind === 'ok') out.acked.push(name!);
      else if (kind === 'err') out.errors.push({ name: name!, code: code! });
    }
    return out;
  };
  const writer: Writer = {
    proc,
    log,
    waitAcked: async (n, timeoutMs = 30_000) => {
      await waitFor(() => log().acked.length >= n, `${n} acknowledged writes by ${tag}`, timeoutMs, 20);
    },
    stop: async () => {
      live.delete(writer);
      if (!existsSync(stopFile)) writeFileSync(stopFile, '');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
      return log();
    },
  };
  live.add(writer);
  return writer;
}

/** Stop every writer still running (afterEach). */
export async function cleanupWriters(): Promise<void> {
  await Promise.all([...live].map((w) => w.stop()));
}
