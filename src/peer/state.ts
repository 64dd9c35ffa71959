import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { privateFile } from '../security/private-paths.js';
import type { HistoryEntry, ProgressResult, UncleanRestart } from '../protocol/ops.js';
import { RelayQueue, createQueueTable } from '../relay/queue.js';
import { Refusal } from '../refusal.js';

/**
 * The peer's own state, in SQLite beside (never inside) the mirrored tree:
 * identity, the ownership epoch, and the outcome of every recent changing
 * operation keyed by (mount, seq), which is what makes re-sends idempotent.
 *
 * Durability discipline (docs/ARCHITECTURE.md, "Durability on the peer"):
 * the database runs in WAL mode with synchronous=NORMAL, so a commit survives
 * kill -9 (it is in the kernel's page cache) but the newest commits may be lost
 * on power failure; the peer's flusher (durability.ts) makes them durable in
 * the background. Commits that must survive power loss at once (epoch changes,
 * the intents of durable changes, a relay's queue) switch to synchronous=FULL
 * for that one transaction, which also flushes every earlier commit: what
 * survives is always a prefix of history.
 *
 * Whether the last run ended cleanly: each start records the machine's boot id
 * and clears a clean-shutdown mark that a clean stop sets again. A start that
 * finds the mark cleared and another boot id knows its machine went down while
 * it ran (power loss, a kernel crash): what it applied after its last durable
 * point may be lost or half there, in the tree and in this database alike. It
 * is then "unclean" (kept here until the owner says it is exact again), and
 * refuses reads and changes until then (docs/PROTOCOL.md, "Unclean restart").
 */

export const SCHEMA_VERSION = 1;
/** Outcomes kept per mount for answering re-sends; older ones are pruned. */
export const RETAINED_OUTCOMES = 200_000;
/** Prune at most every this many recorded outcomes (amortises the DELETE). */
const PRUNE_EVERY = 10_000;

export type OutcomeRow = { state: 'intent' | 'done'; result: string | null; op: string; subject: string };
/** An outcome waiting for the group commit; `forward`: a relay queues the change for its next hop in the same commit. */
/** Epochs back whose owner certificates are kept (a relay's queue may hold changes of them). */
const OWNER_CERTS_KEPT = 64;

type PendingOutcome = { mount: string; seq: number; epoch: number; op: string; subject: string; result: string; at: number; forward?: { request: string; payload: Buffer }; durable: boolean };

export class PeerState {
  private readonly db: Database.Database;
  private readonly stmts;
  private sincePrune = 0;
  /** Per mount: highest seq with a row here; a seq above it cannot have one (skips a SELECT). */
  private readonly maxSeqs = new Map<string, number>();
  private readonly floors = new Map<string, number>();
  /** Outcomes waiting for the next batched commit, and the promise their callers await. */
  private pending: PendingOutcome[] = [];
  private pendingCommit: Promise<void> | null = null;
  /** The outcomes' group commit, wrapped once: better-sqlite3 builds a new wrapper (five functions) on each transaction() call. */
  private readonly commitPending: () => void;
  /** A relay's queue for its next hop (relay/queue.ts): its table lives in this database, so a change is queued in its outcome's commit. */
  readonly queue: RelayQueue;
  readonly peerId: string;
  epoch: number;
  owner: string | null;
  ownerSince: string | null;
  /** Changes applied that were not flushed before their answers (noteUndurable), and whether meta `undurable` is set. */
  private undurableStarted = 0;
  private undurableFinished = 0;
  private undurableMarked = true;
  /** Set when this run began after an unclean end of the last (see above); cleared by the owner's `clean`. */
  unclean: UncleanRestart | null = null;

