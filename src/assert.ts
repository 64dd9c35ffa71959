/**
 * Assertions for the invariants the design relies on (a sequence that only
 * grows, a count that never goes negative, a release that happens once).
 *
 * A failed assertion is a bug in mirrorfs, not bad input: it throws an
 * AssertionFailure (never caught on purpose), so the process stops loudly
 * rather than carry on from a state the code does not expect. Bad input gets a
 * MirrorError instead.
 */
export class AssertionFailure extends Error {
  override readonly name = 'AssertionFailure';
}

/** Throw an AssertionFailure naming the invariant when `condition` is false. */
export function assert(condition: unknown, invariant: string): asserts condition {
  if (!condition) throw new AssertionFailure(`mirrorfs invariant broken: ${invariant}`);
}
