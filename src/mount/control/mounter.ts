import { latin1FromWire } from '../../protocol/byte-names.js';
import { InodeIds, canKeepInodeIds } from '../../store/inode-ids.js';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import type { PeerSpec } from '../peers/config.js';
import { checkPeersAgree, prepareLocalCopy } from '../recovery/consistency.js';
import { CommitTracker } from '../fanout/commit-tracker.js';
import { requiredAcks, type AckPolicy } from '../fanout/ack-policy.js';
import { MirrorController, type CommitLevel } from '../fanout/mirror.js';
import type { MaxLag } from '../fanout/lag.js';
import { Journal } from '../recovery/journal.js';
import { KernelReadAhead } from '../fuse/kernel-read-ahead.js';
import { progressReporter } from '../recovery/progress.js';
import { recover } from '../recovery/recovery.js';
import { VerifyInterrupted, verifyCopies } from './verify.js';
import { startControlServer } from './control.js';
import { callerOf, invalidatePath, loadFuse, type FuseInstance } from '../fuse/fuse-binding.js';
import { buildFuseOps } from '../fuse/fuse-ops.js';
import { loadMountId } from './identity.js';
import { LinkedNames } from '../fuse/linked-names.js';
import { LocalCopy } from '../peers/local-copy.js';
import { Member } from '../peers/member.js';
import { checkMountpoint } from './mountpoint.js';
import { MountWatch } from './mount-watch.js';
import { establishOwnership } from '../takeover/ownership.js';
import { checkRoutes } from '../peers/routes.js';
import { LeaseKeeper } from '../takeover/lease.js';
import { MountMetrics } from './metrics.js';
import { startHttpListener } from '../../metrics/http.js';
import { STATUS_PAGE } from './status-page.js';
import { withByteNames } from '../fuse/fuse-names.js';
import { AccessTimes, type AtimeMode } from '../fuse/access-times.js';
import { Refusal } from '../../refusal.js';

export interface MountOptions {
  mountpoint: string;
  peers: PeerSpec[];
  localCopyDir?: string;
  stateDir: string;
  /** Bound on every call to a peer. */
  peerTimeoutMs: number;
  ackPolicy: AckPolicy;
  /** first-hop (default): a call returns once each route's first hop holds the change durably. end-to-end: also track the far mirrors' commits; fsync waits for them. */
  ackMode?: 'first-hop' | 'end-to-end';
  /** The asynchronous mode (ack policy none, `--ack 0`): how far the peers may lag before changes wait. */
  maxLag?: MaxLag;
  /** applied (default), sync (-o sync: every change durable before it returns) or dirsync (changes to names). */
  commitLevel?: CommitLevel;
  /** Bound on an fsync waiting for end-to-end commitment. */
  fsyncTimeoutMs?: number;
  /** When a read stamps atime on every copy (default relatime, as Linux mounts). */
  atime?: AtimeMode;
  /** Listing a directory never stamps it (mount -o nodiratime). */
  noDiratime?: boolean;
  /** Take the peers over from the mount that owns them (the backup site, when the primary is lost). */
  takeover?: boolean;
  /** Rebuild every other peer from this one before mounting. */
  resyncFrom?: string;
  /** Serve the status page, /status.json and Prometheus /metrics here (plain HTTP, read-only). */
  controlListen?: { host: string; port: number };
  log: Logger;
}

export interface RunningMount {
  controller: MirrorController;
  /** Drain in-flight operations (bounded), unmount, close everything. Idempotent. */
  stop: (reason: string) => Promise<void>;
  /** Resolves when the mount has stopped (by stop(), `mirrorfs unmount`, or a signal): true if the FUSE unmount succeeded. */
  stopped: Promise<boolean>;
}

const DRAIN_TIMEOUT_MS = 30_000;
/** Default bound on an fsync waiting for end-to-end commitment (ack mode end-to-end). */
export const DEFAULT_FSYNC_TIMEOUT_MS = 30_000;
/** Seconds the kernel may cache names and attributes. */
const KERNEL_CACHE_S = 60;
/** The longest a change to a hard-linked file waits for its other names' attributes to be refreshed (linked-names.ts). */
const LINK_REFRESH_WAIT_MS = 2_000;
/**
 * Seconds the kernel may cache "no such name". Short: a change whose call
 * failed can still be rolled forward (it reached a peer), and the binding
 * cannot invalidate the kernel's entry, so the name would stay
 * invisible to lookups (while readdir lists it) for this long.
 */
