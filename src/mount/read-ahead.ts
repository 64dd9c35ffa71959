/**
 * Read-ahead for reads served by a peer (no local copy). A FUSE read is at
 * most 128 KiB, and each would be a round trip; instead the mount fetches
 * aligned 1 MiB blocks and, when a file is read sequentially, the next block
 * before it is asked for.
 *
 * The mount is the only writer, so a block stays valid until the mount itself
 * changes something. Any change clears every block, fetches still running
 * included (through a hard link a write may concern other names); the
 * controller clears before sending a change and again after its outcome, so a
 * block fetched meanwhile is not kept either. Bounded: at most
 * MAX_BLOCKS blocks (16 MiB), least recently used first out.
 */

export const BLOCK_BYTES = 1024 * 1024;
const MAX_BLOCKS = 16;

type Fetch = (path: string, offset: number, length: number) => Promise<Buffer>;
/** Blocks fetched ahead of a sequential reader. */
const AHEAD = 3;

export class ReadAhead {
  private readonly blocks = new Map<string, Promise<Buffer>>();
  /** Where the last read of each path ended, to recognise sequential reading. */
  private readonly lastEnd = new Map<string, number>();

  constructor(private readonly fetch: Fetch) {}

  async read(path: string, offset: number, length: number): Promise<Buffer> {
    const sequential = this.lastEnd.get(path) === offset;
    this.lastEnd.set(path, offset + length);
    if (this.lastEnd.size > 4096) this.lastEnd.delete(this.lastEnd.keys().next().value!);
    const first = Math.floor(offset / BLOCK_BYTES);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / BLOCK_BYTES);
    // Small reads at random places fetch just what they ask for (a block would
    // multiply the bytes moved), unless the block is here already.
    if (!sequential && first === last && !this.blocks.has(`${first}\0${path}`)) return this.fetch(path, offset, length);
    const parts: Buffer[] = [];
    for (let b = first; b <= last; b++) {
      const block = await this.block(path, b);
      const start = b === first ? offset - b * BLOCK_BYTES : 0;
      const end = Math.min(block.length, offset + length - b * BLOCK_BYTES);
      if (start >= block.length) break;
      parts.push(block.subarray(start, end));
      if (block.length < BLOCK_BYTES) break; // end of file
    }
    if (sequential && parts.length > 0) this.warm(path, last + 1, AHEAD);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Fetch up to `count` blocks ahead, one after the other, stopping at the end of the file. */
  private warm(path: string, index: number, count: number): void {
    this.block(path, index).then(
      (block) => {
        if (block.length === BLOCK_BYTES && count > 1) this.warm(path, index + 1, count - 1);
      },
      () => undefined,
    );
  }

  /** Forget everything: called before any change is sent. */
  invalidate(): void {
    this.blocks.clear();
  }

  private block(path: string, index: number): Promise<Buffer> {
    const key = `${index}\0${path}`;
    const cached = this.blocks.get(key);
    if (cached) {
      this.blocks.delete(key);
      this.blocks.set(key, cached);
      return cached;
    }
    const pending = this.fetch(path, index * BLOCK_BYTES, BLOCK_BYTES);
    this.blocks.set(key, pending);
    if (this.blocks.size > MAX_BLOCKS) this.blocks.delete(this.blocks.keys().next().value!);
    pending.catch(() => {
      if (this.blocks.get(key) === pending) this.blocks.delete(key); // a failed fetch is not an answer
    });
    return pending;
  }
}
