import { describe, expect, it } from 'vitest';
import { NamespaceLock } from '../../src/store/namespace-lock.js';

/** The peer's namespace lock: fair, and no call waits for it without a bound. */
function held(): { promise: Promise<void>; release: () => void } {
  let release!: () => void;
  const promise = new Promise<void>((r) => (release = r));
  return { promise, release };
}

describe('the namespace lock', () => {
  it('refuses a waiter after its bound (MFS_TIMEOUT, errno EIO: not recorded), and the lock still works', async () => {
    const lock = new NamespaceLock(50);
    const holder = held();
    const holding = lock.run(true, () => holder.promise);
    await expect(lock.run(false, async () => 'never')).rejects.toMatchObject({ code: 'MFS_TIMEOUT', errno: 'EIO', message: expect.stringMatching(/not granted within 50 ms \(shared\)/) });
    holder.release();
    await holding;
    await expect(lock.run(true, async () => 'granted')).resolves.toBe('granted');
  });

  it('lets the waiters behind a refused exclusive waiter in when they fit beside the holders', async () => {
    const lock = new NamespaceLock(50);
    const reader = held();
    const reading = lock.run(false, () => reader.promise);
    const writer = lock.run(true, async () => 'writer ran');
    // Behind the waiting writer (arrival order), although it would fit beside the reader.
    let secondReaderRan = false;
    const secondReader = lock.run(false, async () => {
      secondReaderRan = true;
    });
    await expect(writer).rejects.toMatchObject({ code: 'MFS_TIMEOUT', errno: 'EIO' });
    await secondReader;
    expect(secondReaderRan).toBe(true);
    reader.release();
    await reading;
  });

  it('serves waiters in arrival order: a writer waits for readers, later readers wait for the writer', async () => {
    const lock = new NamespaceLock();
    const order: string[] = [];
    const reader = held();
    const reading = lock.run(false, async () => {
      await reader.promise;
      order.push('reader 1');
    });
    const writing = lock.run(true, async () => void order.push('writer'));
    const laterReading = lock.run(false, async () => void order.push('reader 2'));
    reader.release();
    await Promise.all([reading, writing, laterReading]);
    expect(order).toEqual(['reader 1', 'writer', 'reader 2']);
  });
});
