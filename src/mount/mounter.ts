import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { PeerSpec } from './config.js';
import { checkPeersAgree, prepareLocalCopy } from './consistency.js';
import { MirrorController } from './controller.js';
import { startControlServer } from './control.js';
import { loadFuse, type FuseInstance } from './fuse-binding.js';
import { buildFuseOps } from './fuse-ops.js';
import { loadMountId } from './identity.js';
import { LocalCopy } from './local-copy.js';
import { Member } from './member.js';
import { checkMountpoint } from './mountpoint.js';
import { establishOwnership } from './ownership.js';

export interface MountOptions {
  mountpoint: string;
  peers: PeerSpec[];
  localCopyDir?: string;
  stateDir: string;
  /** Bound on every call to a peer. */
  peerTimeoutMs: number;
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
/** Seconds the kernel may cache names, attributes and negative lookups. */
const KERNEL_CACHE_S = 60;

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
  let local: LocalCopy | null = null;
  try {
    const { epoch, lastSeq, progressAgrees } = await establishOwnership(mountId, members, log);
    if (!progressAgrees) log.warn('the peers applied different amounts of this mount\'s history: comparing their contents');
    const manifest = await checkPeersAgree(members, { content: !progressAgrees });
    const cleanMarker = join(opts.stateDir, 'local-copy.clean');
    if (opts.localCopyDir) {
      local = new LocalCopy(opts.localCopyDir, log);
      await prepareLocalCopy(local, manifest, members[0]!, log, { trusted: existsSync(cleanMarker) });
    }
    // Written again only by a clean unmount with the local copy still in step.
    rmSync(cleanMarker, { force: true });
    const controller = new MirrorController({ mountId, epoch, lastSeq, members, local, log });
    const fuse = new Fuse(mountpoint, buildFuseOps(controller, log), {
      // fuse-native joins options with commas, so options it does not know ride
      // on fsname: big_writes (else the kernel splits writes into 4 KiB requests,
      // FIELD-NOTES) and negative_timeout (cache "no such name" answers).
      fsname: `mirrorfs,big_writes,negative_timeout=${KERNEL_CACHE_S}`,
      // The mount is the only writer of the tree, and every change goes through
      // this kernel, which updates its own caches: names and attributes can be
      // cached well beyond libfuse's 1 s default.
      entryTimeout: KERNEL_CACHE_S,
      attrTimeout: KERNEL_CACHE_S,
      subtype: 'mirrorfs',
      allowOther: true,
      defaultPermissions: true,
      // A last-resort bound per FUSE request, above our own peer timeouts.
      timeout: Math.max(60_000, opts.peerTimeoutMs * 4),
    });
    let resolveStopped!: (cleanly: boolean) => void;
    const stopped = new Promise<boolean>((r) => (resolveStopped = r));
    let stopping: Promise<void> | null = null;
    // The control socket opens before the mount, so a failure here leaves no mount behind.
    const control = await startControlServer(mountpoint, {
      status: () => ({ mountpoint, pid: process.pid, ...controller.status() }),
      unmount: () => stop('mirrorfs unmount'),
    });
    try {
      await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(new Error(`FUSE mount of ${mountpoint} failed: ${err.message}`)) : resolve())));
    } catch (err) {
      await control.close();
      throw err;
    }
    log.info({ mountpoint, mountId, epoch, peers: members.map((m) => m.name), localCopy: opts.localCopyDir ?? null }, 'mounted');

    const stop = (reason: string): Promise<void> => {
      stopping ??= (async () => {
        // New changes are refused (EROFS) from here on, so the drain can finish under load.
        controller.stopAdmitting(`${mountpoint} is being unmounted (${reason})`);
        log.info({ reason, inFlight: controller.operationsInFlight }, 'unmounting: draining in-flight operations');
        if (!(await controller.drain(DRAIN_TIMEOUT_MS))) log.warn({ inFlight: controller.operationsInFlight }, 'drain timed out; unmounting anyway');
        const unmounted = await unmountFuse(fuse, log);
        await control.close();
        if (unmounted && local?.active) writeFileSync(cleanMarker, `${new Date().toISOString()}\n`);
        await controller.close();
        if (unmounted) log.info({ mountpoint }, 'unmounted');
        resolveStopped(unmounted);
      })();
      return stopping;
    };
    return { controller, stop, stopped };
  } catch (err) {
    await Promise.all(members.map((m) => m.close()));
    local?.close();
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