  constructor(file: string) {
    privateFile(file); // it holds payloads (a relay's queue) and every change's subject
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.commitPending = this.db.transaction(() => this.flushPending());
    this.stmts = {
      getMeta: this.db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: this.db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      lookup: this.db.prepare<[string, number], OutcomeRow>('SELECT state, result, op, subject FROM outcomes WHERE mount = ? AND seq = ?'),
      // An intent's `result` holds its witness, if any (store/apply.ts witnessOf), until the outcome replaces it.
      intent: this.db.prepare('INSERT INTO outcomes(mount, seq, epoch, op, subject, state, result, at_ms) VALUES (?, ?, ?, ?, ?, \'intent\', ?, ?) ON CONFLICT(mount, seq) DO NOTHING'),
      done: this.db.prepare('INSERT INTO outcomes(mount, seq, epoch, op, subject, state, result, at_ms) VALUES (?, ?, ?, ?, ?, \'done\', ?, ?) ON CONFLICT(mount, seq) DO UPDATE SET state = \'done\', result = excluded.result, at_ms = excluded.at_ms'),
      forget: this.db.prepare('DELETE FROM outcomes WHERE mount = ? AND seq = ?'),
      maxSeq: this.db.prepare<[string], { m: number | null }>('SELECT MAX(seq) AS m FROM outcomes WHERE mount = ?'),
      seqsAbove: this.db.prepare<[string, number], { seq: number; state: 'intent' | 'done' }>('SELECT seq, state FROM outcomes WHERE mount = ? AND seq > ? ORDER BY seq'),
      // An intent's witness is this peer's own business (inode numbers): history shows outcomes only.
      history: this.db.prepare<[string, number, number], HistoryEntry>('SELECT seq, op, subject, state, CASE state WHEN \'done\' THEN result END AS result FROM outcomes WHERE mount = ? AND seq > ? ORDER BY seq LIMIT ?'),
      mounts: this.db.prepare<[], { mount: string }>('SELECT DISTINCT mount FROM outcomes'),
      prune: this.db.prepare('DELETE FROM outcomes WHERE mount = ? AND seq < ? AND state = \'done\''),
      forgetMeta: this.db.prepare('DELETE FROM meta WHERE key = ?'),
      durablePoints: this.db.prepare<[], { key: string; value: string }>("SELECT key, value FROM meta WHERE key LIKE 'durable_through:%'"),
    };
    this.queue = new RelayQueue(this.db);
    let id = this.meta('peer_id');
    if (!id) {
      id = randomUUID();
      this.durably(() => this.setMeta('peer_id', id!));
      this.isNew = true;
    }
    this.peerId = id;
    this.epoch = Number(this.meta('epoch') ?? 0);
    this.owner = this.meta('owner');
    this.ownerSince = this.meta('owner_since');
    this.ownerKey = this.meta('owner_key');
    this.ownerCertNow = this.meta(`owner_cert:${this.epoch}`);
  }

  private migrate(): void {
    // In the order the tables always had: meta, the relay's queue (relay/queue.ts), outcomes.
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    `);
    createQueueTable(this.db);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS outcomes (
        mount TEXT NOT NULL, seq INTEGER NOT NULL, epoch INTEGER NOT NULL,
        op TEXT NOT NULL, subject TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('intent', 'done')),
        result TEXT, at_ms INTEGER NOT NULL,
        PRIMARY KEY (mount, seq)
      ) WITHOUT ROWID;
    `);
    const found = this.db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'").get();
    if (!found) {
      this.db.prepare("INSERT INTO meta(key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
    } else if (Number(found.value) !== SCHEMA_VERSION) {
      throw new Refusal('STATE_INVALID', `peer state schema ${found.value} is not supported by this build (expects ${SCHEMA_VERSION})`);
    }
  }

  private meta(key: string): string | null {
    return this.stmts.getMeta.get(key)?.value ?? null;
  }

  private setMeta(key: string, value: string): void {
    this.stmts.setMeta.run(key, value);
  }

