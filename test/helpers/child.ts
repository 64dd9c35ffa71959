import { spawn } from 'node:child_process';

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

export function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ').slice(0, 80)} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited ${code}: ${err || out}`));
    });
  });
}
