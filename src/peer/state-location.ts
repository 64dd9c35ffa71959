import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where a peer keeps its state (peer.db, its TLS identity, trust file and
 * token) when `--state` is not given: beside its data directory,
 * `<data>.state`, out of the tree the mount controls. A mount may make the
 * tree's root writable by anyone (chmod through the mount), and state inside
 * it could then be renamed away and replaced by a local user (issue 22,
 * finding 3). A peer set up before this keeps `<data>/.mirrorfs` (still
 * reserved, hidden from mounts) and says at start how to move it.
 */
export interface StateLocation {
  dir: string;
  /** The layout before: the state inside the data directory. */
  insideTree: boolean;
}

export const LEGACY_STATE_NAME = '.mirrorfs';

export function defaultStateDir(dataDir: string): StateLocation {
  const beside = `${dataDir.replace(/\/+$/, '')}.state`;
  // Beside the tree wins whenever it exists: a `.mirrorfs` that someone made in the tree later
  // (the mount may have made the root writable) must never become this peer's state.
  if (existsSync(beside)) return { dir: beside, insideTree: false };
  const legacy = join(dataDir, LEGACY_STATE_NAME);
  // The layout before: only a state the peer itself made there (its database) counts.
  if (existsSync(join(legacy, 'peer.db'))) return { dir: legacy, insideTree: true };
  return { dir: beside, insideTree: false };
}

/** What to tell the operator of a peer whose state is still inside its data directory. */
export function legacyStateAdvice(dataDir: string): string {
  return `this peer's state is inside its data directory (${join(dataDir, LEGACY_STATE_NAME)}), where a mount that makes the tree's root writable exposes it to local users: stop the peer, move it beside the tree (mv ${join(dataDir, LEGACY_STATE_NAME)} ${dataDir.replace(/\/+$/, '')}.state) and start it again (docs/OPERATIONS.md)`;
}
