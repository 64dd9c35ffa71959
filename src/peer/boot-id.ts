import { readFileSync } from 'node:fs';

/**
 * The kernel's boot id: new at every boot, so a peer that finds another one
 * than its last run recorded knows the machine restarted under it (state.ts).
 * MIRRORFS_BOOT_ID stands in for it (tests play a power loss with it).
 */
export function readBootId(): string {
  const override = process.env.MIRRORFS_BOOT_ID;
  if (override) return override;
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // Without /proc the boot cannot be told apart: a run that did not end cleanly is then
    // taken for a process kill (nothing lost), as on every start of a machine without it.
    return 'unknown';
  }
}