const NEGATIVE_CACHE_S = 1;

/**
 * Bring a mount up: check FUSE and the mount point, greet and own every peer,
 * check that the copies agree, prepare the local copy, mount, and open the
 * control socket. Every refusal is an Error whose message says what to do.
 */
export async function startMount(opts: MountOptions): Promise<RunningMount> {
  const { mountpoint, log } = opts;
  const Fuse = loadFuse();
  checkMountpoint(mountpoint);
  const mountId = loadMountId(opts.stateDir);
  const members = opts.peers.map((spec) => new Member(spec, opts.peerTimeoutMs, log));
  if (opts.ackPolicy.kind === 'none') {
    // The asynchronous mode answers each change from the local copy's outcome: there must be one.
    if (!opts.localCopyDir) throw new Refusal('ACK_POLICY_INVALID', '--ack 0 (the asynchronous mode) needs --local-copy DIR: the local copy decides each change\'s outcome while the peers follow');
    if (opts.ackMode === 'end-to-end') throw new Refusal('ACK_POLICY_INVALID', '--ack 0 and --ack-mode end-to-end do not go together: in the asynchronous mode no call waits for a peer (fsync waits for every peer anyway)');
  } else if (requiredAcks(opts.ackPolicy, members.length) < 1) throw new Refusal('ACK_POLICY_INVALID', 'the ack policy must require at least one peer');
  const metrics = new MountMetrics(members, opts.ackMode === 'end-to-end');
  let phase: 'starting' | 'mounted' | 'stopping' = 'starting';
  let controllerRef: MirrorController | null = null;
  // Up before recovery, so a long resync can be watched on the page and in the metrics.
  const web = opts.controlListen
    ? await startHttpListener(opts.controlListen.host, opts.controlListen.port, metrics.registry, {
        '/': (_req, res) => {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
          res.end(STATUS_PAGE);
        },
        '/status.json': (_req, res) => {
          const latency = Object.fromEntries(members.map((m) => [m.name, m.changeLatency.snapshot()]));
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          res.end(JSON.stringify({ mountpoint, phase, progress: metrics.progress, status: controllerRef?.status() ?? null, latency }));
        },
      }, log).catch((err: Error) => {
        throw new Refusal('CONTROL_LISTEN_FAILED', `--control-listen ${opts.controlListen!.host}:${opts.controlListen!.port}: ${err.message}`, { cause: err });
      })
    : null;
  let local: LocalCopy | null = null;
  let lease: LeaseKeeper | null = null;
  const journal = new Journal(opts.stateDir);
  journal.onError = (err) => log.error({ err: err.message }, 'journal: could not record deliveries; they will be sent again');
  try {
    await checkRoutes(members, log);
    const { epoch, peerIds, progress, lastSeq: peersLastSeq, progressAgrees, previousOwners, unclean, peersWithoutInodeIds } = await establishOwnership(mountId, members, log, opts.takeover === true);
    // Renewed from now on, through recovery: a standby must not take over a mount that is still recovering.
    lease = new LeaseKeeper(mountId, epoch, members, (m, err) => log.error({ peer: m.name, err: err.message }, 'fenced while mounting'), log);
    lease.start();
    if (!progressAgrees) log.warn('the peers applied different amounts of this mount\'s history: reconciling, then comparing their contents');
    // Catch-ups and resyncs are shown in the metrics; comparisons are only said as they go.
    const reporter = metrics.track(progressReporter(log));
    const checkReporter = progressReporter(log);
    await recover({ mountId, epoch, members, peerIds, progress, unclean, journal, log, resyncFrom: opts.resyncFrom, previousOwners, reporter, checkReporter });
    const lastSeq = Math.max(peersLastSeq, journal.maxSeq());
    // After a takeover the copies are compared by content: the previous owner's last changes are not this mount's to vouch for.
    await checkPeersAgree(members, { content: !progressAgrees || previousOwners.length > 0 || unclean.some((u) => u !== null), reporter: checkReporter });
    if (previousOwners.length > 0) {
      // Every copy is the same: the earlier owners' changes need no reconciling any more.
      await Promise.all(members.map((m) => m.client.reconciled(mountId, epoch, previousOwners.map((p) => p.owner))));
    }
    // Every peer now holds the whole history: say so, so later mounts compare from here.
    if (lastSeq > 0) await Promise.all(members.map((m) => m.client.settle(mountId, epoch, lastSeq)));
    const cleanMarker = join(opts.stateDir, 'local-copy.clean');
    if (opts.localCopyDir) {
      local = new LocalCopy(opts.localCopyDir, log);
      await prepareLocalCopy(local, members[0]!, log, { trusted: existsSync(cleanMarker), reporter: checkReporter });
    }
    // Written again only by a clean unmount with the local copy still in step.
    rmSync(cleanMarker, { force: true });
    const fuseTimeoutMs = Math.max(60_000, opts.peerTimeoutMs * 4);
    // Half of fuse-native's bound to start, at most a peer timeout to finish: the kernel's request is always answered by us.
    const commits = opts.ackMode === 'end-to-end' ? new CommitTracker(mountId, members, log) : null;
    commits?.start();
    const controller = new MirrorController({ mountId, epoch, lastSeq, members, local, journal, ackPolicy: opts.ackPolicy, peerTimeoutMs: opts.peerTimeoutMs, startLimitMs: fuseTimeoutMs / 2, commits, commitLevel: opts.commitLevel, maxLag: opts.maxLag, barrierWaitMs: Math.min(opts.fsyncTimeoutMs ?? DEFAULT_FSYNC_TIMEOUT_MS, fuseTimeoutMs - 5000), log });
    // An fsync waiting for the far ends must be answered before fuse-native's own bound.
    const fsyncTimeoutMs = Math.min(opts.fsyncTimeoutMs ?? DEFAULT_FSYNC_TIMEOUT_MS, fuseTimeoutMs - 5000);
    controllerRef = controller;
    metrics.attach(() => controller.status());
    let fuseInstance: FuseInstance | null = null;
    const caller = () => callerOf(fuseInstance!);
    // Hard links: the kernel caches attributes per name (KERNEL_CACHE_S); a change through one name refreshes the others.
    // LinkedNames holds names as fuse-ops sees them (wire forms: fuse-names.ts); the binding takes bytes as latin1.
    // The mirror's inode numbers, when every copy can keep them (copies that differ would never compare equal).
    const withoutInodeIds = [...peersWithoutInodeIds, ...(local && !canKeepInodeIds(local.dir) ? ['the local copy'] : [])];
    if (withoutInodeIds.length > 0) log.warn({ copies: withoutInodeIds }, 'inode numbers: these copies cannot keep trusted.* xattrs (no CAP_SYS_ADMIN, or a file system without xattrs): st_ino comes from the copy that answers');
    const inodeIds = withoutInodeIds.length === 0 ? new InodeIds(epoch) : undefined;
    const linkedNames = new LinkedNames({ invalidate: (path) => invalidatePath(fuseInstance, latin1FromWire(path)), waitMs: LINK_REFRESH_WAIT_MS, log });
    const accessTimes = new AccessTimes({ mode: opts.atime ?? 'relatime', noDirectories: opts.noDiratime ?? false, access: async (path) => void (await controller.mutate({ op: 'access', path })) });
    const readAhead = new KernelReadAhead(log);
    const fuse = new Fuse(mountpoint, withByteNames(onFirstCall(buildFuseOps(controller, log, { fsyncTimeoutMs, onError: (op, errno) => metrics.callFailed(op, errno), caller, linkedNames, accessTimes, inodeIds }), () => readAhead.requestSeen())), {
      // fuse-native joins options with commas, so options it does not know ride
      // on fsname: negative_timeout (cache "no such name" answers). libfuse 3 needs
      // no big_writes (writes arrive up to 1 MiB), and use_ino (st_ino is the file's
      // inode number on the copy that answers, so the names of a hard-linked file
      // share it, as git's local clone checks) is set by our patch of the binding.
      fsname: `mirrorfs,negative_timeout=${NEGATIVE_CACHE_S}`,
      // The mount is the only writer of the tree, and every change goes through
      // this kernel, which updates its own caches: names and attributes can be
      // cached well beyond libfuse's 1 s default.
      entryTimeout: KERNEL_CACHE_S,
      attrTimeout: KERNEL_CACHE_S,
      subtype: 'mirrorfs',
      allowOther: true,
      defaultPermissions: true,
      // A last-resort bound per FUSE request, above our own bounds (start + peer timeout + journal).
      timeout: fuseTimeoutMs,
    });
    fuseInstance = fuse;
    let resolveStopped!: (cleanly: boolean) => void;
    const stopped = new Promise<boolean>((r) => (resolveStopped = r));
    let stopping: Promise<void> | null = null;
    // The control socket opens before the mount, so a failure here leaves no mount behind.
    const control = await startControlServer(mountpoint, {
      status: async () => ({ mountpoint, pid: process.pid, memory: memoryNow(), ...controller.status(), routes: await controller.routes() }),
      unmount: () => stop('mirrorfs unmount'),
      sync: async () => {
        await controller.barrier(null);
        return { synced: true, peers: controller.status().peers.map((p) => ({ name: p.name, durability: p.durability })) };
      },
      verify: (v) =>
        verifyCopies(controller, v).catch((err: unknown) => {
          if (err instanceof VerifyInterrupted) log.warn({ at: err.at }, 'verify stopped: whoever asked for it went away (resume it with --from)');
          throw err;
        }),
    });
    try {
      await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(new Refusal('FUSE_MOUNT_FAILED', `FUSE mount of ${mountpoint} failed: ${err.message}`, { cause: err })) : resolve())));
    } catch (err) {
      await control.close();
      throw err;
    }
    phase = 'mounted';
    lease!.onFenced = (m, err) => controller.fencedBy(m, err);
    lease!.onUnclean = (m) => controller.peerUnclean(m);
    // umount(8) unmounts in the kernel without telling this process: notice, and stop cleanly.
    let unmountedOutside = false;
    const watch = new MountWatch(mountpoint, (reason) => {
      unmountedOutside = true;
      void stop(reason);
    }, log);
    watch.start();
    readAhead.deviceKnown(watch.deviceNumber);
    log.info({ mountpoint, mountId, epoch, ackPolicy: opts.ackPolicy, ackMode: opts.ackMode ?? 'first-hop', commitLevel: opts.commitLevel ?? 'applied', peers: members.map((m) => m.name), localCopy: opts.localCopyDir ?? null }, 'mounted');

    const stop = (reason: string): Promise<void> => {
      stopping ??= (async () => {
        // New changes are refused (EROFS) from here on, so the drain can finish under load.
        controller.stopAdmitting(`${mountpoint} is being unmounted (${reason})`);
        phase = 'stopping';
        lease?.stop();
        watch.stop();
        log.info({ reason, inFlight: controller.operationsInFlight }, 'unmounting: draining in-flight operations');
        const drained = await controller.drain(DRAIN_TIMEOUT_MS);
        if (!drained) log.warn({ inFlight: controller.operationsInFlight }, 'drain timed out; unmounting anyway');
        const unmounted = unmountedOutside || (await unmountFuse(fuse, log));
        await control.close();
        await web?.close();
        if (unmounted && local?.active) writeFileSync(cleanMarker, `${new Date().toISOString()}\n`);
        // Settled only when nothing is in flight and every peer has every change.
        if (drained && controller.allInSync && controller.lastSeq > 0) {
          await Promise.all(members.map((m) => m.client.settle(mountId, epoch, controller.lastSeq))).catch((err: Error) => log.warn({ err: err.message }, 'could not settle the peers\' histories (the next mount compares them)'));
        }
        await controller.close();
        journal.close();
        if (unmounted) log.info({ mountpoint }, 'unmounted');
        resolveStopped(unmounted);
      })();
      return stopping;
    };
    return { controller, stop, stopped };
  } catch (err) {
    lease?.stop(); // a refused mount must not keep the peers' lease alive
    await web?.close();
    await Promise.all(members.map((m) => m.close()));
    local?.close();
    journal.close();
    throw err;
  }
}

function unmountFuse(fuse: FuseInstance, log: Logger): Promise<boolean> {
  return new Promise((resolve) =>
    fuse.unmount((err) => {
      if (err) log.error({ err: err.message }, 'FUSE unmount failed');
      resolve(!err);
    }),
  );
}

/** The mount's memory in bytes (status): resident, the JS heap in use, and what Buffers and other native objects hold outside it. */
function memoryNow(): { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number } {
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external, arrayBuffers };
}

/** The operations, each telling `seen` when it is called (the first call is what matters: KernelReadAhead). */
function onFirstCall<T extends Record<string, (...args: never[]) => void>>(ops: T, seen: () => void): T {
  return Object.fromEntries(Object.entries(ops).map(([name, op]) => [name, (...args: never[]) => {
    seen();
    op(...args);
  }])) as T;
}
