import { readFileSync } from 'node:fs';

/**
 * How many connections a peer holds at once, and how long a connection may
 * take to prove who it is (issue 22: connections were unbounded, a session
 * without a certificate stayed open five minutes, a TCP connection that never
 * started TLS two; 260 idle ones under a 256-descriptor limit cut off a
 * trusted client).
 */

/** A connection must finish its TLS handshake and have a first request admitted (certificate, token) within this long. */
export const DEFAULT_ADMIT_TIMEOUT_MS = 10_000;

/** Descriptors kept for the peer itself (its state, the files it writes, syncfs, the listening socket). */
const DESCRIPTORS_KEPT = 128;

/**
 * The default cap on connections: half of what the descriptor limit leaves
 * after the peer's own (at least 16, at most 4096). Connections past it are
 * closed at once by the kernel-facing server, before TLS, so they cost no
 * descriptor for longer than their accept.
 */
export function defaultMaxConnections(limitsFile = '/proc/self/limits'): number {
  let soft = 1024;
  try {
    const line = readFileSync(limitsFile, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const value = line?.split(/\s{2,}/)[1];
    if (value !== undefined && value !== 'unlimited' && Number.isFinite(Number(value))) soft = Number(value);
    else if (value === 'unlimited') soft = 1 << 20;
  } catch {
    // Not Linux, or no /proc: the common default.
  }
  return Math.max(16, Math.min(4096, Math.floor((soft - DESCRIPTORS_KEPT) / 2)));
}
