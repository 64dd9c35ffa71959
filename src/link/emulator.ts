import net, { type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP proxy that stands for a wide-area link between two hops: every byte is
 * held for a fixed one-way delay in each direction, and the link can be cut
 * (connections reset, new ones refused) or made to drop silently (bytes
 * vanish, connections stay open, so only timeouts notice) on command.
 *
 * Delay: chunks wait in a FIFO per direction (the delay is constant, so FIFO
 * order is release order). A timer wakes a little early and the rest is
 * waited out with setImmediate, because Node's timers have millisecond
 * granularity and the patent's distances are tens to hundreds of microseconds.
 */

/** The patent's figure: light in fibre, about 5 µs per mile one way. */
export const MICROSECONDS_PER_MILE = 5;

export type LinkMode = 'up' | 'cut' | 'drop';

export interface LinkOptions {
  listenHost: string;
  listenPort: number;
  targetHost: string;
  targetPort: number;
  /** One-way delay added in each direction, in microseconds. */
  delayUs: number;
}

export interface LinkStatus {
  mode: LinkMode;
  delayUs: number;
  listen: string;
  target: string;
  connections: number;
  bytesForwarded: number;
  bytesDropped: number;
}

interface Held {
  at: bigint;
  chunk: Buffer;
}

/** One direction of one connection: bytes from `from` reach `to` delayUs later. */
class DelayedPipe {
  private readonly queue: Held[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;
  private spinning = false;

  constructor(
    private readonly link: LinkEmulator,
    private readonly from: Socket,
    private readonly to: Socket,
  ) {}

  push(chunk: Buffer): void {
    this.queue.push({ at: process.hrtime.bigint() + BigInt(this.link.delayUs) * 1000n, chunk });
    if (this.queue.length - this.head === 1) this.arm();
  }

  private arm(): void {
    if (this.timer || this.spinning || this.head >= this.queue.length) return;
    const waitUs = Number(this.queue[this.head]!.at - process.hrtime.bigint()) / 1000;
    // A timer fires 1 ms or more after it is set, a few hundred µs late at
    // worst: sleep on one while more than ~1.3 ms remain, spin (setImmediate,
    // which still serves I/O) only for the rest, so idle links cost little CPU.
    if (waitUs > 1300) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.arm();
      }, Math.max(1, Math.floor((waitUs - 300) / 1000)));
      return;
    }
    this.spinning = true;
    setImmediate(() => {
      this.spinning = false;
      this.release();
    });
  }

  private release(): void {
    const now = process.hrtime.bigint();
    while (this.head < this.queue.length && this.queue[this.head]!.at <= now) {
      const { chunk } = this.queue[this.head++]!;
      if (this.link.mode === 'drop') this.link.bytesDropped += chunk.length;
      else if (!this.to.destroyed) {
        this.link.bytesForwarded += chunk.length;
        // Backpressure: a slow receiver slows the sender instead of filling memory.
        if (!this.to.write(chunk) && !this.from.isPaused()) {
          this.from.pause();
          this.to.once('drain', () => this.from.resume());
        }
      }
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.arm();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
    this.head = 0;
  }
}

export class LinkEmulator {
  mode: LinkMode = 'up';
  bytesForwarded = 0;
  bytesDropped = 0;
  private readonly server: net.Server;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket; pipes: DelayedPipe[] }>();
  port = 0;

  private constructor(private readonly opts: LinkOptions) {
    this.server = net.createServer({ noDelay: true }, (client) => this.accept(client));
  }

  get delayUs(): number {
    return this.opts.delayUs;
  }

  static async start(opts: LinkOptions): Promise<LinkEmulator> {
    const link = new LinkEmulator(opts);
    await new Promise<void>((resolve, reject) => {
      link.server.once('error', reject);
      link.server.listen(opts.listenPort, opts.listenHost, () => {
        link.server.off('error', reject);
        resolve();
      });
    });
    link.port = (link.server.address() as AddressInfo).port;
    return link;
  }

  private accept(client: Socket): void {
    if (this.mode === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: this.opts.targetHost, port: this.opts.targetPort, noDelay: true });
    const pair = { client, upstream, pipes: [new DelayedPipe(this, client, upstream), new DelayedPipe(this, upstream, client)] };
    this.pairs.add(pair);
    client.on('data', (c: Buffer) => pair.pipes[0]!.push(c));
    upstream.on('data', (c: Buffer) => pair.pipes[1]!.push(c));
    const close = () => {
      if (!this.pairs.delete(pair)) return;
      for (const p of pair.pipes) p.clear();
      client.destroy();
      upstream.destroy();
    };
    // An end or error on either side ends both (after what is held has no one to go to).
    for (const s of [client, upstream]) {
      s.on('error', close);
      s.on('close', close);
    }
  }

  /**
   * up: forward with the delay. cut: reset every connection and refuse new
   * ones (both ends see the failure at once). drop: keep connections open but
   * forward nothing (only timeouts notice). Leaving drop resets the
   * connections, whose byte streams now have holes.
   */
  setMode(mode: LinkMode): void {
    const was = this.mode;
    this.mode = mode;
    if (mode === 'cut' || (was === 'drop' && mode === 'up')) {
      for (const pair of [...this.pairs]) {
        for (const p of pair.pipes) p.clear();
        pair.client.resetAndDestroy();
        pair.upstream.resetAndDestroy();
        this.pairs.delete(pair);
      }
    }
  }

  status(): LinkStatus {
    return {
      mode: this.mode,
      delayUs: this.opts.delayUs,
      listen: `${this.opts.listenHost}:${this.port}`,
      target: `${this.opts.targetHost}:${this.opts.targetPort}`,
      connections: this.pairs.size,
      bytesForwarded: this.bytesForwarded,
      bytesDropped: this.bytesDropped,
    };
  }

  async close(): Promise<void> {
    this.setMode('cut');
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * "250us", "1.5ms", "2s", "120mi" / "120miles" (at 5 µs per mile), or a bare
 * number of milliseconds; `scale` multiplies distances (a scaled-up bench).
 */
export function parseDelay(text: string, scale = 1): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|mi|miles?)?\s*$/i.exec(text);
  if (!m) throw new Error(`delay ${JSON.stringify(text)}: expected a number with us, ms, s or miles (for example 2ms or 120mi)`);
  const n = Number(m[1]);
  const unit = (m[2] ?? 'ms').toLowerCase();
  if (unit === 'us' || unit === 'µs') return Math.round(n);
  if (unit === 'ms') return Math.round(n * 1000);
  if (unit === 's') return Math.round(n * 1_000_000);
  return Math.round(n * MICROSECONDS_PER_MILE * scale);
}
