import Database from 'better-sqlite3';
import { join } from 'node:path';
import { privateDir, privateFile } from '../../security/private-paths.js';
import type { MutationRequest } from '../../protocol/ops.js';

/**
 * The primary's journal (docs/ARCHITECTURE.md, "Catch-up and roll-forward"):
 * every change that some peer lacks, with its payload, kept durably until
 * every peer has it. A change enters the journal when a peer did not commit it
 * (it was down, stalled, out of space, or behind already) and the journal
 * commit (synchronous=FULL) happens before the application is answered, so an
 * acknowledged change that a peer lacks survives a crash of the primary.
 *
 * `lacking` rows say which peer lacks which change and how to bring it:
 * `resend` (send the same operation with the same seq; the peer applies it
 * once) or `repair` (the peer answered differently from the others: copy the
 * touched names from a peer that committed it).
 */

export type LackKind = 'resend' | 'repair';

export interface JournalEntry {
  seq: number;
  request: MutationRequest;
  payload: Buffer;
  kind: LackKind;
  /** What the peers that committed it answered ('ok' or an errno name); null when none did (in doubt everywhere). */
  outcome: string | null;
  /** The request's JSON as stored, in UTF-8 bytes (catch-up bounds a call's header with it, without encoding it again). */
  requestBytes: number;
}

export interface PeerRecord {
  name: string;
  peerId: string | null;
}

export class Journal {
  private readonly db: Database.Database;
  private readonly stmts;
  private pending: Array<() => void> = [];
  private deliveries: Array<[string, number]> = [];
  private pendingCommit: Promise<void> | null = null;

  /** Told about a failure that is not fatal (a delivery that could not be recorded). */
  onError: ((err: Error) => void) | null = null;

