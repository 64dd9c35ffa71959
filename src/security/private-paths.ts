import { closeSync, constants, existsSync, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, statSync } from 'node:fs';
import { Refusal } from '../refusal.js';

/**
 * Directories and files that hold secrets or payloads (the mount's journal, a
 * peer's state, a relay's queue): readable by their owner alone, whatever the
 * umask and whatever mode an existing one had (issue 22: `journal.db` and
 * `peer.db` were created 0644, and an existing `--state-dir` kept its mode).
 * One that belongs to another user is refused, root included: whoever owns
 * the state controls the copy (issue 22's finding 3, a `.mirrorfs` made by a
 * local user).
 */

const euid = (): number => process.geteuid?.() ?? 0;

/**
 * Make `dir` (and what is missing above it) and leave it 0700; an existing one
 * is tightened. It may be reached through a symlink that this user or root
 * made (an operator's `--state`), never through one another user made.
 */
export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const link = lstatSync(dir);
  if (link.isSymbolicLink() && link.uid !== euid() && link.uid !== 0) {
    throw new Refusal('STATE_INVALID', `${dir}: the directory holding mirrorfs state is a symbolic link made by uid ${link.uid}; refusing to follow it`);
  }
  const st = statSync(dir);
  if (!st.isDirectory()) throw new Refusal('STATE_INVALID', `${dir}: the mirrorfs state directory is not a directory`);
  checkOwner(dir, st.uid, 'directory');
  // Through the descriptor of what was checked: a swap after the check changes nothing here.
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const now = fstatSync(fd);
    if (now.ino !== st.ino || now.dev !== st.dev) throw new Refusal('STATE_INVALID', `${dir}: the mirrorfs state directory changed while it was checked`);
    if ((now.mode & 0o777) !== 0o700) fchmodSync(fd, 0o700);
  } finally {
    closeSync(fd);
  }
}

/**
 * Make sure `file` exists as a regular file of this user with mode 0600 before
 * a library opens it, and tighten SQLite's companions (-wal, -shm, -journal)
 * when they exist: SQLite gives a new one the database's mode, but keeps the
 * mode of one left from before.
 */
export function privateFile(file: string): void {
  for (const path of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) {
    if (path !== file && !existsSync(path)) continue;
    tightenFile(path, path === file);
  }
}

function tightenFile(file: string, create: boolean): void {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO put there must not hang the start; O_NOFOLLOW: nor a symlink lead elsewhere.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | (create ? constants.O_CREAT : 0), 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new Refusal('STATE_INVALID', `${file}: the file holding mirrorfs state is a symbolic link; refusing to follow it`);
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Refusal('STATE_INVALID', `${file}: the file holding mirrorfs state is not a regular file`);
    checkOwner(file, st.uid, 'file');
    if ((st.mode & 0o777) !== 0o600) fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}

function checkOwner(path: string, uid: number, what: string): void {
  if (uid === euid()) return;
  throw new Refusal('STATE_INVALID', `${path}: the ${what} holding mirrorfs state belongs to uid ${uid}, not to this user (uid ${euid()}); whoever owns it controls this copy. Give it to this user (chown) or remove it`);
}

/**
 * Refuse a credential file (trust file, token, key) that someone other than
 * this user or root could have written: its owner is another user, or its mode
 * lets the group or others write it (as ssh's StrictModes refuses). Checked at
 * start and on every re-read; a file swapped for another user's is refused.
 */
export function checkCredentialFile(file: string, what: string): void {
  const st = statSync(file);
  if (st.uid !== euid() && st.uid !== 0) {
    throw new Refusal('STATE_INVALID', `${what} ${file} belongs to uid ${st.uid}, not to this user (uid ${euid()}) or root: whoever owns it decides who gets in. Give it to this user (chown)`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new Refusal('STATE_INVALID', `${what} ${file} can be written by its group or by others (mode ${(st.mode & 0o777).toString(8)}): anyone who can write it decides who gets in. chmod go-w ${file}`);
  }
}
