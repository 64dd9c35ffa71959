import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../src/protocol/buffer-pool.js';
import { BLOCK_BYTES, ReadAhead } from '../../src/mount/cache/read-ahead.js';
import { dataReadBoundMs } from '../../src/mount/fanout/read-path.js';

/** Unit tests of the read-ahead rules, over an in-memory "file" standing in for a peer's answers. */
function fileOf(size: number) {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = i % 251;
  const fetches: [number, number][] = [];
  const fetch = async (_path: string, offset: number, length: number, into?: Buffer) => {
    fetches.push([offset, length]);
    return answer(data, offset, length, into);
  };
  return { data, fetches, fetch };
}

/** What a peer answers: the bytes it holds, written into `into` when given (as PeerClient does). */
function answer(data: Buffer, offset: number, length: number, into?: Buffer): Buffer {
  const bytes = data.subarray(offset, Math.min(data.length, offset + length));
  if (!into) return Buffer.from(bytes);
  bytes.copy(into);
  return into.subarray(0, bytes.length);
}

/** Let queued callbacks run until cond holds (bounded: these fetches settle without I/O). */
async function waitUntil(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  if (!cond()) throw new Error('condition not reached');
}

async function readBytes(ra: ReadAhead, offset: number, length: number): Promise<Buffer> {
  const dest = Buffer.alloc(length);
  return dest.subarray(0, await ra.read('f', offset, length, dest));
}

