import { lstatSync, rmSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Mutation, RepairAction } from '../protocol/ops.js';
import { applyMutation, type ApplyContext, type MutationResult } from './apply.js';
import { listNames } from './reads.js';

/**
 * Repair actions (docs/PROTOCOL.md, "Repair"): how verify --repair, resync and
 * reconciliation make one copy equal to another. Each action is an ordinary
 * operation applied without a stamp (so not recorded), or remove-tree. They
 * are only ever sent in an order that sets state (remove what is wrong, then
 * create, write, set attributes), so re-sending a sequence converges.
 */
export async function applyRepair(ctx: ApplyContext, action: RepairAction, payload: Buffer): Promise<MutationResult> {
  if (action.op === 'remove-tree') {
    await removeTree(ctx, action.path);
    return null;
  }
  // The handlers do not look at the stamp; a fixed one satisfies the type.
  return applyMutation(ctx, { ...action, mount: 'repair', epoch: 1, seq: 1 } as Mutation, payload, false);
}

async function removeTree({ tree, fds, sync }: ApplyContext, path: string): Promise<void> {
  const abs = tree.resolve(path);
  // Open descriptors may point into the subtree; none may survive its removal.
  fds.invalidate(path);
  if (path === '') {
    // The root itself stays, and so does the peer's state directory inside it.
    for (const name of listNames(abs, true)) rmSync(join(abs, name), { recursive: true, force: true });
    await sync.dir(abs);
    return;
  }
  let isDir: boolean;
  try {
    isDir = lstatSync(abs).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (isDir) rmSync(abs, { recursive: true, force: true });
  else unlinkSync(abs);
  await sync.dir(dirname(abs));
}
