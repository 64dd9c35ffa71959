import { closeSync, constants, existsSync, lstatSync, openSync, readFileSync, readdirSync, realpathSync, writeSync } from 'node:fs';
import { Refusal } from '../refusal.js';
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

/**
 * The mark that ties a data tree to its state: the file `<data>/.mirrorfs`
 * (the reserved name: mounts never see it, repairs spare it) holding the
 * peer id. With the state beside the tree, a data disk can be replaced while
 * the state stays; the peer must then not claim the history it had, or the
 * mount would replay changes onto an empty tree. So a peer whose state has a
 * history refuses to start on a tree without its mark that is empty, or on a
 * tree marked for another peer. A tree with data but no mark is one from
 * before the mark: it is marked. In the old layout the state is the mark.
 */
export function checkTreeMark(dataDir: string, peerId: string, stateIsNew: boolean, stateDir: string): 'marked' | 'adopted' | 'kept' | 'foreign' {
  const mark = join(dataDir, LEGACY_STATE_NAME);
  let st;
  try {
    st = lstatSync(mark);
  } catch {
    st = null;
  }
  // The old layout: the state directory itself. Any other directory there was put by someone else
  // (the mount cannot: the name is reserved); it is not read, and there is no mark to check.
  if (st?.isDirectory()) return realpathSync(mark) === realpathSync(stateDir) ? 'kept' : 'foreign';
  if (st !== null) {
    if (!st.isFile() || (typeof process.geteuid === 'function' && st.uid !== process.geteuid())) {
      throw new Refusal('DATA_DIR_INVALID', `${mark} is not this peer's mark of its data tree (a regular file of this user): remove it and start again`);
    }
    const marked = readFileSync(mark, 'utf8').trim();
    if (marked === peerId) return 'kept';
    throw new Refusal('DATA_DIR_INVALID', `data directory ${dataDir} belongs to peer ${marked}, but the state in ${stateDir} is peer ${peerId}'s: give this tree its own state (--state), or move ${stateDir} aside to start it as a new peer`);
  }
  const empty = readdirSync(dataDir).every((n) => n === 'lost+found');
  if (!stateIsNew && empty) {
    throw new Refusal('DATA_DIR_INVALID', `data directory ${dataDir} is empty and unmarked, but the state in ${stateDir} has peer ${peerId}'s history: the data was replaced (a new disk?). Move ${stateDir} aside (mv ${stateDir} ${stateDir}.old) and start again: the peer starts as a new one, and the next mount rebuilds it`);
  }
  const fd = openSync(mark, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, `${peerId}\n`);
  } finally {
    closeSync(fd);
  }
  return stateIsNew ? 'marked' : 'adopted';
}
