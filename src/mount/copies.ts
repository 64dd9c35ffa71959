import type { ManifestEntry, RepairActionInput, WireStat } from '../protocol/ops.js';
import { applyRepair } from '../store/repair.js';
import { walkManifest } from '../store/manifest.js';
import { repairActionSchema } from '../protocol/ops.js';
import type { LocalCopy } from './local-copy.js';
import type { Member } from './member.js';

/**
 * One copy of the tree as repair sees it (a peer, or the local copy): what
 * verify compares and what resync copies from and to.
 */
export interface CopyHandle {
  name: string;
  /** False once the copy may lack changes (a peer fell behind): it is then neither a source nor compared. */
  usable(): boolean;
  /** Manifest of `path` and everything under it ('' = the whole tree, root excluded). */
  manifest(path: string, content: boolean): Promise<ManifestEntry[]>;
  stat(path: string): Promise<WireStat>;
  read(path: string, offset: number, length: number): Promise<Buffer>;
  apply(action: RepairActionInput, payload?: Buffer): Promise<void>;
}

export function peerCopy(member: Member, mountId: string, epoch: number): CopyHandle {
  return {
    name: member.name,
    usable: () => member.inStep,
    manifest: (path, content) => member.client.manifest({ path, content }),
    stat: async (path) => (await member.client.call<WireStat>({ op: 'getattr', path })).result,
    read: async (path, offset, length) => (await member.client.call({ op: 'read', path, offset, length })).payload,
    apply: async (action, payload) => {
      await member.client.repair(mountId, epoch, action, payload);
    },
  };
}

export function localCopyHandle(local: LocalCopy): CopyHandle {
  return {
    name: 'local copy',
    usable: () => local.active,
    manifest: async (path, content) => {
      const out: ManifestEntry[] = [];
      for await (const e of walkManifest(local.root, { path, content })) out.push(e);
      return out;
    },
    stat: async (path) => local.read({ op: 'getattr', path }).result as WireStat,
    read: async (path, offset, length) => local.read({ op: 'read', path, offset, length }).payload ?? Buffer.alloc(0),
    apply: async (action, payload) => {
      await applyRepair(local.context, repairActionSchema.parse(action), payload ?? Buffer.alloc(0));
    },
  };
}
