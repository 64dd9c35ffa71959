import { describe, expect, it } from 'vitest';
import { Limiter } from '../../src/ordering/limiter.js';

/** The bound on calls at once that catch-up and the linked-name lookups share (ordering/limiter.ts). */
describe('Limiter', () => {
  it('never lets more than its limit hold at once, hands a released slot to the first waiter, and keeps arrival order', async () => {
    const limiter = new Limiter(2);
    let holding = 0;
    let most = 0;
    const order: number[] = [];
    const work = Array.from({ length: 8 }, (_, i) =>
      limiter.run(async () => {
        order.push(i);
        holding++;
        most = Math.max(most, holding);
        await new Promise((r) => setImmediate(r));
        holding--;
      }),
    );
    // A caller that arrives while slots change hands does not jump the queue.
    const late = limiter.acquire().then(() => order.push(99));
    await Promise.all(work);
    await late;
    limiter.release();
    expect(most).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 99]);
    expect(limiter.holders).toBe(0);
  });

  it('a caller that arrives right after a release waits: the slot went to the waiter already', async () => {
    const limiter = new Limiter(1);
    await limiter.acquire();
    let waiterIn = false;
    let intruderIn = false;
    const waiter = limiter.acquire().then(() => (waiterIn = true));
    limiter.release();
    const intruder = limiter.acquire().then(() => (intruderIn = true));
    await waiter;
    await new Promise((r) => setImmediate(r));
    expect([waiterIn, intruderIn, limiter.holders]).toEqual([true, false, 1]);
    limiter.release();
    await intruder;
    expect([intruderIn, limiter.holders]).toEqual([true, 1]);
  });
});
