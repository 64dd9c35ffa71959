import { assert } from '../../assert.js';
import { MirrorError } from '../../protocol/errors.js';
import { describePaths, type MutationRequest } from '../../protocol/ops.js';
import type { Admission } from '../recovery/catch-up.js';
import { RESOURCE_ERRNOS, describeAckPolicy, type AckPolicy } from './ack-policy.js';

/**
 * The admission gate: where a change waits before it takes any ordering
 * claim. Catch-up closes it for the last step of a peer's joining (catch-up.ts),
 * so that no change skips the peer meanwhile; it counts the changes that
 * passed it and have not finished, which catch-up waits for.
 */
export class AdmissionGate implements Admission {
  private closed: { promise: Promise<void>; open: () => void; holders: number } | null = null;
  private past = 0;

  /** True while some holder keeps the gate closed: new changes wait (opened()). */
  get isClosed(): boolean {
    return this.closed !== null;
  }

  /**
   * Close the gate: changes not yet started wait (before taking any ordering
   * claim, so whoever holds the gate can still take claims) until every
   * holder has released it. The returned function releases this hold; call it
   * once.
   */
  hold(): () => void {
    if (!this.closed) {
      let open!: () => void;
      const promise = new Promise<void>((r) => (open = r));
      this.closed = { promise, open, holders: 0 };
    }
    const gate = this.closed;
    gate.holders++;
    let released = false;
    return () => {
      assert(!released, 'the admission gate is released once per hold');
      released = true;
      assert(gate.holders > 0, 'the admission gate has a holder for every release');
      if (--gate.holders === 0) {
        this.closed = null;
        gate.open();
      }
    };
  }

  /** Resolves true when the gate (closed now) opens before the deadline, false otherwise. */
  opened(deadline: number): Promise<boolean> {
    return this.closed ? waitUntil(this.closed.promise, deadline) : Promise.resolve(true);
  }

  /** A change passed the gate (queued for its claims or running until leave()). */
  pass(): void {
    this.past++;
  }

  /** A change that passed has finished; true when it was the last one and a holder waits for that. */
  leave(): boolean {
    assert(this.past > 0, 'a change leaves the admission gate only after passing it');
    this.past--;
    return this.past === 0 && this.closed !== null;
  }

  /** Changes that passed the gate and have not finished (queued for claims, or running). */
  get changesPastGate(): number {
    return this.past;
  }
}

/** Resolves true when p settles before the deadline, false otherwise. */
function waitUntil(p: Promise<void>, deadline: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** What admissionRefusal asks of a peer. */
export interface AdmissionPeer {
  readonly name: string;
  readonly inStep: boolean;
  readonly behindReason: string | null;
  readonly behindErrno: string | null;
}

/** The mount's state as admissionRefusal judges it. */
export interface AdmissionState {
  /** Set when unmounting. */
  stoppingReason: string | null;
  /** Set when another mount owns the peers, or the journal could not be written. */
  fencedReason: string | null;
  members: readonly AdmissionPeer[];
  ackPolicy: AckPolicy;
  required: number;
}

/**
 * Why a change is refused before it is sent anywhere, or null to admit it:
 * it cannot meet the ack policy when the mount is unmounting, is fenced, or
 * fewer peers are in sync than must commit (with ack all: any peer behind).
 * Nothing is sent, so the application is never told "failed" about a change
 * that lands.
 */
export function admissionRefusal(req: MutationRequest, state: AdmissionState): MirrorError | null {
  const context = { op: req.op, path: describePaths(req) };
  if (state.stoppingReason) return new MirrorError('MFS_ERRNO', `${req.op} refused: ${state.stoppingReason}`, { errno: 'EROFS', context });
  if (state.fencedReason) return new MirrorError('MFS_FENCED', `${req.op} refused: ${state.fencedReason}`, { context });
  const inSync = state.members.filter((m) => m.inStep).length;
  if (inSync >= state.required) return null;
  const behind = state.members.filter((m) => !m.inStep);
  // A peer out of space makes the call fail as out of space, which is what the application can act on.
  const errno = behind.map((m) => m.behindErrno).find((e) => e !== null && RESOURCE_ERRNOS.includes(e)) ?? 'EIO';
  return new MirrorError(
    'MFS_OUT_OF_STEP',
    `${req.op} refused: ${inSync} of ${state.members.length} peers in sync, ack policy ${describeAckPolicy(state.ackPolicy)} needs ${state.required} (${behind.map((m) => `${m.name}: ${m.behindReason}`).join('; ')}); catch-up runs in the background`,
    { errno, context },
  );
}
