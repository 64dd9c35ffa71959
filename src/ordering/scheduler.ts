import { assert } from '../assert.js';

/**
 * Ordering of changing operations. Each operation declares the names it
 * touches: exclusively (the entry it changes) or shared (the directories it
 * passes through). Two operations conflict when they share a name and either
 * holds it exclusively; conflicting operations run one after the other in
 * arrival order, and everything else runs in parallel.
 *
 * Because conflicting operations reach every peer in the same order and
 * non-conflicting ones commute, every peer ends with the same tree. Holding a
 * directory shared while working under it orders a rename or rmdir of that
 * directory against everything inside it.
 */


export interface Claim {
  path: string;
  exclusive: boolean;
}

interface Waiter {
  claims: Claim[];
  grant: () => void;
}

export class Scheduler {
  /** Names held by running operations: path -> count of shared holders, or -1 when exclusive. */
  private readonly held = new Map<string, number>();
  private readonly waiting: Waiter[] = [];
  /** Bound on queued operations; FUSE itself bounds concurrency far below this. */
  private static readonly MAX_WAITING = 10_000;

  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(claims: Claim[], fn: () => Promise<T>): Promise<T> {
    await this.acquire(claims);
    try {
      return await fn();
    } finally {
      this.release(claims);
    }
  }

  private acquire(claims: Claim[]): Promise<void> {
    // An earlier waiter that conflicts keeps its place: arrival order is kept per name.
    if (this.grantable(claims) && !this.waiting.some((w) => conflicts(w.claims, claims))) {
      this.take(claims);
      return Promise.resolve();
    }
    if (this.waiting.length >= Scheduler.MAX_WAITING) {
      return Promise.reject(Object.assign(new Error('too many operations waiting for ordering'), { code: 'EAGAIN' }));
    }
    return new Promise((grant) => this.waiting.push({ claims, grant }));
  }

  private grantable(claims: Claim[]): boolean {
    for (const c of claims) {
      const h = this.held.get(c.path);
      if (h === undefined) continue;
      if (c.exclusive || h === -1) return false;
    }
    return true;
  }

  private take(claims: Claim[]): void {
    for (const c of claims) {
      const h = this.held.get(c.path);
      // Taken only when grantable: a name held exclusively by one operation, or shared by any number.
      assert(h === undefined || (!c.exclusive && h > 0), 'a claim is granted only when no running operation conflicts with it');
      this.held.set(c.path, c.exclusive ? -1 : (h ?? 0) + 1);
    }
  }

  private release(claims: Claim[]): void {
    for (const c of claims) {
      const h = this.held.get(c.path);
      // Released once (run's finally), as it was taken: a second release would free a name another operation holds.
      assert(h !== undefined && (c.exclusive ? h === -1 : h > 0), 'a claim is released once, by the operation holding it');
      if (h === -1 || h === 1) this.held.delete(c.path);
      else this.held.set(c.path, h - 1);
    }
    // Grant, in arrival order, every waiter that conflicts with nothing running
    // and with no earlier waiter still waiting.
    const stillWaiting: Waiter[] = [];
    for (const w of this.waiting) {
      if (this.grantable(w.claims) && !stillWaiting.some((e) => conflicts(e.claims, w.claims))) {
        this.take(w.claims);
        w.grant();
      } else {
        stillWaiting.push(w);
      }
    }
    this.waiting.length = 0;
    this.waiting.push(...stillWaiting);
  }
}

function conflicts(a: Claim[], b: Claim[]): boolean {
  for (const x of a) for (const y of b) if (x.path === y.path && (x.exclusive || y.exclusive)) return true;
  return false;
}

/** Claims for an operation on `path`: the entry exclusively, each ancestor directory shared. */
export function claimsFor(...paths: string[]): Claim[] {
  const out = new Map<string, boolean>();
  for (const p of paths) {
    out.set(p, true);
    const parts = p === '' ? [] : p.split('/');
    for (let i = parts.length - 1; i >= 0; i--) {
      const ancestor = parts.slice(0, i).join('/');
      if (!out.has(ancestor)) out.set(ancestor, false);
    }
  }
  return [...out].map(([path, exclusive]) => ({ path, exclusive }));
}
