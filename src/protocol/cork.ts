import type { Writable } from 'node:stream';

/** Streams corked until the end of the current tick (see writeCorked). */
const corked = new WeakSet<Writable>();

/**
 * Write parts to a stream so that everything written to it in this tick
 * leaves as one write: corked now, uncorked on the next tick. On an HTTP/2
 * stream each uncorked write() became a DATA frame, a TLS record and a socket
 * write of its own; an envelope's 8-byte head went out alone before its frame
 * (strace of the mount: 4 writes per 4 KiB change instead of 2), and calls made
 * in the same tick now share one.
 */
export function writeCorked(stream: Writable, parts: Buffer[]): void {
  if (!corked.has(stream)) {
    corked.add(stream);
    stream.cork();
    process.nextTick(() => {
      corked.delete(stream);
      stream.uncork();
    });
  }
  for (const part of parts) stream.write(part);
}