  constructor(stateDir: string) {
    privateDir(stateDir);
    privateFile(join(stateDir, 'journal.db')); // it holds payloads
    this.db = new Database(join(stateDir, 'journal.db'));
    this.db.pragma('journal_mode = WAL');
    // Recording a change commits with FULL (below); everything else (deliveries) with
    // NORMAL: a delivery lost in a crash only means the change is sent again, and the
    // peer answers a re-send from its record.
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS ops (seq INTEGER PRIMARY KEY, request TEXT NOT NULL, payload BLOB NOT NULL, bytes INTEGER NOT NULL, outcome TEXT);
      CREATE TABLE IF NOT EXISTS lacking (peer TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('resend', 'repair')), PRIMARY KEY (peer, seq)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS peers (name TEXT PRIMARY KEY, peer_id TEXT) WITHOUT ROWID;
      -- A delivery asks whether any peer still lacks the change: by seq alone, which the
      -- primary key (peer, seq) cannot answer without a scan (catch-up went quadratic).
      CREATE INDEX IF NOT EXISTS lacking_by_seq ON lacking(seq);
    `);
    this.stmts = {
      insertOp: this.db.prepare('INSERT INTO ops(seq, request, payload, bytes, outcome) VALUES (?, ?, ?, ?, ?) ON CONFLICT(seq) DO NOTHING'),
      insertLack: this.db.prepare('INSERT INTO lacking(peer, seq, kind) VALUES (?, ?, ?) ON CONFLICT(peer, seq) DO UPDATE SET kind = excluded.kind'),
      lackingFor: this.db.prepare<[string, number, number], { seq: number; request: string; payload: Buffer; kind: LackKind; outcome: string | null }>(
        'SELECT l.seq AS seq, o.request AS request, o.payload AS payload, l.kind AS kind, o.outcome AS outcome FROM lacking l JOIN ops o ON o.seq = l.seq WHERE l.peer = ? AND l.seq > ? ORDER BY l.seq LIMIT ?',
      ),
      countFor: this.db.prepare<[string], { ops: number; bytes: number | null }>('SELECT COUNT(*) AS ops, SUM(o.bytes) AS bytes FROM lacking l JOIN ops o ON o.seq = l.seq WHERE l.peer = ?'),
      deleteLack: this.db.prepare('DELETE FROM lacking WHERE peer = ? AND seq = ?'),
      deleteOpIfDone: this.db.prepare('DELETE FROM ops WHERE seq = ? AND NOT EXISTS (SELECT 1 FROM lacking WHERE seq = ?)'),
      maxSeq: this.db.prepare<[], { m: number | null }>('SELECT MAX(seq) AS m FROM ops'),
      peersLacking: this.db.prepare<[], { peer: string }>('SELECT DISTINCT peer FROM lacking'),
      getPeer: this.db.prepare<[string], { peer_id: string | null }>('SELECT peer_id FROM peers WHERE name = ?'),
      setPeer: this.db.prepare('INSERT INTO peers(name, peer_id) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET peer_id = excluded.peer_id'),
    };
  }

  /**
   * Record a change and the peers that lack it. Changes recorded in the same
   * turn of the event loop share one durable commit (group commit); the
   * promise resolves once this one is on disk.
   */
  record(seq: number, request: MutationRequest, payload: Buffer, outcome: string | null, lacking: Array<{ peer: string; kind: LackKind }>): Promise<void> {
    const json = JSON.stringify(request);
    this.pending.push(() => {
      this.stmts.insertOp.run(seq, json, payload, payload.length, outcome);
      for (const l of lacking) this.stmts.insertLack.run(l.peer, seq, l.kind);
    });
    if (!this.pendingCommit) {
      this.pendingCommit = new Promise<void>((resolve, reject) => {
        setImmediate(() => {
          const work = this.pending;
          this.pending = [];
          this.pendingCommit = null;
          try {
            // close() may have committed them already (and closed the database): nothing is left to do.
            if (work.length > 0) this.durably(() => work.forEach((w) => w()));
            resolve();
          } catch (err) {
            reject(err);
          }
        });
      });
    }
    return this.pendingCommit;
  }

  /** Up to `limit` changes a peer lacks after `afterSeq`, in seq order. */
  lackingFor(peer: string, afterSeq = 0, limit = 256): JournalEntry[] {
    this.commitDeliveries();
    return this.stmts.lackingFor.all(peer, afterSeq, limit).map((r) => ({
      seq: r.seq,
      request: JSON.parse(r.request) as MutationRequest,
      payload: r.payload,
      kind: r.kind,
      outcome: r.outcome,
      requestBytes: Buffer.byteLength(r.request),
    }));
  }

  /** How much a peer lacks: changes and payload bytes. */
  countFor(peer: string): { ops: number; bytes: number } {
    this.commitDeliveries();
    const r = this.stmts.countFor.get(peer);
    return { ops: r?.ops ?? 0, bytes: r?.bytes ?? 0 };
  }

  /**
   * The peer has the change now; the change leaves the journal once no peer
   * lacks it. Deliveries in the same turn of the event loop share one commit.
   */
  delivered(peer: string, seq: number): void {
    this.deliveries.push([peer, seq]);
    if (this.deliveries.length === 1) setImmediate(() => this.commitDeliveries());
  }

  private commitDeliveries(): void {
    const batch = this.deliveries;
    this.deliveries = [];
    if (batch.length === 0 || !this.db.open) return;
    try {
      this.db.transaction(() => {
        for (const [peer, seq] of batch) {
          this.stmts.deleteLack.run(peer, seq);
          this.stmts.deleteOpIfDone.run(seq, seq);
        }
      })();
    } catch (err) {
      // Not fatal: the rows stay, so the changes count as lacking and are sent again
      // (the peer answers a re-send from its record). Retried with the next batch.
      this.deliveries.unshift(...batch);
      this.onError?.(err as Error);
    }
  }

  /** Run fn in one transaction committed with synchronous=FULL (it survives power loss). */
  private durably(fn: () => void): void {
    this.db.pragma('synchronous = FULL');
    try {
      this.db.transaction(fn)();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /** Change the way a peer must be brought a change (a resend it answered differently becomes a repair). */
  markRepair(peer: string, seq: number): void {
    this.stmts.insertLack.run(peer, seq, 'repair');
  }

  /** The highest seq the journal holds (0 when empty). */
  maxSeq(): number {
    this.commitDeliveries();
    return this.stmts.maxSeq.get()?.m ?? 0;
  }

  /** Names of peers that lack something. */
  peersLacking(): string[] {
    this.commitDeliveries();
    return this.stmts.peersLacking.all().map((r) => r.peer);
  }

  /** The identity last seen for a peer name (a different one means its data was replaced). */
  peerId(name: string): string | null {
    return this.stmts.getPeer.get(name)?.peer_id ?? null;
  }

  setPeerId(name: string, peerId: string): void {
    this.stmts.setPeer.run(name, peerId);
  }

  /** Forget everything a peer lacked (it was rebuilt by a full resync). */
  forgetPeer(peer: string): void {
    this.commitDeliveries();
    this.db.transaction(() => {
      const seqs = this.db.prepare<[string], { seq: number }>('SELECT seq FROM lacking WHERE peer = ?').all(peer);
      for (const { seq } of seqs) {
        this.stmts.deleteLack.run(peer, seq);
        this.stmts.deleteOpIfDone.run(seq, seq);
      }
    })();
  }

  close(): void {
    if (this.pending.length > 0) {
      const work = this.pending;
      this.pending = [];
      this.durably(() => work.forEach((w) => w()));
    }
    this.commitDeliveries();
    this.db.close();
  }
}
