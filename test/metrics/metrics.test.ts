import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runNode } from '../helpers/child.js';
import { cleanupMounts, controlUrl, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { scrape, sumOf, valueOf } from '../helpers/prom.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/** Prometheus metrics scraped over HTTP from a real mount and real peers, and parsed. */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});


/** Send raw bytes to a local HTTP port; resolves with what came back before it closed (bounded). */
function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(request));
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(reply);
    }, 5000);
    socket.on('data', (d: Buffer) => (reply += d.toString()));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(reply);
    });
    socket.on('error', reject);
  });
}

async function peerWithMetrics(name: string, extra: string[] = []): Promise<{ peer: PeerProcess; metrics: string }> {
  const peer = await spawnPeer({ name, extraArgs: ['--metrics-listen', '127.0.0.1:0', ...extra] });
  const port = /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(peer.stdout())![1];
  return { peer, metrics: `http://127.0.0.1:${port}/metrics` };
}

describe('metrics', () => {
  it('the mount counts operations, bytes and latency per peer and kind, errors by errno, and shows lag', async () => {
    const { peer: east, metrics: eastMetrics } = await peerWithMetrics('east');
    const west = await spawnPeer({ name: 'west' });
    const mount = await startMount({ peers: [east, west], extraArgs: ['--control-listen', '127.0.0.1:0', '--ack', '1', '--peer-timeout', '1000'] });
    const url = await controlUrl(mount);
    await runNode(`
      import { writeFileSync, statSync } from 'node:fs';
      for (let i = 0; i < 20; i++) writeFileSync(ARGS[0] + '/f' + i, Buffer.alloc(10000, i));
      try { statSync(ARGS[0] + '/missing'); } catch {}
    `, [mount.mountpoint]);
    let m = await scrape(`${url}/metrics`);
    for (const peer of ['east', 'west']) {
      expect(valueOf(m, 'mirrorfs_peer_operations_total', { peer, op: 'create', outcome: 'ok' })).toBe(20);
      expect(valueOf(m, 'mirrorfs_peer_bytes_total', { peer, op: 'write' })).toBe(200_000);
      // Every call observed once: the histogram's count equals the operations counted.
      expect(valueOf(m, 'mirrorfs_peer_latency_seconds_count', { peer })).toBe(sumOf(m, 'mirrorfs_peer_operations_total', { peer }));
      expect(valueOf(m, 'mirrorfs_peer_latency_seconds_bucket', { peer, le: '+Inf' })).toBe(valueOf(m, 'mirrorfs_peer_latency_seconds_count', { peer }));
      expect(valueOf(m, 'mirrorfs_peer_in_sync', { peer })).toBe(1);
      expect(valueOf(m, 'mirrorfs_peer_connected', { peer })).toBe(1);
    }
    expect(valueOf(m, 'mirrorfs_call_errors_total', { op: 'getattr', errno: 'ENOENT' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(m, 'mirrorfs_calls_in_flight')).toBe(0);
    expect(valueOf(m, 'mirrorfs_last_seq')).toBeGreaterThanOrEqual(40);
    expect(valueOf(m, 'mirrorfs_mount_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(valueOf(m, 'mirrorfs_fsync_barriers')).toBe(0);
    // Commit levels: each peer's applied and durable points, from its lease answers (every second).
    await waitFor(async () => valueOf(await scrape(`${url}/metrics`), 'mirrorfs_peer_applied_through_seq', { peer: 'east' }) === valueOf(m, 'mirrorfs_last_seq'), 'the applied point in the metrics', 15_000, 100);
    m = await scrape(`${url}/metrics`);
    expect(valueOf(m, 'mirrorfs_peer_durable_through_seq', { peer: 'east' })).toBeLessThanOrEqual(valueOf(m, 'mirrorfs_last_seq')!);
    expect(valueOf(m, 'mirrorfs_peer_unclean', { peer: 'east' })).toBe(0);
    // The peer's own view of the same writes.
    const p = await scrape(eastMetrics);
    expect(valueOf(p, 'mirrorfs_peer_flush_failures')).toBe(0);
    expect(valueOf(p, 'mirrorfs_peer_unclean')).toBe(0);
    expect(valueOf(p, 'mirrorfs_peer_requests_total', { op: 'create', outcome: 'ok' })).toBe(20);
    expect(valueOf(p, 'mirrorfs_peer_written_bytes_total')).toBe(200_000);
    expect(valueOf(p, 'mirrorfs_peer_epoch')).toBe(1);
    expect(valueOf(p, 'mirrorfs_peer_data_free_bytes')).toBeGreaterThan(0);
    expect(valueOf(p, 'mirrorfs_peer_request_duration_seconds_count', { op: 'write' })).toBe(20);
    // Gauges that do not apply have no sample: east is no relay, and no pull runs.
    expect(valueOf(p, 'mirrorfs_relay_next_hop_connected')).toBeUndefined();
    expect(valueOf(p, 'mirrorfs_peer_pull_done_bytes')).toBeUndefined();
    expect(valueOf(m, 'mirrorfs_end_to_end_executing')).toBeUndefined();
    // A malformed request target is answered, and the listeners (and the processes) stay up.
    for (const target of [eastMetrics, `${url}/metrics`]) {
      const { port } = new URL(target);
      const reply = await rawHttp(Number(port), 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(reply).toMatch(/^HTTP\/1\.1 404/);
      expect((await scrape(target)).length).toBeGreaterThan(10);
    }
    // west goes down: writes go on (ack 1); its lag and errors show.
    await west.kill9();
    await runNode(`import { writeFileSync } from 'node:fs'; for (let i = 0; i < 5; i++) writeFileSync(ARGS[0] + '/late' + i, 'x');`, [mount.mountpoint]);
    m = await scrape(`${url}/metrics`);
    expect(valueOf(m, 'mirrorfs_peer_in_sync', { peer: 'west' })).toBe(0);
    expect(valueOf(m, 'mirrorfs_peer_behind_operations', { peer: 'west' })).toBeGreaterThanOrEqual(10);
    expect(sumOf(m, 'mirrorfs_peer_operations_total', { peer: 'west', outcome: 'EIO' })).toBeGreaterThanOrEqual(1);
  });

  it('a peer counts refusals by code, and a relay shows its queue for a next hop that is down', async () => {
    const { peer: far } = await peerWithMetrics('far');
    const { peer: relay, metrics: relayMetrics } = await peerWithMetrics('relay', ['--forward-to', far.url]);
    const east = await spawnPeer({ name: 'east' });
    await expect(relay.client({ token: 'a-wrong-token-0123456789' }).status()).rejects.toMatchObject({ code: 'MFS_AUTH' });
    let r = await scrape(relayMetrics);
    expect(valueOf(r, 'mirrorfs_peer_refusals_total', { code: 'MFS_AUTH', errno: 'EACCES' })).toBe(1);
    expect(valueOf(r, 'mirrorfs_relay_queue_depth')).toBe(0);
    const mount = await startMount({ peers: [east, relay] });
    await runNode(`import { writeFileSync } from 'node:fs'; writeFileSync(ARGS[0] + '/first', 'x');`, [mount.mountpoint]);
    await waitFor(async () => {
      const now = await scrape(relayMetrics);
      return valueOf(now, 'mirrorfs_relay_next_hop_connected') === 1 && valueOf(now, 'mirrorfs_relay_queue_depth') === 0;
    }, 'the relay forwarding to a connected next hop');
    await far.kill9();
    await runNode(`import { writeFileSync } from 'node:fs'; for (let i = 0; i < 7; i++) writeFileSync(ARGS[0] + '/q' + i, 'x');`, [mount.mountpoint]);
    r = await scrape(relayMetrics);
    expect(valueOf(r, 'mirrorfs_relay_queue_depth')).toBeGreaterThanOrEqual(14);
    expect(valueOf(r, 'mirrorfs_relay_queue_bytes')).toBeGreaterThan(0);
    await waitFor(async () => valueOf(await scrape(relayMetrics), 'mirrorfs_relay_next_hop_connected') === 0, 'the relay noticing its next hop is down');
    expect(valueOf(await scrape(relayMetrics), 'mirrorfs_relay_oldest_age_seconds')).toBeGreaterThan(0);
  });

  it('the progress of a resync at mount time (west lost everything while it was down: it is rebuilt from east)', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const first = await startMount({ peers: [east, west], extraArgs: ['--ack', '1', '--peer-timeout', '1000'] });
    await west.kill9();
    await runNode(`import { writeFileSync } from 'node:fs'; for (let i = 0; i < 30; i++) writeFileSync(ARGS[0] + '/c' + i, 'x');`, [first.mountpoint]);
    await first.stop();
    const westAgain = await west.restart();
    const second = await startMount({ peers: [east, westAgain], stateDir: first.stateDir, extraArgs: ['--control-listen', '127.0.0.1:0'] });
    const m = await scrape(`${await controlUrl(second)}/metrics`);
    const job = { job: 'resync east -> west', unit: 'bytes' };
    expect(valueOf(m, 'mirrorfs_resync_total', job)).toBe(30);
    expect(valueOf(m, 'mirrorfs_resync_done', job)).toBe(valueOf(m, 'mirrorfs_resync_total', job));
    expect(valueOf(m, 'mirrorfs_resync_running', job)).toBe(0);
    expect(valueOf(m, 'mirrorfs_peer_in_sync', { peer: 'west' })).toBe(1);
  });
});
