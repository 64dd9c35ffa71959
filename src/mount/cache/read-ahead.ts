import { BufferPool } from '../../protocol/buffer-pool.js';

/**
 * Read-ahead for reads served by a peer (no local copy). A FUSE read is at
 * most 128 KiB, and each would be a round trip; instead the mount fetches
 * aligned 4 MiB blocks and, when a file is read sequentially, the next
 * blocks before they are asked for.
 *
 * The mount is the only writer, so a block stays valid until the mount itself
 * changes something. Any change clears every block, fetches still running
 * included (through a hard link a write may concern other names); the
 * controller clears before sending a change and again after its outcome, so a
 * block fetched meanwhile is not kept either. Bounded: at most
 * MAX_BLOCKS blocks (48 MiB), least recently used first out.
 *
 * Blocks live in pooled buffers (buffer-pool.ts): a block dropped from the
 * cache goes back to the pool once its fetch has settled and no read is
 * copying from it, so reading a large file makes no garbage of 1 MiB blocks.
 * Reads copy straight into the caller's buffer (the kernel's, for FUSE).
 */

/**
 * Each block is a request, an HTTP/2 stream and its answer's objects: per MiB read, fewer of
 * them is less work for the collector. Three cold 512 MiB reads over TLS (session 20, three
 * runs each): 1 MiB blocks 161-240 MB/s and 7.9-10.1 s of the mount's CPU, 4 MiB blocks
 * 187-281 MB/s and 6.9-8.7 s. 4 MiB is the most a peer answers (protocol/ops.ts).
 */
export const BLOCK_BYTES = 4 * 1024 * 1024;
/**
 * Four sequential readers' blocks (each the one it reads and AHEAD more: 3). More readers at
 * once evict each other's blocks before they are read, and every read then fetches a block
 * again: a cliff, which 1 MiB blocks met at six readers (16 MiB), these at five (48 MiB).
 */
const MAX_BLOCKS = 12;
/** Free block buffers kept for reuse beyond those cached (what one sequential reader cycles through). */
const SPARE_BLOCKS = 2;

/** Fetch bytes from a peer; with `into`, the bytes are written there and the answer is a view of it. */
export type Fetch = (path: string, offset: number, length: number, into?: Buffer) => Promise<Buffer>;
/**
 * Blocks fetched ahead of a sequential reader, in flight together: while the
 * mount copies one answer out, the peer reads and sends the next (its disk
 * reads run on its thread pool). Measured on a cold 512 MiB file over two
 * loopback peers (session 8): one at a time 160-229 MB/s, two 209-257, three
 * 218-230 (the mount's CPU is the limit beyond two).
 */
const AHEAD = 2;

type Block = {
  /** The block's bytes: a view of `buf`, shorter at the end of the file. */
  data: Promise<Buffer>;
  buf: Buffer;
  /** Reads waiting for or copying from this block. */
  readers: number;
  cached: boolean;
  settled: boolean;
  recycled: boolean;
};

export class ReadAhead {
  private readonly blocks = new Map<string, Block>();
  /** Where the last read of each path ended, to recognise sequential reading. */
  private readonly lastEnd = new Map<string, number>();
  readonly pool = new BufferPool(BLOCK_BYTES, SPARE_BLOCKS);

  /** `knownSize`: a file's size when the mount knows it (its name cache), so no block past the end is fetched ahead. */
  constructor(
    private readonly fetch: Fetch,
    private readonly knownSize: (path: string) => number | undefined = () => undefined,
  ) {}

  /** Read into `dest` (from its start); resolves with the bytes read (fewer at the end of the file). */
  async read(path: string, offset: number, length: number, dest: Buffer): Promise<number> {
    const sequential = this.lastEnd.get(path) === offset;
    this.lastEnd.set(path, offset + length);
    if (this.lastEnd.size > 4096) this.lastEnd.delete(this.lastEnd.keys().next().value!);
    const first = Math.floor(offset / BLOCK_BYTES);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / BLOCK_BYTES);
    // Small reads at random places fetch just what they ask for (a block would
    // multiply the bytes moved), unless the block is here already.
    if (!sequential && first === last && !this.blocks.has(`${first}\0${path}`)) {
      const got = await this.fetch(path, offset, length);
      return got.copy(dest, 0, 0, Math.min(length, got.length));
    }
    let copied = 0;
    let fetchedAll = true;
    for (let b = first; b <= last; b++) {
      const block = this.block(path, b);
      block.readers++;
      try {
        const data = await block.data;
        const start = b === first ? offset - b * BLOCK_BYTES : 0;
        const end = Math.min(data.length, offset + length - b * BLOCK_BYTES);
        if (start < data.length) copied += data.copy(dest, copied, start, end);
        if (start >= data.length || data.length < BLOCK_BYTES) {
          fetchedAll = false;
          break; // end of file
        }
      } finally {
        block.readers--;
        this.recycle(block);
      }
    }
    if (sequential && fetchedAll) this.warm(path, last + 1);
    return copied;
  }

  /** Start fetching the AHEAD blocks after a sequential reader's position, all at once (those cached already are not fetched again). */
  private warm(path: string, index: number): void {
    const size = this.knownSize(path);
    for (let i = 0; i < AHEAD; i++) {
      if (size !== undefined && (index + i) * BLOCK_BYTES >= size) break;
      this.block(path, index + i).data.catch(() => undefined);
    }
  }

  /** Forget everything: called before any change is sent. */
  invalidate(): void {
    for (const block of this.blocks.values()) this.drop(block);
    this.blocks.clear();
  }

  private block(path: string, index: number): Block {
    const key = `${index}\0${path}`;
    const cached = this.blocks.get(key);
    if (cached) {
      this.blocks.delete(key);
      this.blocks.set(key, cached);
      return cached;
    }
    const buf = this.pool.acquire();
    const block: Block = { data: this.fetch(path, index * BLOCK_BYTES, BLOCK_BYTES, buf), buf, readers: 0, cached: true, settled: false, recycled: false };
    block.data.then(
      () => {
        block.settled = true;
        this.recycle(block);
      },
      () => {
        block.settled = true;
        // A failed fetch is not an answer: not kept.
        if (this.blocks.get(key) === block) this.blocks.delete(key);
        this.drop(block);
      },
    );
    this.blocks.set(key, block);
    if (this.blocks.size > MAX_BLOCKS) {
      const oldest = this.blocks.keys().next().value!;
      this.drop(this.blocks.get(oldest)!);
      this.blocks.delete(oldest);
    }
    return block;
  }

  private drop(block: Block): void {
    block.cached = false;
    this.recycle(block);
  }

  /** Back to the pool once nothing can touch the buffer: out of the cache, fetch settled (nothing writes into it), no read copying. */
  private recycle(block: Block): void {
    if (block.cached || !block.settled || block.readers > 0 || block.recycled) return;
    block.recycled = true;
    this.pool.release(block.buf);
  }
}
