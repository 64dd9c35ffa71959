import type { Logger } from '../../log.js';
import { MirrorError } from '../../protocol/errors.js';
import type { Member } from '../peers/member.js';

/**
 * Ack mode end-to-end (para. 41 of the patent): a change is acknowledged to
 * the application once the first hop of each route holds it durably, and is
 * "executing" until the far mirror of every route has committed it, then
 * "committed". This tracks which changes are still executing, answers the
 * per-file state (xattr user.mirrorfs.state), and makes fsync a barrier that
 * waits for a file's changes to be committed end to end.
 *
 * Per route (member) it long-polls the first hop with `committed`: the answer
 * is the lowest seq that hop or a hop after it still holds (holdsFrom); every
 * seq the route acknowledged below it is committed at the far end. That is a
 * low-water mark, so once a file's latest change is committed, so is every
 * earlier one (a conservative answer while an older change is held: never
 * "committed" too early).
 *
 * A route that missed a change (it was behind and the change was journaled
 * for it) does not hold it up here: catch-up brings it, and status shows the
 * route as catching up.
 */

const POLL_WAIT_MS = 2000;
const RETRY_MS = 500;
/**
 * Changes tracked at most (each costs a few hundred bytes): beyond it, while
 * the far ends confirm nothing, new changes are refused (EAGAIN) rather than
 * the mount's memory growing without bound.
 */
export const MAX_EXECUTING = 500_000;

interface Executing {
  names: string[];
  /** Routes that acknowledged the change and have not yet reported it committed. */
  waiting: Set<Member>;
  done: Array<() => void>;
}

export class CommitTracker {
  private readonly executing = new Map<number, Executing>();
  /** The newest executing seq that touched each name. */
  private readonly latestByName = new Map<string, number>();
  /** Per route: every seq it acknowledged below this is committed end to end. */
  private readonly committedBelow = new Map<Member, number>();
  private readonly wake = new Map<Member, () => void>();
  private readonly loops: Promise<void>[] = [];
  private stopped = false;
  committedCount = 0;
  /** fsync calls waiting for the far ends now. */
  fsyncWaiting = 0;

  constructor(
    private readonly mountId: string,
    private readonly members: Member[],
    private readonly log: Logger,
  ) {
  }

  start(): void {
    for (const m of this.members) {
      this.loops.push(this.follow(m).catch((err: unknown) => this.log.error({ peer: m.name, err: (err as Error).message }, 'end-to-end commitment: tracking stopped by an internal error')));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.wake.values()) w();
    await Promise.allSettled(this.loops);
  }

  get executingCount(): number {
    return this.executing.size;
  }

  /** Refuse a change up front when tracking is full (the far ends have confirmed nothing for a long while). */
  admit(): void {
    if (this.executing.size >= MAX_EXECUTING) {
      throw new MirrorError('MFS_ERRNO', `end-to-end mode: ${this.executing.size} changes are waiting for the far mirrors to confirm them; new changes are refused until they do (check the routes in mirrorfs status)`, { errno: 'EAGAIN' });
    }
  }

  /** A change was acknowledged by these routes (their first hops hold it durably). */
  noteAcked(seq: number, names: string[], routes: Member[]): void {
    if (routes.length === 0) return;
    this.executing.set(seq, { names, waiting: new Set(routes), done: [] });
    for (const n of names) if ((this.latestByName.get(n) ?? -1) < seq) this.latestByName.set(n, seq);
    for (const m of routes) {
      const w = this.wake.get(m);
      this.wake.delete(m);
      w?.();
    }
  }

  /** 'executing' while the newest change to this name is not committed at every far end, else 'committed'. */
  stateOf(name: string): 'executing' | 'committed' {
    return this.latestByName.has(name) ? 'executing' : 'committed';
  }

  /** Resolve once the newest change to this name is committed end to end; EIO after timeoutMs. */
  async waitCommitted(name: string, timeoutMs: number): Promise<void> {
    const seq = this.latestByName.get(name);
    if (seq === undefined) return;
    const entry = this.executing.get(seq);
    if (!entry) return;
    this.fsyncWaiting++;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const routes = [...entry.waiting].map((m) => m.name).join(', ');
        reject(new MirrorError('MFS_ERRNO', `fsync ${JSON.stringify(name)}: change seq ${seq} not committed end to end within ${timeoutMs} ms (waiting for ${routes})`, { errno: 'EIO' }));
      }, timeoutMs);
      entry.done.push(() => {
        clearTimeout(timer);
        resolve();
      });
    }).finally(() => this.fsyncWaiting--);
  }

  private async follow(m: Member): Promise<void> {
    while (!this.stopped) {
      // Only changes acknowledged before the question is asked can be covered by its answer:
      // one acknowledged later may not have reached the hop that answers yet.
      const asked: number[] = [];
      let highest = -1;
      for (const [seq, e] of this.executing) {
        if (!e.waiting.has(m)) continue;
        asked.push(seq);
        if (seq > highest) highest = seq;
      }
      if (asked.length === 0) {
        await new Promise<void>((resolve) => this.wake.set(m, resolve));
        continue;
      }
      const known = this.committedBelow.get(m) ?? 0;
      try {
        const { holdsFrom } = await m.client.committed(this.mountId, highest, known, POLL_WAIT_MS);
        const below = holdsFrom === null ? highest + 1 : Math.min(holdsFrom, highest + 1);
        if (below > known) this.committedBelow.set(m, below);
        this.confirm(m, asked.filter((seq) => seq < below));
      } catch (err) {
        this.log.debug({ peer: m.name, err: (err as Error).message }, 'end-to-end commitment: route did not answer; asking again');
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  private confirm(m: Member, seqs: number[]): void {
    for (const seq of seqs) {
      const entry = this.executing.get(seq);
      if (!entry) continue;
      entry.waiting.delete(m);
      if (entry.waiting.size > 0) continue;
      this.executing.delete(seq);
      this.committedCount++;
      for (const n of entry.names) if (this.latestByName.get(n) === seq) this.latestByName.delete(n);
      for (const d of entry.done) d();
    }
  }
}
