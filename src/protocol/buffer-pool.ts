import { assert } from '../assert.js';

/**
 * Buffers of one size, handed out again instead of left to the collector.
 *
 * Why: a buffer that lives a while (a read-ahead block kept for the next
 * reads) is promoted to V8's old generation, and its memory is only given back
 * by a full collection, which V8 starts after about 64 MiB more of such
 * memory. Read through a cache of 1 MiB blocks, that garbage was most of the
 * mount's peak memory (docs/PERFORMANCE.md, session 7). Reused, it is never
 * garbage.
 *
 * The caller owns a buffer from acquire() until it calls release(), and must
 * not touch it afterwards. At most `keep` free buffers are held; more are
 * dropped (to the collector), so an idle pool holds `keep * size` bytes.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  /** Buffers handed out and not yet released: a double release is a bug, refused loudly. */
  private readonly out = new Set<Buffer>();
  private created = 0;

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  acquire(): Buffer {
    // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared pool.
    let buf = this.free.pop();
    if (!buf) {
      buf = Buffer.allocUnsafeSlow(this.size);
      this.created++;
    }
    this.out.add(buf);
    return buf;
  }

  release(buf: Buffer): void {
    assert(this.out.delete(buf), 'a pooled buffer is released once, to the pool it came from');
    if (this.free.length < this.keep) this.free.push(buf);
  }

  /** Give up a buffer that something outside our control may still read: never handed out again, left to the collector. */
  forget(buf: Buffer): void {
    assert(this.out.delete(buf), 'a pooled buffer is forgotten only while it is out');
  }

  /** Buffers handed out and not released (for tests and status). */
  get inUse(): number {
    return this.out.size;
  }

  /** Buffers ever allocated: with reuse working, this stays near the most ever in use at once. */
  get allocated(): number {
    return this.created;
  }

  /** Free buffers held for reuse. */
  get idle(): number {
    return this.free.length;
  }
}

/**
 * Bytes copied into a pooled buffer, given back when the last user lets go.
 * The creator holds one reference (released when its call is answered); each
 * send holds another until its stream closes (BodyHold in peer-client.ts).
 */
export class PooledBytes {
  readonly bytes: Buffer;
  private refs = 1;
  private spoiled = false;

  private constructor(
    private readonly pool: BufferPool,
    private readonly buf: Buffer,
    length: number,
  ) {
    this.bytes = buf.subarray(0, length);
  }

  /** A copy of `source` in a buffer of the pool; null when it does not fit one. */
  static copyOf(pool: BufferPool, source: Buffer): PooledBytes | null {
    if (source.length > pool.size) return null;
    const pooled = new PooledBytes(pool, pool.acquire(), source.length);
    source.copy(pooled.buf);
    return pooled;
  }

  hold(): void {
    assert(this.refs > 0, 'pooled bytes are not held after their buffer went back to the pool');
    this.refs++;
  }

  release(): void {
    assert(this.refs > 0, 'pooled bytes are released no more often than held');
    if (--this.refs > 0) return;
    if (this.spoiled) this.pool.forget(this.buf);
    else this.pool.release(this.buf);
  }

  /** A send ended without the peer's full answer: the buffer may still be read, so it is not reused. */
  spoil(): void {
    this.spoiled = true;
  }
}
