/**
 * The last line of every answer in JSON lines (a manifest): `{"$end":N}`, N the lines before it.
 *
 * An HTTP/2 stream that ends early does not always look like a failure: a session torn down
 * (a peer stopping, a client switching routes) resets its streams with code NO_ERROR, and Node
 * hands the reader an ordinary end. A manifest cut short that way would pass for a whole one,
 * and what it lacks would look removed: a repair would remove it from the copy it repairs. So
 * the writer ends a complete answer with this line, and a reader takes an answer without it,
 * or with a count that differs, or with anything after it, for a failure. A relay passes a
 * manifest on entry by entry and adds its own end line only once its next hop's answer ended
 * with one.
 */
export const NDJSON_END_KEY = '$end';

export function ndjsonEndLine(lines: number): string {
  return `${JSON.stringify({ [NDJSON_END_KEY]: lines })}\n`;
}

/** The count of an end line, or null when the value is an ordinary line. */
export function ndjsonEndCount(value: unknown): number | null {
  if (typeof value !== 'object' || value === null || !Object.hasOwn(value, NDJSON_END_KEY)) return null;
  const count = (value as Record<string, unknown>)[NDJSON_END_KEY];
  return typeof count === 'number' && Number.isSafeInteger(count) && count >= 0 ? count : -1;
}
