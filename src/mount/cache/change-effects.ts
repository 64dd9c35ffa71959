import { NAMESPACE_OPS, type MutationRequest, type WireStat } from '../../protocol/ops.js';
import { namesOf } from '../../ordering/claims.js';
import type { AbsentXattrs } from './absent-xattrs.js';
import type { ReadAhead } from './read-ahead.js';

/**
 * What a change does to the answers the mount keeps: which cached answers it
 * may make wrong, and which names it makes and removes (for the name cache's
 * listings). The write path (fanout/mirror.ts) asks; this only knows the caches.
 */

/** Drop cached answers that this change may make wrong (before it is sent, and again after its outcome). */
export function forgetCachedAnswers(req: MutationRequest, caches: { readonly readAhead: ReadAhead; readonly absentXattrs: AbsentXattrs }): void {
  if (req.op === 'access') return; // atime only: the name cache takes the new attributes from the answer
  caches.readAhead.invalidate();
  if (req.op === 'setxattr' || req.op === 'removexattr') caches.absentXattrs.clear();
  else if (subtreesMovedOrRemoved(req).length > 0) for (const name of namesOf(req)) caches.absentXattrs.forget(name);
  else if (NAMESPACE_OPS.has(req.op)) for (const name of namesOf(req)) caches.absentXattrs.forgetName(name);
}

/** Names whose descendants a change moves or removes: whatever is cached under them goes. */
export function subtreesMovedOrRemoved(req: MutationRequest): string[] {
  if (req.op === 'rename') return [req.from, req.to];
  if (req.op === 'rmdir') return [req.path];
  return [];
}

/** The names a successful change made and removed (for the listings the mount keeps). */
export function namesMadeAndRemoved(req: MutationRequest, stats?: Record<string, WireStat>): { created: string[]; madeEmpty?: string[]; removed: string[] } {
  switch (req.op) {
    case 'mkdir':
      return { created: [req.path], madeEmpty: [req.path], removed: [] };
    case 'create':
    case 'symlink':
    case 'link':
    case 'mknod':
      return { created: [req.path], removed: [] };
    case 'unlink':
    case 'rmdir':
      return { created: [], removed: [req.path] };
    case 'rename':
      if (req.exchange) return { created: [], removed: [] }; // both names stay, each naming the other's file
      // `from` still there afterwards: it and `to` were links to one file, and rename(2) did nothing.
      return { created: [req.to], removed: req.from === req.to || (stats && req.from in stats) ? [] : [req.from] };
    default:
      return { created: [], removed: [] };
  }
}
