import { afterEach, describe, expect, it } from 'vitest';
import type { PeerStatus } from '../../src/protocol/ops.js';
import { expectAckedEverywhere, expectConverged, expectExactlyOnce } from '../helpers/converge.js';
import { cleanupLinks, spawnLink } from '../helpers/link.js';
import { cleanupMounts, startMount, type MountProcess } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { cleanupWriters, startWriter, type Writer } from '../helpers/writer.js';

/**
 * Fig. 6: a cascade of relays. The mount writes to east directly and to west
 * through relay1 -> (emulated link) -> relay2 -> relay3 -> the far mirror.
 * relay1 and relay3 are pure relays; relay2 keeps a copy too. Every change
 * must arrive exactly once at every copy, whatever happens to the links and
 * relays in between.
 */

afterEach(async () => {
  await cleanupWriters();
  await cleanupMounts();
  await cleanupPeers();
  await cleanupLinks();
  cleanupTmp();
});

async function cascade() {
  const east = await spawnPeer({ name: 'east' });
  const mirror = await spawnPeer({ name: 'mirror' });
  const relay3 = await spawnPeer({ name: 'relay3', pure: true, extraArgs: ['--forward-to', mirror.url] });
  const relay2 = await spawnPeer({ name: 'relay2', extraArgs: ['--forward-to', relay3.url] });
  const link2 = await spawnLink(relay2.port, '2ms');
  const relay1 = await spawnPeer({ name: 'relay1', pure: true, extraArgs: ['--forward-to', link2.url] });
  const west: PeerProcess = { ...relay1, name: 'west' };
  const m = await startMount({ peers: [east, west] });
  return { east, mirror, relay3, relay2, link2, relay1, m };
}

/** Queue depth of every relay down the chain from this status. */
function queueDepths(status: PeerStatus): number[] {
  const out: number[] = [];
  let s: PeerStatus | { error: string } | null = status;
  while (s && 'relay' in s && s.relay) {
    out.push(s.relay.queue.depth);
    s = s.relay.next;
  }
  if (s && 'error' in s) out.push(-1); // a hop could not be reached
  return out;
}

async function waitChainDrained(first: PeerProcess): Promise<void> {
  const client = first.client();
  await waitFor(async () => {
    const depths = queueDepths(await client.status());
    return depths.length === 3 && depths.every((d) => d === 0);
  }, 'every relay queue to drain', 30_000, 100);
}

/**
 * Let the writer go on for a while after a fault was repaired, stop it, wait for
 * every relay queue to drain; then no write failed and every copy has every
 * acknowledged write and compares equal.
 */
async function finishStream(w: Writer, relay1: PeerProcess, m: MountProcess, copies: PeerProcess[]): Promise<void> {
  await w.waitAcked(w.log().acked.length + 20);
  const log = await w.stop();
  await waitChainDrained(relay1);
  expect(log.errors).toEqual([]);
  expectAckedEverywhere(log, copies.map((c) => c.dataDir));
  await expectConverged(m, copies);
}

