import { chmodSync, closeSync, constants, lstatSync, mkdirSync, openSync, statSync } from 'node:fs';
import { Refusal } from '../refusal.js';

/**
 * Directories and files that hold secrets or payloads (the mount's journal, a
 * peer's state, a relay's queue): readable by their owner alone, whatever the
 * umask and whatever mode an existing one had (issue 22: `journal.db` and
 * `peer.db` were created 0644, and an existing `--state-dir` kept its mode).
 */

/** Make `dir` (and what is missing above it) and leave it 0700; an existing one is tightened. */
export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  tighten(dir, 0o700, 'directory');
}

/**
 * Make sure `file` exists with mode 0600 before a library opens it (SQLite
 * gives its -wal and -shm files the mode of the database file).
 */
export function privateFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new Refusal('STATE_INVALID', `${file}: the file holding mirrorfs state is a symbolic link; refusing to follow it`);
    throw err;
  }
  closeSync(fd);
  tighten(file, 0o600, 'file');
}

function tighten(path: string, mode: number, what: 'file' | 'directory'): void {
  // A state directory may be reached through a symlink the operator made (--state, --state-dir); a state file may not.
  const st = what === 'directory' ? statSync(path) : lstatSync(path);
  if (st.isSymbolicLink()) throw new Refusal('STATE_INVALID', `${path}: the ${what} holding mirrorfs state is a symbolic link; refusing to follow it`);
  if ((st.mode & 0o777) === mode) return;
  // Only its owner (or root) can change it: anyone else's means someone else controls our state.
  if (process.getuid !== undefined && st.uid !== process.getuid() && process.getuid() !== 0) {
    throw new Refusal('STATE_INVALID', `${path}: the ${what} holding mirrorfs state belongs to uid ${st.uid}, not to this user (uid ${process.getuid()}), and has mode ${(st.mode & 0o777).toString(8)}`);
  }
  chmodSync(path, mode);
}
