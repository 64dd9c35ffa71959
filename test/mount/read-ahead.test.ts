import { describe, expect, it } from 'vitest';
import { BLOCK_BYTES, ReadAhead } from '../../src/mount/read-ahead.js';

/** Unit tests of the read-ahead rules, over an in-memory "file" standing in for a peer's answers. */
function fileOf(size: number) {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = i % 251;
  const fetches: [number, number][] = [];
  const fetch = async (_path: string, offset: number, length: number) => {
    fetches.push([offset, length]);
    return Buffer.from(data.subarray(offset, Math.min(size, offset + length)));
  };
  return { data, fetches, fetch };
}

describe('read-ahead', () => {
  it('does not keep a block whose fetch was still running when a change began', async () => {
    const f = fileOf(2 * BLOCK_BYTES);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let calls = 0;
    const ra = new ReadAhead(async (_path, offset, length) => {
      calls++;
      const answer = Buffer.from(f.data.subarray(offset, offset + length)); // what the peer held when asked
      if (calls === 2) await held; // the block fetch is slow
      return answer;
    });
    await ra.read('f', 0, 4096); // first read: fetched directly
    const inFlight = ra.read('f', 4096, 4096); // sequential: fetches block 0 (held)
    ra.invalidate(); // a change begins while block 0 is on its way...
    f.data.fill(9, 0, 16); // ...and the peers now hold new bytes
    release();
    await inFlight;
    const after = await ra.read('f', 0, 16);
    expect([...after]).toEqual(Array(16).fill(9));
  });

  it('serves sequential reads from 1 MiB blocks and fetches the next block ahead', async () => {
    const f = fileOf(3 * BLOCK_BYTES + 100);
    const ra = new ReadAhead(f.fetch);
    let offset = 0;
    const chunks: Buffer[] = [];
    while (offset < f.data.length) {
      const got = await ra.read('f', offset, 128 * 1024);
      chunks.push(got);
      offset += got.length;
      if (got.length === 0) break;
    }
    expect(Buffer.concat(chunks).equals(f.data)).toBe(true);
    // a handful of block fetches instead of one round trip per 128 KiB read
    expect(f.fetches.length).toBeLessThanOrEqual(6);
  });

  it('fetches only what a random small read asks for', async () => {
    const f = fileOf(4 * BLOCK_BYTES);
    const ra = new ReadAhead(f.fetch);
    const got = await ra.read('f', 2 * BLOCK_BYTES + 10, 4096);
    expect(got.equals(f.data.subarray(2 * BLOCK_BYTES + 10, 2 * BLOCK_BYTES + 10 + 4096))).toBe(true);
    expect(f.fetches).toEqual([[2 * BLOCK_BYTES + 10, 4096]]);
  });

  it('forgets every block on a change, and never keeps one fetched across a change', async () => {
    const f = fileOf(2 * BLOCK_BYTES);
    const ra = new ReadAhead(f.fetch);
    await ra.read('f', 0, 4096);
    await ra.read('f', 4096, 4096); // sequential: block 0 cached
    const before = f.fetches.length;
    ra.invalidate();
    f.data.fill(7, 0, 10); // the "peer" now holds new bytes
    const after = await ra.read('f', 8192, 4096);
    expect(f.fetches.length).toBeGreaterThan(before);
    expect(after.equals(f.data.subarray(8192, 8192 + 4096))).toBe(true);
    const fresh = await ra.read('f', 0, 10);
    expect([...fresh]).toEqual(Array(10).fill(7));
  });
});
