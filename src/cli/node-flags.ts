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
 */
export const SERVICE_V8_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/**
 * `execArgv` with the service flags added, each unless the same flag is
 * already given there or in NODE_OPTIONS (a user's own choice wins; V8 reads
 * `_` and `-` alike).
 */
export function withServiceFlags(execArgv: readonly string[], nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const named = (flag: string) => flag.split('=')[0]!.replace(/_/g, '-');
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)].map(named));
  return [...execArgv, ...SERVICE_V8_FLAGS.filter((f) => !given.has(named(f)))];
}
