import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

/**
 * How many connections a peer holds at once, and how long a connection may
 * take to prove who it is (issue 22: connections were unbounded, a session
 * without a certificate stayed open five minutes, a TCP connection that never
 * started TLS two; 260 idle ones under a 256-descriptor limit cut off a
 * trusted client).
 */

/** A connection must finish its TLS handshake and have a first request admitted (certificate, token) within this long. */
export const DEFAULT_ADMIT_TIMEOUT_MS = 10_000;

/**
 * Descriptors kept for the peer itself: its fd cache (256), manifest walks (2 at once, 8 files
 * each), its state, syncfs and the listening socket.
 */
const DESCRIPTORS_KEPT = 320;

/**
 * The default cap on connections: half of what the descriptor limit leaves
 * after the peer's own (at least 16, at most 4096). See ConnectionGuard for
 * what happens at the cap.
 */
export function defaultMaxConnections(limitsFile = '/proc/self/limits'): number {
  let soft = 1024;
  try {
    const line = readFileSync(limitsFile, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const value = line?.split(/\s{2,}/)[1];
    if (value !== undefined && value !== 'unlimited' && Number.isFinite(Number(value))) soft = Number(value);
    else if (value === 'unlimited') soft = 1 << 20;
  } catch {
    // Not Linux, or no /proc: the common default.
  }
  return Math.max(16, Math.min(4096, Math.floor((soft - DESCRIPTORS_KEPT) / 2)));
}

/** Connections from one address that may wait for admission at once; an older one is closed for a newer. */
const UNADMITTED_PER_ADDRESS = 8;

export interface ConnectionStats {
  /** The cap on connections (--max-connections). */
  max: number;
  /** Sessions open now (connections past TLS). */
  sessions: number;
  /** New connections closed at once: the cap was reached and every connection was admitted. */
  dropped: number;
  /** Connections not yet admitted that were closed to make room (the oldest first, the same address first). */
  evicted: number;
  /** Connections closed for having no request admitted within the admit timeout (or no TLS in time). */
  unadmittedClosed: number;
}

/**
 * The connections of one peer, from their TCP accept: at most `max` at once,
 * each closed unless a request of its own is admitted (certificate, version,
 * token) within the admit timeout. A connection that arrives at the cap takes
 * the place of the oldest one not yet admitted, and one address may have only a
 * few waiting at once: someone with no credentials can churn connections, but
 * cannot keep a trusted client out by holding the cap (a flood from many
 * addresses still competes with it).
 */
export class ConnectionGuard {
  readonly stats: ConnectionStats;
  private readonly open = new Set<Socket>();
  /** Not yet admitted, oldest first. */
  private readonly waiting = new Map<string, { socket: Socket; address: string; timer: NodeJS.Timeout }>();
  private readonly waitingPerAddress = new Map<string, number>();

  constructor(max: number, private readonly admitTimeoutMs: number) {
    this.stats = { max, sessions: 0, dropped: 0, evicted: 0, unadmittedClosed: 0 };
  }

  /** A TCP connection was accepted (the server's 'connection' event). */
  accept(socket: Socket): void {
    const address = socket.remoteAddress ?? '';
    const key = keyOf(socket.remoteAddress, socket.remotePort);
    if (this.open.size >= this.stats.max) {
      const oldest = this.waiting.values().next().value;
      if (!oldest) {
        this.stats.dropped++;
        socket.destroy();
        return;
      }
      this.evict(oldest.socket);
    }
    if ((this.waitingPerAddress.get(address) ?? 0) >= UNADMITTED_PER_ADDRESS) {
      for (const w of this.waiting.values()) {
        if (w.address !== address) continue;
        this.evict(w.socket);
        break;
      }
    }
    this.open.add(socket);
    const timer = setTimeout(() => {
      if (!this.waiting.has(key)) return;
      this.stats.unadmittedClosed++;
      socket.destroy();
    }, this.admitTimeoutMs);
    timer.unref();
    this.waiting.set(key, { socket, address, timer });
    this.waitingPerAddress.set(address, (this.waitingPerAddress.get(address) ?? 0) + 1);
    socket.once('close', () => {
      this.open.delete(socket);
      this.settle(key);
    });
  }

  /** A request of this connection was admitted: it stays (until idle). True the first time. */
  admitted(remoteAddress: string | undefined, remotePort: number | undefined): boolean {
    return this.settle(keyOf(remoteAddress, remotePort));
  }

  private evict(socket: Socket): void {
    this.stats.evicted++;
    this.settle(keyOf(socket.remoteAddress, socket.remotePort));
    socket.destroy();
  }

  private settle(key: string): boolean {
    const w = this.waiting.get(key);
    if (!w) return false;
    clearTimeout(w.timer);
    this.waiting.delete(key);
    const n = (this.waitingPerAddress.get(w.address) ?? 1) - 1;
    if (n > 0) this.waitingPerAddress.set(w.address, n);
    else this.waitingPerAddress.delete(w.address);
    return true;
  }
}

function keyOf(address: string | undefined, port: number | undefined): string {
  return `${address ?? ''}|${port ?? 0}`;
}
