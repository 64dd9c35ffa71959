import type { WireStat } from '../protocol/ops.js';
import { splitContents, type CopyHandle } from '../store/copy-tree.js';
import type { PeerClient } from './peer-client.js';

/** A peer reached with a client; changes go through repair requests (owner, epoch), or are refused when none are given. */
export function clientCopy(client: PeerClient, owner?: { mount: string; epoch: number }, usable: () => boolean = () => true): CopyHandle {
  return {
    name: client.name,
    usable,
    entries: (path, content, after, signal) => client.manifestStream({ path, content, after, signal }),
    stat: async (path) => (await client.call<WireStat>({ op: 'getattr', path })).result,
    read: async (path, offset, length) => (await client.call({ op: 'read', path, offset, length })).payload,
    readMany: async (paths) => {
      const { result, payload } = await client.call<{ sizes: number[] }>({ op: 'read-many', paths });
      return splitContents(payload, result.sizes);
    },
    apply: async (action, payload) => {
      if (!owner) throw new Error(`copy ${client.name} is read-only here`);
      await client.repair(owner.mount, owner.epoch, action, payload);
    },
  };
}