  /** Run fn in one transaction committed with synchronous=FULL (survives power loss). */
  durably<T>(fn: () => T): T {
    this.db.pragma('synchronous = FULL');
    try {
      return this.db.transaction(fn)();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /**
   * Earlier owners whose changes a new owner has not yet reconciled (their
   * last changes may be on some peers only). Kept until a mount that
   * reconciled them says so (`reconciled`), so a takeover that fails half way
   * and is retried still reconciles the lost primary.
   */
  get unreconciled(): Array<{ owner: string; epoch: number }> {
    return JSON.parse(this.meta('unreconciled') ?? '[]') as Array<{ owner: string; epoch: number }>;
  }

  /** Drop these owners from the unreconciled list (durably). */
  markReconciled(owners: string[]): void {
    const left = this.unreconciled.filter((u) => !owners.includes(u.owner));
    this.durably(() => this.setMeta('unreconciled', JSON.stringify(left)));
  }

  /** This state was made by this run (a new peer): nothing it says about a data tree yet. */
  isNew = false;

  /**
   * The certificate (SHA-256 fingerprint) that took the current epoch: only it,
   * or a relay passing on its changes, may act as the owner (authorization.ts).
   * Null in cleartext, and for an epoch taken before ownership was bound.
   */
  ownerKey: string | null = null;
  /** The current epoch's owner certificate (DER, base64), or null. */
  ownerCertNow: string | null = null;

  /**
   * The certificate (DER, base64) that took this epoch and its signed handshake
   * (security/handshake-proof.ts), which a relay passes on with the epoch; null if none is known.
   */
  ownerCert(epoch: number): { der: string; proof: string | null } | null {
    const der = this.meta(`owner_cert:${epoch}`);
    return der === null ? null : { der, proof: this.meta(`owner_proof:${epoch}`) };
  }

  /** Make `owner` the owner at `epoch`, bound to the certificate that asked (fingerprint and DER, base64; null in cleartext). */
  setOwner(epoch: number, owner: string, key: { fingerprint: string; der: string; proof: string | null } | null = null): void {
    const since = new Date().toISOString();
    const previous = this.owner;
    const previousEpoch = this.epoch;
    this.durably(() => {
      if (key) {
        this.setMeta('owner_key', key.fingerprint);
        this.setMeta(`owner_cert:${epoch}`, key.der);
        if (key.proof !== null) this.setMeta(`owner_proof:${epoch}`, key.proof);
      } else this.stmts.forgetMeta.run('owner_key');
      // A relay passes on the changes it holds of older epochs with their certificates: those are
      // kept while any is queued, and a few epochs back besides.
      const lowestQueued = this.db.prepare<[], { e: number | null }>('SELECT MIN(epoch) AS e FROM forward').get()?.e ?? epoch;
      const keepFrom = Math.min(epoch - OWNER_CERTS_KEPT, lowestQueued);
      this.db.prepare("DELETE FROM meta WHERE (key LIKE 'owner_cert:%' AND CAST(substr(key, 12) AS INTEGER) < ?) OR (key LIKE 'owner_proof:%' AND CAST(substr(key, 13) AS INTEGER) < ?)").run(keepFrom, keepFrom);
      if (previous !== null && previous !== owner) {
        const list = this.unreconciled.filter((u) => u.owner !== previous);
        list.push({ owner: previous, epoch: previousEpoch });
        this.setMeta('unreconciled', JSON.stringify(list));
      }
      this.setMeta('epoch', String(epoch));
      this.setMeta('owner', owner);
      this.setMeta('owner_since', since);
    });
    this.epoch = epoch;
    this.owner = owner;
    this.ownerSince = since;
    this.ownerKey = key?.fingerprint ?? null;
    this.ownerCertNow = key?.der ?? null;
  }

  lookup(mount: string, seq: number): OutcomeRow | undefined {
    if (seq > this.maxSeq(mount)) return undefined;
    return this.stmts.lookup.get(mount, seq);
  }

  private maxSeq(mount: string): number {
    let max = this.maxSeqs.get(mount);
    if (max === undefined) {
      max = this.stmts.maxSeq.get(mount)?.m ?? 0;
      this.maxSeqs.set(mount, max);
    }
    return max;
  }

  private noteSeq(mount: string, seq: number): void {
    if (seq > this.maxSeq(mount)) this.maxSeqs.set(mount, seq);
  }

  /**
   * Record that an operation in INTENT_OPS (exactly-once.ts) is about to be applied, with what a
   * redo will need to tell whether it was (`witness`). Committed before the change is applied, so
   * a peer killed half way finds it; `durable` (a durable change) commits it with synchronous=FULL,
   * so it is found after a power loss too (an applied change's is flushed in the background: a
   * peer whose machine crashed is repaired, not trusted).
   */
  recordIntent(mount: string, seq: number, epoch: number, op: string, subject: string, witness: string | null, durable: boolean): void {
    this.noteSeq(mount, seq);
    const write = () => {
      this.flushPending(); // keep history a prefix: earlier outcomes commit first
      this.stmts.intent.run(mount, seq, epoch, op, subject, witness, Date.now());
    };
    if (durable) this.durably(write);
    else this.db.transaction(write)();
  }

  /**
   * Record an operation's outcome (a JSON result or wire error). Outcomes that
   * complete in the same turn of the event loop share one transaction (group
   * commit); the promise resolves once this outcome is committed, and the
   * caller acknowledges only then.
   */
  recordDone(mount: string, seq: number, epoch: number, op: string, subject: string, result: string, forward?: { request: string; payload: Buffer }, durable = false): Promise<void> {
    this.noteSeq(mount, seq);
    const at = Date.now();
    this.pending.push({ mount, seq, epoch, op, subject, result, at, forward, durable });
    if (!this.pendingCommit) {
      this.pendingCommit = new Promise<void>((resolve, reject) => {
        setImmediate(() => {
          try {
            // A relay's queue holds changes no one else has yet: it survives power loss (FULL); so does a durable change's record.
            if (this.pending.some((p) => p.forward || p.durable)) this.durably(() => this.flushPending());
            else this.commitPending();
            resolve();
          } catch (err) {
            reject(err);
          }
        });
      });
    }
    return this.pendingCommit;
  }

  private flushPending(): void {
    const rows = this.pending;
    this.pending = [];
    this.pendingCommit = null;
    for (const { mount, seq, epoch, op, subject, result, at, forward } of rows) {
      this.stmts.done.run(mount, seq, epoch, op, subject, result, at);
      // The relay's queue, in this same transaction: a change is queued if and only if its outcome is recorded.
      if (forward) this.queue.enqueue(mount, seq, epoch, forward.request, forward.payload, result, at);
    }
    this.sincePrune += rows.length;
    if (this.sincePrune >= PRUNE_EVERY) this.prune();
  }

  /** Drop an intent whose operation failed transiently (it was not applied; a retry may succeed). */
  forget(mount: string, seq: number): void {
    this.stmts.forget.run(mount, seq);
  }

  forgottenBelow(mount: string): number {
    let floor = this.floors.get(mount);
    if (floor === undefined) {
      floor = Number(this.meta(`forgotten_below:${mount}`) ?? 0);
      this.floors.set(mount, floor);
    }
    return floor;
  }

  settledThrough(mount: string): number {
    return Number(this.meta(`settled_through:${mount}`) ?? 0);
  }

  /** The mount says every copy holds its history through seq (kept across power loss). */
  settle(mount: string, seq: number): void {
    if (seq <= this.settledThrough(mount)) return;
    this.durably(() => this.setMeta(`settled_through:${mount}`, String(seq)));
  }

  progress(mount: string): ProgressResult {
    const forgottenBelow = this.forgottenBelow(mount);
    const settledThrough = this.settledThrough(mount);
    let contiguous = Math.max(0, forgottenBelow - 1, settledThrough);
    for (const row of this.stmts.seqsAbove.iterate(mount, contiguous)) {
      // An intent is in doubt (the change may or may not be here): it ends the run, so a
      // peer killed between an intent and its outcome is seen to lack that change.
      if (row.seq !== contiguous + 1 || row.state !== 'done') break;
      contiguous = row.seq;
    }
    const maxSeq = Math.max(this.stmts.maxSeq.get(mount)?.m ?? 0, settledThrough);
    return { mount, contiguousSeq: contiguous, maxSeq, forgottenBelow, settledThrough };
  }

  /** Recorded operations of a mount after a seq, in seq order. */
  history(mount: string, after: number, limit: number): HistoryEntry[] {
    return this.stmts.history.all(mount, after, limit);
  }

  prune(): void {
    this.sincePrune = 0;
    for (const { mount } of this.stmts.mounts.all()) {
      const max = this.stmts.maxSeq.get(mount)?.m ?? 0;
      const below = max - RETAINED_OUTCOMES;
      if (below > this.forgottenBelow(mount)) {
        this.db.transaction(() => {
          this.stmts.prune.run(mount, below);
          this.setMeta(`forgotten_below:${mount}`, String(below));
        })();
        this.floors.set(mount, below);
      }
    }
  }

  /**
   * Begin a run on this machine (`bootId`: the kernel's boot id). Finds out
   * whether the last run ended uncleanly (see above): only a peer that keeps a
   * copy can have lost applied changes (a relay's queue commits with FULL).
   */
  beginRun(bootId: string, keepsCopy: boolean): UncleanRestart | null {
    const lastBoot = this.meta('run_boot_id');
    const endedCleanly = this.meta('clean_shutdown') !== '0';
    const kept = this.meta('unclean');
    let unclean = kept === null ? null : (JSON.parse(kept) as UncleanRestart);
    // Cleared only by a flush with nothing applied since that was not flushed (noteUndurable); absent in older states.
    const mayHaveLost = this.meta('undurable') !== '0';
    this.undurableMarked = mayHaveLost;
    // No boot id recorded: a new state, or one of a build that flushed before every answer.
    if (unclean === null && keepsCopy && lastBoot !== null && !endedCleanly && lastBoot !== bootId && mayHaveLost) {
      unclean = { since: new Date().toISOString(), durableThrough: Object.fromEntries(this.durablePoints()), reason: 'its machine went down while it ran (another boot, no clean stop)' };
    }
    this.durably(() => {
      if (unclean) this.setMeta('unclean', JSON.stringify(unclean));
      this.setMeta('run_boot_id', bootId);
      this.setMeta('clean_shutdown', '0');
    });
    this.unclean = unclean;
    return unclean;
  }

  /**
   * A change is about to be applied that is not flushed before its answer (an applied-level
   * change, a repair or pull that flushes at its end). Before the first such change after a
   * flush, meta `undurable` is set durably: a machine crash from then until the next flush may
   * take something back. While it is clear, every change applied was on stable storage before
   * it was answered (a far mirror behind relays, which forward every change as durable; an idle
   * peer), so a crash of the machine loses nothing and the next start is not unclean.
   */
  noteUndurable(): void {
    if (!this.undurableMarked) {
      this.durably(() => this.setMeta('undurable', '1')); // a failure here throws before anything is counted or applied
      this.undurableMarked = true;
    }
    this.undurableStarted++;
  }

  /** The change noteUndurable announced has finished touching the tree (applied or failed). */
  undurableDone(): void {
    this.undurableFinished++;
  }

  /**
   * For the flusher: a flush starts. Its token, handed back once it succeeded, says whether it
   * covers every undurable change so far (-1: one is still being applied, so it may not).
   */
  undurableFlushStarts(): number {
    return this.undurableStarted === this.undurableFinished ? this.undurableStarted : -1;
  }

  /** A flush that started with `startedAt` succeeded: if it covered every undurable change and none came since, the mark is cleared. */
  undurableFlushed(startedAt: number): void {
    if (!this.undurableMarked || startedAt < 0 || this.undurableStarted !== startedAt) return;
    // NORMAL: if this is lost, the mark stays set, which is the safe side.
    this.db.transaction(() => this.setMeta('undurable', '0'))();
    this.undurableMarked = false;
  }

  /**
   * This copy is no longer known exact while running (a flush failed, a full resync of it
   * begins): as after an unclean restart, until the owner repairs it. `nothingDurable`: none
   * of what it holds counts as durable for any mount (a copy being rebuilt).
   */
  markUnclean(reason: string, opts: { nothingDurable?: boolean } = {}): void {
    if (this.unclean) return;
    const unclean: UncleanRestart = { since: new Date().toISOString(), durableThrough: opts.nothingDurable ? {} : Object.fromEntries(this.durablePoints()), reason };
    this.durably(() => this.setMeta('unclean', JSON.stringify(unclean)));
    this.unclean = unclean;
  }

  /** The owner made this copy exact again: it may serve reads and take changes (durably recorded). */
  markExact(): void {
    this.durably(() => this.stmts.forgetMeta.run('unclean'));
    this.unclean = null;
  }

  /** Per mount, the seq through which every change applied here was on stable storage at the last flush. */
  durablePoints(): Map<string, number> {
    return new Map(this.stmts.durablePoints.all().map((r) => [r.key.slice('durable_through:'.length), Number(r.value)]));
  }

  /** Record the durable points (NORMAL: the next flush makes the record durable; one lost says less, never more). */
  recordDurablePoints(points: Map<string, number>): void {
    this.db.transaction(() => {
      for (const [mount, seq] of points) this.setMeta(`durable_through:${mount}`, String(seq));
    })();
  }

  /** `cleanly`: everything applied was flushed just now, so the next start need not doubt it. */
  close(cleanly = false): void {
    if (this.pending.length) this.durably(() => this.flushPending());
    if (cleanly) this.durably(() => this.setMeta('clean_shutdown', '1'));
    this.db.close();
  }
}
