/**
 * Assertions for the invariants the design relies on (a sequence that only
 * grows, a count that never goes negative, a release that happens once).
 *
 * A failed assertion is a bug in mirrorfs, not bad input: it throws an
 * AssertionFailure, which no code treats as a peer's trouble to retry. Where it
 * surfaces depends on the caller: a FUSE operation answers EIO and logs an
 * internal error; a peer answers MFS_INTERNAL and logs it; a peer's catch-up
 * and a relay's forwarder stop (logged at error, status says why) rather than
 * carry on from a state the code does not expect. Bad input gets a MirrorError
 * or a Refusal instead.
 */
export class AssertionFailure extends Error {
  override readonly name = 'AssertionFailure';
}

/** Throw an AssertionFailure naming the invariant when `condition` is false. */
export function assert(condition: unknown, invariant: string): asserts condition {
  if (!condition) throw new AssertionFailure(`mirrorfs invariant broken: ${invariant}`);
}
