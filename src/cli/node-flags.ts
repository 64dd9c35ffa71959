/**
 * V8 flags for the long-running processes (a mount, a peer): put on the node
 * command line by the installed commands (install-helpers) and by `mirrorfs
 * mount` when it starts its background process. They cannot be set from
 * inside: V8 sizes its heap when the process starts.
 *
 * --max-semi-space-size: V8's young generation grows to 16 MiB per semi-space
 * by default, and is only collected when JavaScript objects fill it. The
 * mount and the peers allocate few objects but many short-lived buffers
 * (HTTP/2 chunks of every answer), which wait in it, and the heap keeps its
 * pages. Under fsbench the mount's peak was 181-197 MiB with the default,
 * 154-165 with 8 MiB and 149-160 with 4 MiB; a peer's 165-181, 157-168 and
 * 143-148; throughput differed by no more than this machine's noise
 * (docs/PERFORMANCE.md, session 7).
 *
 * --heap-growing-percent: after each full collection V8 lets the old
 * generation grow to several times what survived before it collects again.
 * Walking a tree of 100,000 files through the mount promotes many short-lived
 * listings; the mount's peak went to 310-323 MiB with 62-97 MiB live. With
 * growth held to 20% it peaked at 197-201 MiB for 3-7% more CPU time
 * (--optimize-for-size: 189-194 MiB for 22% more CPU; docs/PERFORMANCE.md,
 * session 19).
 *
 * --no-incremental-marking-task: V8 starts a full collection's marking from a
 * background task as soon as the old generation nears a soft limit. Reading
 * from the peers, every answer's chunks (HTTP/2, TLS) and every FUSE read's
 * buffer are short-lived memory, and those tasks started a full collection
 * every 60-150 ms on a 16 MiB heap: the mount spent about 40% of its CPU
 * marking and sweeping. Without the task, marking starts when allocation
 * reaches the limit. Three cold 512 MiB reads through a mount over TLS: about
 * 150 full collections -> 105, the mount's CPU 10.4-11.7 s -> 8.2-10.3 s;
 * the peak memory of the scale bench at 100,000 files did not move
 * (docs/PERFORMANCE.md, session 20).
 */
export const SERVICE_V8_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=20', '--no-incremental-marking-task'];

/**
 * `execArgv` with the service flags added, each unless the same flag is
 * already given there or in NODE_OPTIONS (a user's own choice wins; V8 reads
 * `_` and `-` alike).
 */
export function withServiceFlags(execArgv: readonly string[], nodeOptions = process.env.NODE_OPTIONS ?? '', flags: readonly string[] = SERVICE_V8_FLAGS): string[] {
  // `--no-x` names the same flag as `--x` (a user who turns one off is not overruled).
  const named = (flag: string) => flag.split('=')[0]!.replace(/_/g, '-').replace(/^--no-/, '--');
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)].map(named));
  return [...execArgv, ...flags.filter((f) => !given.has(named(f)))];
}
