import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ControllerStatus } from '../fanout/mirror.js';
import type { Member } from '../peers/member.js';
import type { ProgressReporter } from '../recovery/progress.js';
import { LATENCY_BUCKETS } from '../../metrics/peer-metrics.js';

/** A long job's progress (catch-up or resync at mount time), as the status page and metrics show it. */
export interface JobProgress {
  job: string;
  unit: string;
  done: number;
  total: number;
  running: boolean;
}

/**
 * The mount's Prometheus metrics: per peer, operations and bytes by kind,
 * latency histograms and errors by errno (counted as calls complete); gauges
 * read from the controller at each scrape (in flight, connected, in sync,
 * lag, end-to-end tracking); errors returned to applications by errno; and the
 * progress of a catch-up or resync.
 */
export class MountMetrics {
  readonly registry = new Registry();
  /** The job running or last run at mount time (null before any). */
  progress: JobProgress | null = null;
  private status: (() => ControllerStatus) | null = null;
  private readonly operations = new Counter({ name: 'mirrorfs_peer_operations_total', help: 'Calls to each peer that got an answer or failed, by operation and outcome (ok, or the errno)', labelNames: ['peer', 'op', 'outcome'], registers: [this.registry] });
  private readonly bytes = new Counter({ name: 'mirrorfs_peer_bytes_total', help: 'Payload bytes sent to each peer, by operation', labelNames: ['peer', 'op'], registers: [this.registry] });
  private readonly latency = new Histogram({ name: 'mirrorfs_peer_latency_seconds', help: 'Time from sending a call to a peer to its answer', labelNames: ['peer'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  private readonly callErrors = new Counter({ name: 'mirrorfs_call_errors_total', help: 'File system calls that failed, by FUSE operation and the errno the application got (normal lookups of absent names, getattr ENOENT, count too)', labelNames: ['op', 'errno'], registers: [this.registry] });

  constructor(members: Member[], endToEnd: boolean) {
    collectDefaultMetrics({ register: this.registry, prefix: 'mirrorfs_mount_' });
    for (const m of members) {
      m.observer = (peer, op, seconds, bytes, errno) => {
        this.operations.inc({ peer, op, outcome: errno ?? 'ok' });
        this.latency.observe({ peer }, seconds);
        if (bytes > 0) this.bytes.inc({ peer, op }, bytes);
      };
    }
    const metrics = this;
    const perPeer = (name: string, help: string, read: (p: ControllerStatus['peers'][number]) => number) =>
      new Gauge({
        name, help, labelNames: ['peer'], registers: [this.registry],
        collect() {
          this.reset();
          for (const p of metrics.status?.().peers ?? []) this.set({ peer: p.name }, read(p));
        },
      });
    new Counter({
      name: 'mirrorfs_peer_connect_attempts_total', help: 'Connections to the peer opened or attempted', labelNames: ['peer'], registers: [this.registry],
      collect() {
        this.reset();
        for (const m of members) this.inc({ peer: m.name }, m.client.connectAttempts);
      },
    });
    perPeer('mirrorfs_peer_calls_in_flight', 'Calls to the peer waiting for an answer', (p) => p.inFlight);
    perPeer('mirrorfs_peer_connected', '1 while the peer answers', (p) => (p.connected ? 1 : 0));
    perPeer('mirrorfs_peer_in_sync', '1 while the peer has every change; 0 while it is behind (catching up or down)', (p) => (p.state === 'in-sync' ? 1 : 0));
    perPeer('mirrorfs_peer_behind_operations', 'Changes the peer lacks (its lag)', (p) => p.behind?.ops ?? 0);
    perPeer('mirrorfs_peer_behind_bytes', 'Bytes of changes the peer lacks', (p) => p.behind?.bytes ?? 0);
    // Commit levels (issue 21), as the peer's last lease answer said (no sample before the first).
    const perPeerKnown = (name: string, help: string, read: (p: ControllerStatus['peers'][number]) => number | null) =>
      new Gauge({
        name, help, labelNames: ['peer'], registers: [this.registry],
        collect() {
          this.reset();
          for (const p of metrics.status?.().peers ?? []) {
            const v = read(p);
            if (v !== null) this.set({ peer: p.name }, v);
          }
        },
      });
    perPeerKnown('mirrorfs_peer_applied_through_seq', 'Every change of this mount up to this seq is applied on the peer', (p) => p.durability?.appliedThrough ?? null);
    perPeerKnown('mirrorfs_peer_durable_through_seq', 'Every change of this mount up to this seq is on the peer\'s stable storage (its last flush)', (p) => p.durability?.durableThrough ?? null);
    perPeerKnown('mirrorfs_peer_undurable_age_seconds', 'Age of the oldest change applied on the peer but not yet durable (0: none)', (p) => (p.durability ? (p.durability.oldestUndurableAgeMs ?? 0) / 1000 : null));
    perPeer('mirrorfs_peer_unclean', '1 while the peer restarted after its machine went down and is not exact until it is repaired (while mounted when the mount knows the names changed since its durable point, else by a remount)', (p) => (p.unclean ? 1 : 0));
    const whole = (name: string, help: string, read: (s: ControllerStatus) => number | null) =>
      new Gauge({
        name, help, registers: [this.registry],
        collect() {
          this.reset();
          const s = metrics.status?.();
          const v = s ? read(s) : null;
          if (v !== null) this.set(v);
        },
      });
    whole('mirrorfs_calls_in_flight', 'Changes being mirrored now', (s) => s.inFlight);
    whole('mirrorfs_calls_waiting', 'Changes waiting for an earlier conflicting change', (s) => s.queued);
    whole('mirrorfs_last_seq', 'Sequence number of the last change', (s) => s.seq);
    whole('mirrorfs_epoch', 'This mount\'s epoch on its peers', (s) => s.epoch);
    whole('mirrorfs_fenced', '1 once another mount took the peers over', (s) => (s.fenced ? 1 : 0));
    whole('mirrorfs_fsync_barriers', 'fsync, fdatasync, fsyncdir and mirrorfs sync sent to the peers since the mount started', (s) => s.barriers.sent);
    whole('mirrorfs_fsync_barriers_failed', 'Of those, the ones that failed (too few peers flushed, or in the asynchronous mode caught up in time)', (s) => s.barriers.failed);
    whole('mirrorfs_async_waiting_changes', 'The asynchronous mode: changes waiting for the peers to come back under --max-lag', (s) => s.lag?.waiting ?? null);
    if (endToEnd) whole('mirrorfs_end_to_end_executing', 'Ack mode end-to-end: changes the far mirrors have not committed yet', (s) => s.endToEnd?.executing ?? null);
    const job = (name: string, help: string, read: (p: JobProgress) => number) =>
      new Gauge({
        name, help, labelNames: ['job', 'unit'], registers: [this.registry],
        collect() {
          this.reset();
          const p = metrics.progress;
          if (p) this.set({ job: p.job, unit: p.unit }, read(p));
        },
      });
    job('mirrorfs_resync_done', 'Catch-up or resync at mount time: units done', (p) => p.done);
    job('mirrorfs_resync_total', 'Catch-up or resync at mount time: units to do', (p) => p.total);
    job('mirrorfs_resync_running', '1 while the job runs', (p) => (p.running ? 1 : 0));
  }

  /** From now on, gauges read this controller's status. */
  attach(status: () => ControllerStatus): void {
    this.status = status;
  }

  /** A FUSE call failed with this errno. */
  callFailed(op: string, errno: string): void {
    this.callErrors.inc({ op, errno });
  }

  /** A reporter that also keeps the job's progress here. */
  track(reporter: ProgressReporter): ProgressReporter {
    return {
      start: (label, total, unit) => {
        this.progress = { job: label, unit, total, done: 0, running: true };
        reporter.start(label, total, unit);
      },
      update: (done) => {
        if (this.progress) this.progress.done = done;
        reporter.update(done);
      },
      stop: () => {
        if (this.progress) this.progress.running = false;
        reporter.stop();
      },
    };
  }
}
