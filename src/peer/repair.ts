import type { ServerHttp2Stream } from 'node:http2';
import { PeerClient } from '../client/peer-client.js';
import { MirrorError, toMirrorError } from '../protocol/errors.js';
import type { ControlRequest, Mutation, PullProgress, RepairAction } from '../protocol/ops.js';
import { checkScheme } from '../security/transport.js';
import { clientCopy } from '../client/remote-copy.js';
import { makeEqual, storeCopy } from '../store/copy-tree.js';
import { applyRepair } from '../store/repair.js';
import { PULL_CALL_TIMEOUT_MS, requireCopy, type PeerContext } from './context.js';
import { EXCLUSIVE_OPS } from './exactly-once.js';
import { checkOwnership } from './ownership.js';

/**
 * Repair, on the owner's word: single repair actions, a pull (this copy made
 * equal to another peer's), and adopting an outcome a repair brought here.
 * Repairs set state; they are not recorded as operations.
 */

/**
 * A repair action from the owner: applied exclusively (it may remove a
 * subtree or replace a name) and durably, but not recorded: repairs set state.
 */
export function repair(peer: PeerContext, req: Extract<ControlRequest, { op: 'repair' }>, payload: Buffer): Promise<unknown> {
  return applyRepairAs(peer, req, req.action, payload);
}

/** A repair action on behalf of an owner (a repair request, or a pull it started). */
function applyRepairAs(peer: PeerContext, owner: { mount: string; epoch: number }, action: RepairAction, payload: Buffer): Promise<unknown> {
  const req = owner;
  const path = 'path' in action ? action.path : 'from' in action ? action.from : '';
  checkOwnership(peer, { mount: req.mount, epoch: req.epoch });
  // The same rule as for operations: exclusive for what can remove a name or
  // make a symlink; put-file never removes (it refuses a name of another type).
  const exclusive = action.op === 'remove-tree' || EXCLUSIVE_OPS.has(action.op as Mutation['op']);
  return peer.lock.run(exclusive, async () => {
    checkOwnership(peer, { mount: req.mount, epoch: req.epoch });
    try {
      // Flushed as a durable change is (a repair is what makes a copy exact again: it must stay so).
      const result = await applyRepair(requireCopy(peer, true), action, payload);
      peer.log.info({ action: action.op, path }, 'repair applied');
      return result;
    } catch (err) {
      throw toMirrorError(err, { op: `repair ${action.op}`, path });
    }
  });
}

/**
 * Copy another peer's tree here directly (a full resync without the mount in
 * the data path): reads go to the source with the owner's ticket (the token in cleartext), changes are repair
 * actions applied here as the owner, one flush at the end. One at a time.
 */
export async function pull(peer: PeerContext, req: Extract<ControlRequest, { op: 'pull' }>, stream: ServerHttp2Stream): Promise<PullProgress> {
  checkOwnership(peer, req);
  if (peer.pulling) throw new MirrorError('MFS_ERRNO', `a pull from ${peer.pulling.from} is already running`, { errno: 'EBUSY' });
  const from = req.from.url;
  if (req.from.ticket === undefined && (req.from.token === undefined || peer.opts.transport.kind === 'tls')) {
    throw new MirrorError('MFS_MALFORMED', 'pull: from.ticket, the owner\'s pull ticket, is needed over TLS (from.token only in cleartext)');
  }
  peer.pulling = { from, entries: 0, totalEntries: 0, filesCopied: 0, bytesCopied: 0, totalBytes: 0, removed: 0 };
  try {
    for (const route of from.split('|')) checkScheme(route, peer.opts.transport, 'pull source');
  } catch (err) {
    peer.pulling = null;
    throw new MirrorError('MFS_MALFORMED', (err as Error).message);
  }
  try {
    peer.state.noteUndurable(); // one flush at the end: a crash before it may take back what was copied
  } catch (err) {
    peer.pulling = null;
    throw err;
  }
  // With the owner's ticket, this peer's own certificate and the owner named as origin: the
  // source judges both itself, and this peer never holds the source's token (pull-ticket.ts).
  const ownerCert = peer.state.ownerCertNow;
  const client = new PeerClient(from, {
    name: `source ${from}`,
    token: req.from.ticket === undefined ? req.from.token : undefined,
    ticket: req.from.ticket,
    origin: req.from.ticket !== undefined && ownerCert !== null ? Buffer.from(ownerCert, 'base64') : undefined,
    transport: peer.opts.transport,
    timeoutMs: PULL_CALL_TIMEOUT_MS,
  });
  peer.log.warn({ from, path: req.path }, 'pull: making this tree equal to another peer\'s');
  try {
    // The caller gave up (its bound, or it died): stop at the next action, so a later pull is not refused as busy.
    let cancelled = false;
    stream.once('close', () => (cancelled = true));
    const here = storeCopy(peer.opts.name, requireCopy(peer, true), {
      apply: (action, payload) => {
        if (cancelled) throw new MirrorError('MFS_ERRNO', `pull from ${from} cancelled: the caller went away`, { errno: 'ECANCELED' });
        return applyRepairAs(peer, req, action, payload);
      },
    });
    const done = await makeEqual(clientCopy(client), here, req.path, { flushAtEnd: true, onProgress: (p) => (peer.pulling = { from, ...p }) });
    peer.log.warn({ from, files: done.filesCopied, bytes: done.bytesCopied, removed: done.removed }, 'pull finished');
    return { from, ...done };
  } catch (err) {
    throw toMirrorError(err, { op: 'pull', path: req.path });
  } finally {
    peer.pulling = null;
    peer.state.undurableDone();
    await client.close();
  }
}

/** Record an outcome brought here by repair, unless this peer already has one for that seq. */
export async function adopt(peer: PeerContext, req: Extract<ControlRequest, { op: 'adopt' }>): Promise<{ adopted: boolean }> {
  checkOwnership(peer, req);
  const prior = peer.state.lookup(req.mount, req.seq);
  if (prior?.state === 'done') return { adopted: false };
  let op: string;
  try {
    op = String((JSON.parse(req.subject) as { op?: unknown }).op ?? 'unknown');
  } catch {
    throw new MirrorError('MFS_MALFORMED', 'adopt: subject is not JSON');
  }
  await peer.state.recordDone(req.mount, req.seq, req.epoch, op, req.subject, req.result);
  peer.flusher.noteApplied(req.mount, req.seq); // brought here by repair: applied as far as the durable point goes
  return { adopted: true };
}
