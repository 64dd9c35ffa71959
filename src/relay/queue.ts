import type Database from 'better-sqlite3';

/**
 * A relay's durable queue: every change it accepted, held for its next hop
 * until that hop acknowledges it (the table `forward`, in the peer's own
 * database, which PeerState opens).
 *
 * A change is queued in the same transaction as its outcome (PeerState's group
 * commit calls `enqueue` inside it), so both or neither survive a crash; the
 * rest (reading, dequeueing, the counts) is the Forwarder's.
 */

/** A change a relay holds for its next hop until that hop acknowledges it. */
export type QueuedRow = { qid: number; mount: string; seq: number; epoch: number; request: string; payload: Buffer; outcome: string; atMs: number };

/**
 * The queue's table, created beside the peer's others (PeerState.migrate, in
 * the order it always had). qid is the acceptance order; the index answers the
 * lowest seq still queued for a mount (end-to-end commitment).
 */
export function createQueueTable(db: Database.Database): void {
  db.exec(`
      CREATE TABLE IF NOT EXISTS forward (
        qid INTEGER PRIMARY KEY AUTOINCREMENT,
        mount TEXT NOT NULL, seq INTEGER NOT NULL, epoch INTEGER NOT NULL,
        request TEXT NOT NULL, payload BLOB NOT NULL, outcome TEXT NOT NULL, at_ms INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS forward_by_seq ON forward(mount, seq);
  `);
}

export class RelayQueue {
  private readonly stmts;

  /** The table must exist (createQueueTable). */
  constructor(private readonly db: Database.Database) {
    this.stmts = {
      enqueue: db.prepare('INSERT INTO forward(mount, seq, epoch, request, payload, outcome, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      queued: db.prepare<[number, number], QueuedRow>('SELECT qid, mount, seq, epoch, request, payload, outcome, at_ms AS atMs FROM forward WHERE qid > ? ORDER BY qid LIMIT ?'),
      queueOldest: db.prepare<[], { at: number }>('SELECT at_ms AS at FROM forward ORDER BY qid LIMIT 1'),
      queueMinQid: db.prepare<[], { m: number | null }>('SELECT MIN(qid) AS m FROM forward'),
      queueMaxQid: db.prepare<[], { m: number | null }>('SELECT MAX(qid) AS m FROM forward'),
      queueOlderThan: db.prepare<[number], { n: number }>('SELECT COUNT(*) AS n FROM forward WHERE epoch < ?'),
      dequeue: db.prepare('DELETE FROM forward WHERE qid = ?'),
      queueMin: db.prepare<[string], { m: number | null }>('SELECT MIN(seq) AS m FROM forward WHERE mount = ?'),
      queueStats: db.prepare<[], { n: number; oldest: number | null; bytes: number | null }>('SELECT COUNT(*) AS n, MIN(at_ms) AS oldest, SUM(LENGTH(payload)) AS bytes FROM forward'),
    };
  }

  /**
   * Queue a change with the outcome this relay answered. No transaction of its
   * own: the caller runs it inside the one that records that outcome.
   */
  enqueue(mount: string, seq: number, epoch: number, request: string, payload: Buffer, outcome: string, atMs: number): void {
    this.stmts.enqueue.run(mount, seq, epoch, request, payload, outcome, atMs);
  }

  /** Queued changes after a qid, oldest first. */
  queued(afterQid: number, limit: number): QueuedRow[] {
    return this.stmts.queued.all(afterQid, limit);
  }

  /** The next hop acknowledged these (NORMAL: a lost delete only causes a re-send, which the far end answers from its record). */
  dequeue(qids: number[]): void {
    this.db.transaction(() => {
      for (const q of qids) this.stmts.dequeue.run(q);
    })();
  }

  /** When the oldest change still queued was accepted (a lookup by key, cheap), or null. */
  oldestAtMs(): number | null {
    return this.stmts.queueOldest.get()?.at ?? null;
  }

  /** The oldest and newest queue ids still queued (null when the queue is empty). */
  bounds(): { min: number | null; max: number | null } {
    return { min: this.stmts.queueMinQid.get()!.m, max: this.stmts.queueMaxQid.get()!.m };
  }

  /** Changes still queued from an epoch before this one. */
  queuedBefore(epoch: number): number {
    return this.stmts.queueOlderThan.get(epoch)!.n;
  }

  /** The lowest seq of a mount still queued for the next hop, or null. */
  minSeq(mount: string): number | null {
    return this.stmts.queueMin.get(mount)?.m ?? null;
  }

  stats(): { depth: number; bytes: number; oldestAtMs: number | null } {
    const r = this.stmts.queueStats.get()!;
    return { depth: r.n, bytes: r.bytes ?? 0, oldestAtMs: r.oldest };
  }
}
