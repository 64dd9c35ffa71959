import { chmodSync, chownSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCollect } from '../helpers/child.js';

/**
 * The store applies a new entry's owner as part of making it, and a change that
 * cannot be completed leaves nothing behind. Run through the real apply code
 * (dist/store/apply.js) and real system calls in a child process as an
 * unprivileged user (uid 2001, via setpriv), who may not give an entry to
 * another user: each chown fails with EPERM, as it would on a peer not running
 * as root, and the entry the change began to make must be gone again.
 */

const APPLY = resolve(import.meta.dirname, '../../dist/store/apply.js');
const TREE = resolve(import.meta.dirname, '../../dist/store/tree.js');
const FDS = resolve(import.meta.dirname, '../../dist/store/fd-cache.js');
const DURABLE = resolve(import.meta.dirname, '../../dist/store/durable.js');
const USER = 2001;
const OTHER = 2002;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mirrorfs-apply-owners-'));
  chmodSync(dir, 0o755);
  chownSync(dir, USER, USER);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Apply `requests` in order as USER with the store's code; the outcome of each (ok or its errno). */
async function applyAsUser(requests: object[]): Promise<string[]> {
  const program = `
    const [apply, tree, fds, durable] = await Promise.all(${JSON.stringify([APPLY, TREE, FDS, DURABLE])}.map((m) => import(m)));
    const ctx = { tree: new tree.Tree(process.argv[1]), fds: new fds.FdCache(), sync: durable.flushingSync };
    const out = [];
    for (const req of JSON.parse(process.argv[2])) {
      try { await apply.applyMutation(ctx, req, Buffer.alloc(0), false); out.push('ok'); }
      catch (err) { out.push(err.code ?? String(err)); }
    }
    console.log(JSON.stringify(out));`;
  const r = await runCollect('setpriv', ['--reuid', String(USER), '--regid', String(USER), '--clear-groups', process.execPath, '--input-type=module', '-e', program, dir, JSON.stringify(requests)]);
  if (r.code !== 0) throw new Error(`apply as ${USER} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

describe('owners of new entries in the store', () => {
  it('a new file, directory, symlink or FIFO that cannot be given its owner is not left behind (EPERM, nothing made)', async () => {
    const owner = { uid: OTHER, gid: OTHER };
    const outcomes = await applyAsUser([
      { op: 'create', path: 'f', mode: 0o644, exclusive: false, ...owner },
      { op: 'create', path: 'x', mode: 0o644, exclusive: true, ...owner },
      { op: 'mkdir', path: 'd', mode: 0o755, ...owner },
      { op: 'symlink', path: 'l', target: 'f', ...owner },
      { op: 'mknod', path: 'p', kind: 'fifo', mode: 0o644, rdev: 0, ...owner },
    ]);
    expect(outcomes).toEqual(['EPERM', 'EPERM', 'EPERM', 'EPERM', 'EPERM']);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('the same entries with the caller as owner are made, with their exact modes', async () => {
    const owner = { uid: USER, gid: USER };
    const outcomes = await applyAsUser([
      { op: 'create', path: 'f', mode: 0o640, exclusive: false, ...owner },
      { op: 'mkdir', path: 'd', mode: 0o750, ...owner },
      { op: 'symlink', path: 'l', target: 'f', ...owner },
      { op: 'mknod', path: 'p', kind: 'fifo', mode: 0o604, rdev: 0, ...owner },
    ]);
    expect(outcomes).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(readdirSync(dir).sort()).toEqual(['d', 'f', 'l', 'p']);
    for (const [name, mode] of [['f', 0o640], ['d', 0o750], ['p', 0o604]] as const) {
      expect(lstatSync(join(dir, name)), name).toMatchObject({ uid: USER, gid: USER });
      expect(lstatSync(join(dir, name)).mode & 0o7777, name).toBe(mode);
    }
  });
});
