import { statfsSync } from 'node:fs';
import type { PeerStatus } from '../protocol/ops.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import type { PeerContext } from './context.js';
import { changeFlushes } from '../store/durable.js';

/** The peer's status (GET /v1/status, and what the metrics read at each scrape). */

export function status(peer: PeerContext): PeerStatus {
  return {
    name: peer.opts.name,
    id: peer.state.peerId,
    certificate: peer.opts.transport.kind === 'tls' ? peer.opts.transport.identity.fingerprint : null,
    protocol: PROTOCOL_VERSION,
    epoch: peer.state.epoch,
    owner: peer.state.owner,
    ownerSince: peer.state.ownerSince,
    uptimeS: Math.round((Date.now() - peer.startedAt) / 1000),
    inFlight: peer.inFlight,
    applied: peer.applied,
    appliedBytes: peer.appliedBytes,
    dataDir: peer.tree?.root ?? null,
    // What an answer means: applied to the file system (flushed in the background, and at
    // once for a durable change or a barrier); a pure relay's queue is durable before it answers.
    durability: peer.copy ? 'applied-then-flushed' : 'queued-durably',
    nowMs: Date.now(),
    disk: peer.tree ? diskOf(peer.tree.root) : null,
    flush: { ...peer.flusher.stats, changeFlushes: { ...changeFlushes }, mounts: peer.flusher.reportAll() },
    unclean: peer.state.unclean,
    pull: peer.pulling,
    relay: peer.forwarder ? { ...peer.forwarder.status(), next: null } : null,
    unreconciled: peer.state.unreconciled,
    // Monotonic: a step of the wall clock does not make a lease look older or younger.
    leaseAgeMs: Math.round(performance.now() - (peer.leaseAt ?? peer.startedMono)),
    readBuffers: { allocated: peer.readBuffers.allocated, inUse: peer.readBuffers.inUse, idle: peer.readBuffers.idle },
    blockReadBuffers: { allocated: peer.blockReadBuffers.allocated, inUse: peer.blockReadBuffers.inUse, idle: peer.blockReadBuffers.idle },
    channels: { open: peer.channels.size, calls: peer.channelCalls },
    connections: { ...peer.connections.stats },
  };
}

/** Status, and for a relay the status of each hop after it (bounded: an unreachable hop is reported, not waited for). */
export async function statusWithHops(peer: PeerContext): Promise<PeerStatus> {
  const current = status(peer);
  if (peer.forwarder && current.relay) {
    current.relay.next = await peer.forwarder.nextStatus().catch((err: unknown) => ({ error: (err as Error).message }));
  }
  return current;
}

/** Free space and file system type of the data directory (doctor checks both). */
export function diskOf(dir: string): PeerStatus['disk'] {
  try {
    const fs = statfsSync(dir);
    return { freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize, fsType: FS_TYPES[fs.type] ?? `0x${fs.type.toString(16)}` };
  } catch (err) {
    // Status must always answer (it is how a peer is found broken): say what failed instead.
    return { freeBytes: 0, totalBytes: 0, fsType: `unknown (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
}

/** statfs magic numbers of the file systems worth naming (doctor refuses tmpfs and ramfs). */
const FS_TYPES: Record<number, string> = {
  0xef53: 'ext4', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x2fc12fc1: 'zfs', 0x794c7630: 'overlay',
  0x01021994: 'tmpfs', 0x858458f6: 'ramfs', 0x6969: 'nfs', 0xff534d42: 'cifs', 0x65735546: 'fuse', 0xf2f52010: 'f2fs',
};