describe('read-ahead', () => {
  it('does not keep a block whose fetch was still running when a change began', async () => {
    const f = fileOf(2 * BLOCK_BYTES);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let calls = 0;
    const ra = new ReadAhead(async (_path, offset, length, into) => {
      calls++;
      const bytes = answer(f.data, offset, length); // what the peer held when asked
      if (calls === 2) await held; // the block fetch is slow
      return answer(bytes, 0, bytes.length, into);
    });
    await readBytes(ra, 0, 4096); // first read: fetched directly
    const inFlight = readBytes(ra, 4096, 4096); // sequential: fetches block 0 (held)
    ra.invalidate(); // a change begins while block 0 is on its way...
    f.data.fill(9, 0, 16); // ...and the peers now hold new bytes
    release();
    await inFlight;
    const after = await readBytes(ra, 0, 16);
    expect([...after]).toEqual(Array(16).fill(9));
  });

  it('serves sequential reads from blocks and fetches the next block ahead', async () => {
    const f = fileOf(3 * BLOCK_BYTES + 100);
    const ra = new ReadAhead(f.fetch);
    let offset = 0;
    const chunks: Buffer[] = [];
    while (offset < f.data.length) {
      const got = await readBytes(ra, offset, 128 * 1024);
      chunks.push(got);
      offset += got.length;
      if (got.length === 0) break;
    }
    expect(Buffer.concat(chunks).equals(f.data)).toBe(true);
    // a handful of block fetches instead of one round trip per 128 KiB read
    expect(f.fetches.length).toBeLessThanOrEqual(6);
  });

  it('keeps the blocks ahead of a sequential reader in flight together, not one after another', async () => {
    const f = fileOf(8 * BLOCK_BYTES);
    let inFlight = 0;
    let most = 0;
    const gates: Array<() => void> = [];
    const ra = new ReadAhead(async (path, offset, length, into) => {
      inFlight++;
      most = Math.max(most, inFlight);
      // Block fetches wait until the test lets them go, so overlapping ones are seen together.
      if (into) await new Promise<void>((r) => gates.push(r));
      inFlight--;
      return f.fetch(path, offset, length, into);
    });
    await readBytes(ra, 0, 4096); // direct
    const reading = readBytes(ra, 4096, 4096); // sequential: block 0 is fetched
    await waitUntil(() => gates.length === 1);
    gates.shift()!(); // block 0 answers; the reader then asks for blocks 1 and 2 at once
    await reading;
    await waitUntil(() => gates.length === 2);
    expect(most).toBe(2);
    while (gates.length > 0) gates.shift()!();
    const got = await readBytes(ra, 8192, BLOCK_BYTES + 4096); // spans blocks 0-1, both here
    expect(got.equals(f.data.subarray(8192, BLOCK_BYTES + 12288))).toBe(true);
  });

  it('fetches no block past the end of a file whose size it is told, and still reads past a size hint that is too small', async () => {
    const f = fileOf(BLOCK_BYTES + BLOCK_BYTES / 2);
    const ra = new ReadAhead(f.fetch, () => f.data.length);
    for (let offset = 0; offset < f.data.length; offset += 128 * 1024) {
      const got = await readBytes(ra, offset, 128 * 1024);
      expect(got.equals(f.data.subarray(offset, offset + 128 * 1024))).toBe(true);
    }
    expect(f.fetches.filter(([offset]) => offset >= f.data.length)).toEqual([]);
    const hinted = fileOf(3 * BLOCK_BYTES);
    const wrong = new ReadAhead(hinted.fetch, () => BLOCK_BYTES); // says 1 MiB; the file is 3
    for (let offset = 0; offset < hinted.data.length; offset += 256 * 1024) {
      const got = await readBytes(wrong, offset, 256 * 1024);
      if (!got.equals(hinted.data.subarray(offset, offset + 256 * 1024))) throw new Error(`wrong bytes at ${offset}`);
    }
  });

  it('four sequential readers taking turns keep their blocks: each block is fetched once', async () => {
    const files = new Map(['a', 'b', 'c', 'd'].map((name) => [name, fileOf(3 * BLOCK_BYTES)]));
    const ra = new ReadAhead(
      (path, offset, length, into) => files.get(path)!.fetch(path, offset, length, into),
      (path) => files.get(path)!.data.length,
    );
    const step = 128 * 1024;
    for (let offset = 0; offset < 3 * BLOCK_BYTES; offset += step) {
      for (const [name, f] of files) {
        const dest = Buffer.alloc(step);
        const got = dest.subarray(0, await ra.read(name, offset, step, dest));
        if (!got.equals(f.data.subarray(offset, offset + step))) throw new Error(`${name}: wrong bytes at ${offset}`);
      }
    }
    // Per file: the first read on its own, then its three blocks, none of them twice (with too
    // small a cache the readers evict each other's blocks, and every read fetches one again).
    for (const [name, f] of files) expect(f.fetches.filter(([, length]) => length === BLOCK_BYTES).length, name).toBe(3);
  });

  it('a data read is bounded by the peer timeout per MiB it asks for, so a block does not fail where a 1 MiB read would not', () => {
    expect(dataReadBoundMs(4096, 5000)).toBe(5000);
    expect(dataReadBoundMs(1024 * 1024, 5000)).toBe(5000);
    expect(dataReadBoundMs(BLOCK_BYTES, 5000)).toBe(5000 * (BLOCK_BYTES / (1024 * 1024)));
  });

  it('reads spanning two blocks copy both parts in order', async () => {
    const f = fileOf(3 * BLOCK_BYTES);
    const ra = new ReadAhead(f.fetch);
    await readBytes(ra, BLOCK_BYTES - 8192, 4096); // the next read is sequential
    const got = await readBytes(ra, BLOCK_BYTES - 4096, 8192);
    expect(got.equals(f.data.subarray(BLOCK_BYTES - 4096, BLOCK_BYTES + 4096))).toBe(true);
  });

  it('fetches only what a random small read asks for', async () => {
    const f = fileOf(4 * BLOCK_BYTES);
    const ra = new ReadAhead(f.fetch);
    const got = await readBytes(ra, 2 * BLOCK_BYTES + 10, 4096);
    expect(got.equals(f.data.subarray(2 * BLOCK_BYTES + 10, 2 * BLOCK_BYTES + 10 + 4096))).toBe(true);
    expect(f.fetches).toEqual([[2 * BLOCK_BYTES + 10, 4096]]);
  });

  it('forgets every block on a change, and never keeps one fetched across a change', async () => {
    const f = fileOf(2 * BLOCK_BYTES);
    const ra = new ReadAhead(f.fetch);
    await readBytes(ra, 0, 4096);
    await readBytes(ra, 4096, 4096); // sequential: block 0 cached
    const before = f.fetches.length;
    ra.invalidate();
    f.data.fill(7, 0, 10); // the "peer" now holds new bytes
    const after = await readBytes(ra, 8192, 4096);
    expect(f.fetches.length).toBeGreaterThan(before);
    expect(after.equals(f.data.subarray(8192, 8192 + 4096))).toBe(true);
    const fresh = await readBytes(ra, 0, 10);
    expect([...fresh]).toEqual(Array(10).fill(7));
  });

  it('reuses block buffers: reading 64 MiB allocates no more than the cache and read-ahead hold at once', async () => {
    const f = fileOf(64 * BLOCK_BYTES);
    const ra = new ReadAhead(f.fetch);
    const dest = Buffer.alloc(128 * 1024);
    for (let offset = 0; offset < f.data.length; offset += dest.length) {
      const n = await ra.read('f', offset, dest.length, dest);
      expect(n).toBe(dest.length);
      if (!dest.equals(f.data.subarray(offset, offset + n))) throw new Error(`wrong bytes at ${offset}`);
    }
    // 16 cached + 2 ahead + 4 spare at most; without reuse it would be 64
    expect(ra.pool.allocated).toBeLessThanOrEqual(22);
    ra.invalidate();
    await Promise.resolve();
    expect(ra.pool.inUse).toBe(0);
  });

  it('does not hand out a dropped block\'s buffer while a read still waits to copy from it', async () => {
    const f = fileOf(3 * BLOCK_BYTES);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let holdNext = false;
    const ra = new ReadAhead(async (path, offset, length, into) => {
      if (holdNext && into) {
        holdNext = false;
        await held;
      }
      return f.fetch(path, offset, length, into);
    });
    // Reads that span two blocks go through blocks; not sequential, so nothing is fetched ahead.
    holdNext = true;
    const waiting = readBytes(ra, BLOCK_BYTES - 2048, 4096); // blocks 0 (held) and 1
    ra.invalidate(); // block 0 dropped while a read waits for it
    // Other blocks are fetched meanwhile; none may land in block 0's buffer.
    await readBytes(ra, 2 * BLOCK_BYTES - 2048, 4096);
    expect(ra.pool.inUse).toBe(3);
    release();
    expect((await waiting).equals(f.data.subarray(BLOCK_BYTES - 2048, BLOCK_BYTES + 2048))).toBe(true);
    ra.invalidate();
    await new Promise((r) => setImmediate(r));
    expect(ra.pool.inUse).toBe(0);
  });

  it('does not hand out a dropped block\'s buffer while its fetch may still write into it', async () => {
    const f = fileOf(4 * BLOCK_BYTES);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let holding = true;
    const ra = new ReadAhead(async (_path, offset, length, into) => {
      const bytes = answer(f.data, offset, length); // what the peer held when asked
      if (holding && offset >= BLOCK_BYTES) await held; // the block fetched ahead is slow
      return answer(bytes, 0, bytes.length, into);
    });
    await readBytes(ra, 0, 4096);
    await readBytes(ra, 4096, 4096); // sequential: block 0, then block 1 fetched ahead (held)
    ra.invalidate(); // a change begins: all dropped, block 1's fetch still running...
    f.data.fill(5, BLOCK_BYTES, 3 * BLOCK_BYTES); // ...and the peers now hold new bytes
    holding = false;
    const got = await readBytes(ra, 2 * BLOCK_BYTES - 2048, 4096); // blocks 1 and 2 again, in other buffers
    release(); // the old fetches now write into their buffers
    await new Promise((r) => setImmediate(r));
    expect(got.equals(f.data.subarray(2 * BLOCK_BYTES - 2048, 2 * BLOCK_BYTES + 2048))).toBe(true);
    const again = await readBytes(ra, 2 * BLOCK_BYTES - 4096, 8192); // from the cached blocks
    expect(again.equals(f.data.subarray(2 * BLOCK_BYTES - 4096, 2 * BLOCK_BYTES + 4096))).toBe(true);
  });

  it('gives a failed fetch\'s buffer back and passes the error on', async () => {
    const f = fileOf(2 * BLOCK_BYTES);
    let fail = false;
    const ra = new ReadAhead(async (path, offset, length, into) => {
      if (fail && into) throw new Error('peer gone');
      return f.fetch(path, offset, length, into);
    });
    await readBytes(ra, 0, 4096);
    fail = true;
    await expect(readBytes(ra, 4096, 4096)).rejects.toThrow('peer gone');
    await new Promise((r) => setImmediate(r));
    expect(ra.pool.inUse).toBe(0);
    fail = false;
    expect((await readBytes(ra, 8192, 4096)).equals(f.data.subarray(8192, 12288))).toBe(true);
  });
});

describe('buffer pool', () => {
  it('hands a released buffer out again, keeps at most `keep` free, and refuses a double release', () => {
    const pool = new BufferPool(1024, 1);
    const a = pool.acquire();
    const b = pool.acquire();
    pool.release(a);
    pool.release(b); // beyond keep: dropped
    expect(pool.idle).toBe(1);
    expect(pool.acquire()).toBe(a);
    expect(pool.allocated).toBe(2);
    expect(() => pool.release(b)).toThrow(/released once, to the pool it came from/);
  });
});
