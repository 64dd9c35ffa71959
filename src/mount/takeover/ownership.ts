import type { Logger } from '../../log.js';
import { MirrorError, isFenced } from '../../protocol/errors.js';
import type { PeerStatus, ProgressResult, UncleanRestart } from '../../protocol/ops.js';
import type { Member } from '../peers/member.js';
import { Refusal } from '../../refusal.js';

export interface Ownership {
  epoch: number;
  /** Each peer's identity (a new one means its data was replaced), in member order. */
  peerIds: string[];
  /** Each peer's progress through this mount's history, in member order. */
  progress: ProgressResult[];
  /** Highest seq of this mount that any peer has a record of. */
  lastSeq: number;
  /** False when the peers have applied different amounts of this mount's history (one missed changes). */
  progressAgrees: boolean;
  /** Per member: set when that peer restarted after its machine went down and is not exact (it must be repaired before it serves). */
  unclean: Array<UncleanRestart | null>;
  /** Peers that cannot keep the mirror's inode numbers (store/inode-ids.ts): then none are handed out. */
  peersWithoutInodeIds: string[];
  /**
   * Earlier owners whose last changes no later owner has reconciled yet
   * (every peer's list, merged, oldest epoch first; after a takeover it holds
   * at least the owner taken over from). Recovery reconciles them all.
   */
  previousOwners: Array<{ owner: string; epoch: number }>;
}

/**
 * Greet every peer and take ownership of them for an epoch. Every peer must
 * answer (ack policy "all" starts with all peers present). A peer owned by
 * another mount at the newest epoch means another primary may be live: the
 * mount is refused, unless `takeover` (the backup site taking over, docs/TAKEOVER.md).
 *
 * The handshakes go one peer at a time, in the order of the peers' identities,
 * the same order for every mount: of two mounts racing for the same epoch, the
 * one that reaches the first peer first is the only one that can own it, so
 * the other is refused there and never touches the rest. A mount that raced
 * with a higher epoch fences the other everywhere it arrives after it.
 */
export async function establishOwnership(mountId: string, members: Member[], log: Logger, takeover = false): Promise<Ownership> {
  const statuses = await Promise.all(
    members.map(async (m) => {
      try {
        return await m.client.status();
      } catch (err) {
        throw new Refusal('PEER_REFUSED', describeRefusal(m, err), { cause: err });
      }
    }),
  );
  const newest = Math.max(0, ...statuses.map((s) => s.epoch));
  const rival = statuses.find((s: PeerStatus) => s.epoch === newest && s.owner !== null && s.owner !== mountId);
  if (rival && !takeover) {
    throw new Refusal(
      'PEERS_OWNED',
      `peer ${rival.name} is owned by mount ${rival.owner} since ${rival.ownerSince} (epoch ${rival.epoch}); another primary may be using these peers. ` +
        'Stop it and unmount it first; or, on the backup site when the primary is lost, mount with --takeover (it fences the old primary).',
    );
  }
  if (rival) log.warn({ previousOwner: rival.owner, since: rival.ownerSince, epoch: rival.epoch }, 'taking over: the peers will refuse the previous owner from now on');
  // A new epoch at every mount, even by the same writer: anything a previous
  // process of this mount still has on the wire (a request delayed in a socket
  // buffer, a stalled relay) is then refused as fenced instead of landing after
  // recovery and re-using a seq.
  const epoch = newest + 1;
  const order = members.map((m, i) => ({ m, i, id: statuses[i]!.id })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const peerIds: string[] = new Array<string>(members.length);
  const unclean: Array<UncleanRestart | null> = members.map(() => null);
  const withoutInodeIds: string[] = [];
  for (const { m, i } of order) {
    try {
      const hello = await m.client.handshake(mountId, epoch);
      m.markConnected();
      peerIds[i] = hello.peer.id;
      unclean[i] = hello.unclean ?? null;
      if (hello.inodeIds !== true) withoutInodeIds.push(m.name);
    } catch (err) {
      if (isFenced(err)) {
        throw new Refusal('PEERS_OWNED', `peer ${m.name} was taken by another mount at the same time (${err.message}); this mount stands down. Check which primary runs now (mirrorfs status on it) before trying again.`);
      }
      throw new Refusal('PEER_REFUSED', describeRefusal(m, err), { cause: err });
    }
  }
  // Read after the handshakes: taking a peer over adds its old owner to its list.
  const lists = await Promise.all(members.map((m) => m.client.status().then((s) => s.unreconciled)));
  const previousOwners = mergeOwners(lists.flat());
  if (previousOwners.length > 0) log.warn({ previousOwners }, 'earlier owners\' last changes are to be reconciled');
  const progress = await Promise.all(members.map((m) => m.client.progress(mountId)));
  const lastSeq = Math.max(0, ...progress.map((p) => p.maxSeq));
  const progressAgrees = progress.every((p) => p.maxSeq === progress[0]!.maxSeq && p.contiguousSeq === progress[0]!.contiguousSeq);
  log.info({ epoch, lastSeq, progressAgrees, peers: members.map((m) => m.name) }, 'ownership established on every peer');
  return { epoch, peerIds, progress, lastSeq, progressAgrees, previousOwners, unclean, peersWithoutInodeIds: withoutInodeIds };
}

/** One entry per owner (its newest epoch), oldest first. */
function mergeOwners(entries: Array<{ owner: string; epoch: number }>): Array<{ owner: string; epoch: number }> {
  const byOwner = new Map<string, number>();
  for (const e of entries) byOwner.set(e.owner, Math.max(e.epoch, byOwner.get(e.owner) ?? 0));
  return [...byOwner].map(([owner, epoch]) => ({ owner, epoch })).sort((a, b) => a.epoch - b.epoch);
}

function describeRefusal(m: Member, err: unknown): string {
  const e = err as MirrorError;
  const where = `peer ${m.name} (${m.spec.url})`;
  if (e instanceof MirrorError) {
    switch (e.code) {
      case 'MFS_UNREACHABLE':
      case 'MFS_TIMEOUT':
        return `${where} is unreachable: ${e.message}. Start mirrorfs-peer there, or check the address in --peers.`;
      case 'MFS_AUTH_CERT':
        return `${where} does not trust this host's certificate: ${e.message}`;
      case 'MFS_AUTH':
        return `${where} refused our token: check --token-file (or the peer's tokenFile in the config file) against the peer's --token-file.`;
      case 'MFS_UNTRUSTED':
        return `this mount does not trust ${where}: ${e.message}`;
      case 'MFS_PROTOCOL_MISMATCH':
        return `${where} speaks another protocol version: ${e.message}. Run the same mirrorfs version on the mount and the peers.`;
      default:
        return `${where} refused the mount: ${e.message}`;
    }
  }
  return `${where}: ${String(err)}`;
}
