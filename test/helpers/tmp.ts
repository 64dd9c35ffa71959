import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

/** A fresh temporary directory, removed by cleanupTmp(). */
export function tmpDir(prefix = 'mirrorfs-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** A directory made elsewhere (beside one from tmpDir, say) that cleanupTmp removes too. */
export function removeAtCleanup(dir: string): void {
  if (!made.includes(dir)) made.push(dir);
}

export function cleanupTmp(): void {
  for (const dir of made.splice(0)) removeTree(dir);
}

/**
 * rm -r. Node's rmSync names every entry by its absolute path, which fails with
 * ENAMETOOLONG in a tree deeper than PATH_MAX from / (the path-length cases leave
 * one): GNU rm walks relative to each directory, so it is the fallback.
 */
export function removeTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENAMETOOLONG') throw err;
    execFileSync('rm', ['-rf', '--', dir]);
  }
}
