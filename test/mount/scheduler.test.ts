import { describe, expect, it } from 'vitest';
import { Scheduler, claimsFor } from '../../src/mount/scheduler.js';

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