describe('a cascade mount -> relay -> relay -> relay -> mirror', () => {
  it('delivers everything exactly once, and the trees compare equal', async () => {
    const { east, mirror, relay2, relay1, m } = await cascade();
    const w = startWriter(m.mountpoint, 'c');
    await w.waitAcked(40);
    const log = await w.stop();
    await waitChainDrained(relay1);
    expect(log.errors).toEqual([]);
    expectAckedEverywhere(log, [m.mountpoint, east.dataDir, relay2.dataDir, mirror.dataDir]);
    await expectConverged(m, [east, relay2, mirror]);
    await expectExactlyOnce(east, relay2, mirror);
    // Each hop reports its queue and the hops after it.
    const status = await relay1.client().status();
    expect(status.dataDir).toBeNull();
    expect(status.relay).toMatchObject({ connected: true, queue: { depth: 0 }, diverged: 0 });
    expect(status.relay!.forwarded).toBeGreaterThan(0);
  });

  it('the second link cut mid-stream: the writer never notices, changes queue at relay1, and arrive once when it returns', async () => {
    const { east, mirror, relay2, relay1, link2, m } = await cascade();
    const w = startWriter(m.mountpoint, 'c');
    await w.waitAcked(20);
    const client = relay1.client();
    // The queue's age is the relay's Date.now() minus when it queued the change: timed here on the same clock.
    // A change queued before the cut may still be waiting after it, so the bound adds the oldest age just before the cut.
    const beforeCut = Date.now();
    const ageBeforeCut = (await client.status()).relay!.queue.oldestAgeMs ?? 0;
    await link2.setMode('cut');
    await waitFor(async () => (queueDepths(await client.status())[0] ?? 0) > 5, 'changes to queue at relay1 while the link is cut', 20_000, 50);
    // The oldest queued change ages while the link is down, in milliseconds.
    const aged = await waitFor(async () => {
      const age = (await client.status()).relay!.queue.oldestAgeMs ?? 0;
      return age >= 500 ? { age, bound: Date.now() - beforeCut + ageBeforeCut } : null;
    }, 'the oldest queued change at relay1 to be 500 ms old', 20_000, 50);
    expect(aged.age).toBeLessThanOrEqual(aged.bound);
    await link2.setMode('up');
    await finishStream(w, relay1, m, [east, relay2, mirror]);
    await expectExactlyOnce(east, relay2, mirror);
  });

  it('a relay killed with -9 mid-stream and restarted: what it had acknowledged is still delivered, once', async () => {
    const { east, mirror, relay2, relay1, m } = await cascade();
    const w = startWriter(m.mountpoint, 'c');
    await w.waitAcked(20);
    await relay2.kill9();
    await waitFor(async () => (queueDepths(await relay1.client().status())[0] ?? 0) > 5, 'changes to queue at relay1 while relay2 is down', 20_000, 50);
    await relay2.restart();
    await finishStream(w, relay1, m, [east, relay2, mirror]);
    // relay2's own counter restarted with it; the far mirror's did not.
    await expectExactlyOnce(east, mirror);
  });

  it('a remount while a relay still holds changes of the old epoch: they reach the mirror before the new epoch does, once', async () => {
    // mount -> relay (keeps a copy, so the remount can compare it while the link is cut) -> link -> mirror
    const east = await spawnPeer({ name: 'east' });
    const mirror = await spawnPeer({ name: 'mirror' });
    const link = await spawnLink(mirror.port, '1ms');
    const relay = await spawnPeer({ name: 'relay', extraArgs: ['--forward-to', link.url] });
    const west: PeerProcess = { ...relay, name: 'west' };
    const m = await startMount({ peers: [east, west] });
    const w = startWriter(m.mountpoint, 'old');
    await w.waitAcked(5);
    await link.setMode('cut');
    await waitFor(async () => (queueDepths(await relay.client().status())[0] ?? 0) > 10, 'changes to queue at the relay', 20_000, 50);
    const before = await w.stop();
    await m.stop();
    const again = await startMount({ peers: [east, west], stateDir: m.stateDir }); // a new epoch, the old one still queued
    const w2 = startWriter(again.mountpoint, 'new');
    await w2.waitAcked(10);
    const after = await w2.stop();
    await link.setMode('up');
    await waitFor(async () => queueDepths(await relay.client().status())[0] === 0, 'the relay queue to drain', 30_000, 100);
    expect([...before.errors, ...after.errors]).toEqual([]);
    expectAckedEverywhere(before, [east.dataDir, relay.dataDir, mirror.dataDir]);
    expectAckedEverywhere(after, [again.mountpoint, east.dataDir, relay.dataDir, mirror.dataDir]);
    await expectConverged(again, [east, relay, mirror]);
    await expectExactlyOnce(east, mirror);
  });
});
