import type { Syncer } from './durable.js';
import type { FdCache } from './fd-cache.js';
import type { Tree } from './tree.js';

/** What applying to and reading from one data directory needs: the tree, its open files, and how it flushes. */
export interface ApplyContext {
  tree: Tree;
  fds: FdCache;
  sync: Syncer;
  /**
   * False: a change's answer leaves out the attributes of the names it touched (MutationResult
   * `stats`). Catch-up's resend does not use them, and they cost an lstat and an xattr read
   * per name (about a third of a small file's create on the peer, session 22).
   */
  stats?: boolean;
}
