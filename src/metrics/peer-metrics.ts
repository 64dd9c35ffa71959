import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PeerStatus } from '../protocol/ops.js';

/** Latency buckets (seconds) shared by the mount's and the peer's histograms: 100 µs to 10 s. */
export const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * A peer's (or relay's) Prometheus metrics: requests by operation and outcome,
 * their duration, refusals by code, and gauges read from the peer's status at
 * each scrape (in flight, epoch, lease age, a relay's queue, a pull's progress,
 * free space).
 */
export class PeerMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'mirrorfs_peer_requests_total', help: 'Operations handled, by operation and outcome (ok, or the errno)', labelNames: ['op', 'outcome'], registers: [this.registry] });
  private readonly bytes = new Counter({ name: 'mirrorfs_peer_written_bytes_total', help: 'Bytes of write payloads handled', registers: [this.registry] });
  private readonly duration = new Histogram({ name: 'mirrorfs_peer_request_duration_seconds', help: 'Time from request to answer, by operation', labelNames: ['op'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  private readonly refusals = new Counter({ name: 'mirrorfs_peer_refusals_total', help: 'Requests refused before any operation (certificate, token, version, malformed...), by code and errno', labelNames: ['code', 'errno'], registers: [this.registry] });

  constructor(status: () => PeerStatus, relay: boolean, hasData: boolean) {
    collectDefaultMetrics({ register: this.registry, prefix: 'mirrorfs_peer_' });
    // One status per scrape, however many gauges read it.
    let cached: { at: number; status: PeerStatus } | null = null;
    const current = () => {
      const now = performance.now();
      if (!cached || now - cached.at > 100) cached = { at: now, status: status() };
      return cached.status;
    };
    // A gauge that does not apply now (no pull running) has no sample, rather than a misleading 0.
    const gauge = (name: string, help: string, read: (s: PeerStatus) => number | null) =>
      new Gauge({
        name, help, registers: [this.registry],
        collect() {
          this.reset();
          const v = read(current());
          if (v !== null) this.set(v);
        },
      });
    gauge('mirrorfs_peer_requests_in_flight', 'Requests being handled now', (s) => s.inFlight);
    gauge('mirrorfs_peer_epoch', 'Epoch of the mount that owns this peer (0: none yet)', (s) => s.epoch);
    gauge('mirrorfs_peer_lease_age_seconds', 'Time since the owner last renewed its lease, by this peer\'s monotonic clock', (s) => s.leaseAgeMs / 1000);
    gauge('mirrorfs_peer_applied_changes', 'Changes applied since this process started', (s) => s.applied);
    // Labelled by the source, so that no sample at all is exported while no pull runs (an unlabelled gauge would show 0).
    const pull = (name: string, help: string, read: (p: NonNullable<PeerStatus['pull']>) => number) =>
      new Gauge({
        name, help, labelNames: ['from'], registers: [this.registry],
        collect() {
          this.reset();
          const p = current().pull;
          if (p) this.set({ from: p.from }, read(p));
        },
      });
    pull('mirrorfs_peer_pull_done_bytes', 'A resync pull in progress: bytes copied so far (absent when none runs)', (p) => p.bytesCopied);
    pull('mirrorfs_peer_pull_total_bytes', 'A resync pull in progress: bytes to copy (absent when none runs)', (p) => p.totalBytes);
    gauge('mirrorfs_peer_flushes', 'Flushes of everything applied (syncfs: the background flush and barriers) since this process started', (s) => s.flush.flushes);
    gauge('mirrorfs_peer_flush_failures', 'Flushes that failed (what was applied is not durable; the next flush tries again)', (s) => s.flush.failures);
    gauge('mirrorfs_peer_last_flush_seconds', 'How long the last flush took', (s) => (s.flush.lastFlushMs === null ? null : s.flush.lastFlushMs / 1000));
    gauge('mirrorfs_peer_entry_flushes', 'Flushes of single entries (durable changes, fsync of a file or directory) since this process started', (s) => s.flush.changeFlushes.data + s.flush.changeFlushes.all + s.flush.changeFlushes.dir);
    gauge('mirrorfs_peer_sessions', 'Connections open now (past TLS)', (s) => s.connections?.sessions ?? null);
    gauge('mirrorfs_peer_max_connections', 'The cap on connections (--max-connections)', (s) => s.connections?.max ?? null);
    gauge('mirrorfs_peer_connections_dropped', 'New connections closed at once because the cap was reached and every connection was admitted, since this process started', (s) => s.connections?.dropped ?? null);
    gauge('mirrorfs_peer_connections_evicted', 'Connections not yet admitted closed to make room for a newer one (at the cap, or too many waiting from one address), since this process started', (s) => s.connections?.evicted ?? null);
    gauge('mirrorfs_peer_connections_unadmitted_closed', 'Connections closed because no request of theirs was admitted (certificate, token) within --admit-timeout, since this process started', (s) => s.connections?.unadmittedClosed ?? null);
    gauge('mirrorfs_peer_unclean', '1 while this peer restarted after its machine went down and serves nothing until its owner repairs it', (s) => (s.unclean ? 1 : 0));
    if (hasData) gauge('mirrorfs_peer_data_free_bytes', 'Free space for the mirrored tree (statfs of the data directory, as an unprivileged writer sees it)', (s) => s.disk?.freeBytes ?? null);
    if (relay) {
      gauge('mirrorfs_relay_queue_depth', 'Changes queued for the next hop', (s) => s.relay?.queue.depth ?? null);
      gauge('mirrorfs_relay_queue_bytes', 'Bytes queued for the next hop', (s) => s.relay?.queue.bytes ?? null);
      gauge('mirrorfs_relay_oldest_age_seconds', 'Age of the oldest change still queued (0 when empty)', (s) => (s.relay ? (s.relay.queue.oldestAgeMs ?? 0) / 1000 : null));
      gauge('mirrorfs_relay_forwarded_changes', 'Changes the next hop acknowledged since this process started', (s) => s.relay?.forwarded ?? null);
      gauge('mirrorfs_relay_refused_changes', 'Queued changes the next hop refuses for good', (s) => s.relay?.refused ?? null);
      gauge('mirrorfs_relay_next_hop_connected', '1 while the next hop answers', (s) => (s.relay ? (s.relay.connected ? 1 : 0) : null));
    }
  }

  /** One operation answered (errno null when it succeeded). */
  observe(op: string, seconds: number, writtenBytes: number, errno: string | null): void {
    this.requests.inc({ op, outcome: errno ?? 'ok' });
    this.duration.observe({ op }, seconds);
    if (writtenBytes > 0) this.bytes.inc(writtenBytes);
  }

  refused(code: string, errno: string): void {
    this.refusals.inc({ code, errno });
  }
}
