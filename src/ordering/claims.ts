import type { Mutation, MutationRequest } from '../protocol/ops.js';
import { claimsFor, type Claim } from './scheduler.js';

/** The names an operation touches, for ordering. */
export function namesOf(req: MutationRequest | Mutation): string[] {
  if (req.op === 'rename') return [req.from, req.to];
  if (req.op === 'link') return [req.from, req.path];
  return [req.path];
}

/**
 * The ordering claims of a change as the mount issues it: each name it touches
 * exclusively, their ancestors shared. A reader's access (atime) holds its name
 * shared: ordered after a change of that name, but not holding up changes below
 * a directory being listed, nor other readers.
 */
export function orderingClaims(req: MutationRequest | Mutation): Claim[] {
  const claims = claimsFor(...namesOf(req));
  return req.op === 'access' ? claims.map((c) => ({ path: c.path, exclusive: false })) : claims;
}

/** Writes are ordered per block of this size when changes are re-sent. */
const WRITE_BLOCK_BYTES = 128 * 1024;

/**
 * Ordering claims for re-sending a change that was already ordered once
 * (catch-up from the journal, a relay forwarding its queue): the mount's
 * claims, except that a write holds its file shared and only the blocks it
 * covers exclusively. Writes to different parts of one file commute (same
 * bytes at the same offsets, the same final size), so a file written
 * sequentially travels with many writes in flight instead of one; anything
 * else on the file (truncate, rename, unlink) holds it exclusively and waits.
 */
export function resendClaims(req: MutationRequest | Mutation, payloadBytes: number): Claim[] {
  if (req.op !== 'write' || payloadBytes === 0) return orderingClaims(req);
  const claims = claimsFor(req.path).map((c) => (c.path === req.path ? { path: c.path, exclusive: false } : c));
  const first = Math.floor(req.offset / WRITE_BLOCK_BYTES);
  const last = Math.floor((req.offset + payloadBytes - 1) / WRITE_BLOCK_BYTES);
  for (let b = first; b <= last; b++) claims.push({ path: `${req.path}\u0000${b}`, exclusive: true }); // NUL never occurs in a path
  return claims;
}
