#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseHelperArgs } from './mount-options.js';

/**
 * /sbin/mount.fuse.mirrorfs (installed by `mirrorfs install-helpers`): mount(8)
 * runs it for filesystems of type fuse.mirrorfs, so `mount -t fuse.mirrorfs
 * east,west /data -o ...` and an /etc/fstab line work. It runs `mirrorfs mount`
 * (in the background, returning once mounted). umount(8) calls no helper for
 * FUSE: it unmounts in the kernel (refusing while files are open), and the
 * mount process notices within a second and stops cleanly (mounter.ts).
 */
const CLI = resolve(import.meta.dirname, 'mirrorfs.js');

function main(): number {
  const argv = process.argv.slice(2);
  let inv;
  try {
    inv = parseHelperArgs(argv);
  } catch (err) {
    return fail(`mount.fuse.mirrorfs: ${(err as Error).message}`);
  }
  if (inv.ignored.length > 0) process.stderr.write(`mount.fuse.mirrorfs: ignoring unknown options (mount -s): ${inv.ignored.join(',')}\n`);
  if (inv.fake) return 0;
  return run(['mount', inv.mountpoint, ...inv.args]);
}

/** mount(8)'s exit status for "mount failure". */
const MOUNT_FAILURE = 32;

function run(args: string[]): number {
  const r = spawnSync(process.execPath, [CLI, ...args], { stdio: 'inherit' });
  if (r.error) return fail(`cannot run mirrorfs: ${r.error.message}`);
  return r.status === 0 ? 0 : MOUNT_FAILURE;
}

function fail(message: string): number {
  process.stderr.write(`${message}\n`);
  return MOUNT_FAILURE;
}

process.exitCode = main();
