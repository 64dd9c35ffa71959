import { describe, expect, it } from 'vitest';
import { resendClaims } from '../../src/ordering/claims.js';
import { Scheduler, claimsFor } from '../../src/ordering/scheduler.js';

/** Unit tests of the ordering rules (the kernel already serialises most calls on one inode; these cover the rest). */

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe('claims', () => {
  it('claim the entry exclusively and every ancestor shared', () => {
    expect(claimsFor('a/b/c')).toEqual([
      { path: 'a/b/c', exclusive: true },
      { path: 'a/b', exclusive: false },
      { path: 'a', exclusive: false },
      { path: '', exclusive: false },
    ]);
    expect(claimsFor('a/x', 'b')).toEqual([
      { path: 'a/x', exclusive: true },
      { path: 'a', exclusive: false },
      { path: '', exclusive: false },
      { path: 'b', exclusive: true },
    ]);
  });
});

describe('scheduler', () => {
  it('runs operations on different files at the same time', async () => {
    const s = new Scheduler();
    const g = gate();
    const started: string[] = [];
    const a = s.run(claimsFor('d/a'), async () => { started.push('a'); await g.opened; });
    const b = s.run(claimsFor('d/b'), async () => { started.push('b'); await g.opened; });
    await Promise.resolve();
    expect(started).toEqual(['a', 'b']);
    g.open();
    await Promise.all([a, b]);
  });

  it('runs operations on one file one at a time, in arrival order', async () => {
    const s = new Scheduler();
    const order: number[] = [];
    const gates = [gate(), gate(), gate()];
    const runs = gates.map((g, i) => s.run(claimsFor('f'), async () => { order.push(i); await g.opened; }));
    await Promise.resolve();
    expect(order).toEqual([0]);
    gates[0]!.open();
    await runs[0];
    await Promise.resolve();
    expect(order).toEqual([0, 1]);
    gates[1]!.open();
    gates[2]!.open();
    await Promise.all(runs);
    expect(order).toEqual([0, 1, 2]);
  });

  it('orders a rename of a directory after writes already inside it, and writes after it behind it', async () => {
    const s = new Scheduler();
    const log: string[] = [];
    const g = gate();
    const write1 = s.run(claimsFor('d/f'), async () => { log.push('write1'); await g.opened; log.push('write1 done'); });
    const rename = s.run(claimsFor('d', 'e'), async () => { log.push('rename'); });
    const write2 = s.run(claimsFor('d/g'), async () => { log.push('write2'); });
    await Promise.resolve();
    // write2 does not conflict with write1 but must not overtake the rename that arrived before it
    expect(log).toEqual(['write1']);
    g.open();
    await Promise.all([write1, rename, write2]);
    expect(log).toEqual(['write1', 'write1 done', 'rename', 'write2']);
  });

  it('orders an rmdir against a create inside the directory', async () => {
    const s = new Scheduler();
    const log: string[] = [];
    const g = gate();
    const create = s.run(claimsFor('d/x'), async () => { log.push('create'); await g.opened; });
    const rmdir = s.run(claimsFor('d'), async () => { log.push('rmdir'); });
    await Promise.resolve();
    expect(log).toEqual(['create']);
    g.open();
    await Promise.all([create, rmdir]);
    expect(log).toEqual(['create', 'rmdir']);
  });

  it('releases claims when an operation fails', async () => {
    const s = new Scheduler();
    await expect(s.run(claimsFor('f'), async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    await s.run(claimsFor('f'), async () => undefined);
    expect(s.queued).toBe(0);
  });
});

describe('ordering of re-sent writes (catch-up, relay forwarding)', () => {
  const write = (offset: number, length: number) => ({ request: { op: 'write' as const, path: 'd/f', offset }, payload: Buffer.alloc(length) });
  const catchUpClaims = (e: { request: Parameters<typeof resendClaims>[0]; payload: Buffer }) => resendClaims(e.request, e.payload.length);
  const conflict = (a: ReturnType<typeof resendClaims>, b: ReturnType<typeof resendClaims>) => a.some((x) => b.some((y) => x.path === y.path && (x.exclusive || y.exclusive)));

  it('lets writes to different blocks of one file run together, and orders overlapping ones', () => {
    const K = 128 * 1024;
    expect(conflict(catchUpClaims(write(0, K)), catchUpClaims(write(K, K)))).toBe(false);
    expect(conflict(catchUpClaims(write(0, K)), catchUpClaims(write(K - 1, 2)))).toBe(true);
    expect(conflict(catchUpClaims(write(5 * K + 10, 100)), catchUpClaims(write(5 * K + 4000, 10)))).toBe(true);
  });

  it('orders a write against anything else on its file or above it', () => {
    const truncate = { request: { op: 'truncate' as const, path: 'd/f', size: 0 }, payload: Buffer.alloc(0) };
    const renameDir = { request: { op: 'rename' as const, from: 'd', to: 'e' }, payload: Buffer.alloc(0) };
    expect(conflict(catchUpClaims(write(0, 10)), catchUpClaims(truncate))).toBe(true);
    expect(conflict(catchUpClaims(write(0, 10)), catchUpClaims(renameDir))).toBe(true);
  });

  it('runs non-overlapping writes of one file concurrently in the scheduler, in order otherwise', async () => {
    const s = new Scheduler();
    const first = gate();
    const events: string[] = [];
    const a = s.run(catchUpClaims(write(0, 10)), async () => {
      events.push('a start');
      await first.opened;
      events.push('a end');
    });
    const b = s.run(catchUpClaims(write(1024 * 1024, 10)), async () => void events.push('b')); // another block: does not wait for a
    const c = s.run(catchUpClaims(write(5, 10)), async () => void events.push('c')); // same block as a: waits
    await b;
    expect(events).toEqual(['a start', 'b']);
    first.open();
    await Promise.all([a, c]);
    expect(events).toEqual(['a start', 'b', 'a end', 'c']);
  });
});
