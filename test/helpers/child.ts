import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Run a small Node program in a separate process (syscalls into a mount must
 * never come from the process serving it; here they also run concurrently).
 * The program sees its arguments as ARGS. Resolves with stdout; rejects with
 * stderr on a non-zero exit or after timeoutMs.
 */
export function runNode(source: string, args: string[] = [], timeoutMs = 120_000): Promise<string> {
  const program = `const ARGS = process.argv.slice(1);\n${source}`;
  return run(process.execPath, ['--input-type=module', '-e', program, '--', ...args], timeoutMs);
}

/** Run a command; resolves with stdout, rejects with its output on a non-zero exit. */
export async function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await runCollect(cmd, args, timeoutMs);
  if (r.code === 0) return r.stdout;
  throw new Error(`${cmd} exited ${r.code}: ${r.stderr || r.stdout}`);
}

/** Run a command; resolves with its exit code and output whatever the code. Rejects only after timeoutMs (and kills it). */
export function runCollect(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ').slice(0, 80)} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** SIGKILL every process of a set that is still running, and wait until each has exited. */
export async function killAll(procs: Iterable<ChildProcess>): Promise<void> {
  await Promise.all(
    [...procs].map(
      (p) =>
        new Promise<void>((r) => {
          if (p.exitCode !== null || p.signalCode !== null) return r();
          p.once('exit', () => r());
          p.kill('SIGKILL');
        }),
    ),
  );
}
