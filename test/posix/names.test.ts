import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, USER_A, defineCases, outcome, runPosix, usePosixMount, valueOf, type Step } from '../helpers/posix.js';
import { deepPath, namesCases } from './cases/names.js';

/**
 * POSIX conformance, length limits: 255-byte names (also multibyte UTF-8)
 * work and 256-byte ones give ENAMETOOLONG as on ext4; a 4,000-byte relative
 * path works, and names that are not UTF-8 work as any other; the known
 * limit: a path longer than PATH_MAX - 1 bytes below the mount point. Each
 * case as root and as an unprivileged user; one mount for the file.
 */
describe('POSIX: length limits of names and paths', () => {
  const fx = usePosixMount();
  defineCases(fx, namesCases, it, { onMount: true });

  /** The mount's last error lines, long paths shortened, for a failure message. */
  const logTail = () =>
    fx.mount
      .stderr()
      .trim()
      .split('\n')
      .filter((l) => /"level":[56]0/.test(l))
      .slice(-2)
      .map((l) => l.replace(/(\w)\1{20,}/g, (m) => `${m[0]}×${m.length}`))
      .join('\n    ');

  // A known limit must still be a clear error (README: "each is a clear error"), and leave nothing half-made on a peer.
  it('the known limit at PATH_MAX is a clear error: a 4,095-byte path gives ENAMETOOLONG on the mount, and no peer holds the file', async () => {
    const dir = 'limit-4095';
    valueOf((await runPosix(fx.sides.mount, [{ op: 'mkdir', path: dir, mode: 0o777 }]))[0]);
    const { dirs, file } = deepPath(4095, 16);
    const steps: Step[] = [...dirs.map((path): Step => ({ op: 'mkdir', path, mode: 0o755 })), { op: 'create', path: file, mode: 0o644 }, { op: 'lstat', path: file }];
    for (const actor of [ROOT, USER_A]) {
      const r = await runPosix(join(fx.sides.mount, dir), actor === ROOT ? steps : steps.slice(-2), actor);
      expect(r.slice(0, -2).map(outcome), 'the directories (4,016 bytes below the case directory) are made').toEqual(r.slice(0, -2).map(() => 'ok'));
      expect(r.slice(-2).map(outcome), `as ${actor.name}: create and lstat of the file; mount log:\n    ${logTail()}`).toEqual(['ENAMETOOLONG', 'ENAMETOOLONG']); // a lookup of such a path is refused the same way
    }
    for (const p of fx.peers) {
      const [r] = await runPosix(join(p.dataDir, dir), [{ op: 'lstat', path: file }]);
      expect(outcome(r), `${p.name} holds no such file`).toBe('ENOENT');
    }
  });
});
