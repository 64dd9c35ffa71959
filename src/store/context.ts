import type { Syncer } from './durable.js';
import type { FdCache } from './fd-cache.js';
import type { Tree } from './tree.js';

/** What applying to and reading from one data directory needs: the tree, its open files, and how it flushes. */
export interface ApplyContext {
  tree: Tree;
  fds: FdCache;
  sync: Syncer;
}
