import type { ServerHttp2Stream } from 'node:http2';
import { wireQueryParam } from '../protocol/byte-names.js';
import { MirrorError } from '../protocol/errors.js';
import { walkManifest, type Hold } from '../store/manifest.js';
import { NEXT_HOP_TIMEOUT_MS, checkExact, requireCopy, type PeerContext } from './context.js';
import { respondNdjson, writeNdjson } from './http.js';
import { ndjsonEndLine } from '../protocol/ndjson-end.js';

/** GET /v1/manifest: every entry of the tree (or a subtree), one JSON line each, for verify and repair. */

/** How long a manifest's stream may send nothing (answerManifest). */
const MANIFEST_QUIET_MS = 10 * 60_000;

/** Answer a manifest request; `rawPath` is the request's :path, whose `path` parameter may hold any bytes. */
export function answerManifest(peer: PeerContext, stream: ServerHttp2Stream, rawPath: string, url: URL, origin: Buffer | null): Promise<void> {
  // Quiet for longer than a call may be: while a large file is hashed, or while the reader compares
  // this manifest with a slower one (it reads as it compares, and flow control holds the walk).
  // A reader that stops reading loses the stream after this, and the walk's slot with it.
  stream.setTimeout(MANIFEST_QUIET_MS, () => stream.destroy(new MirrorError('MFS_TIMEOUT', `manifest not read for ${MANIFEST_QUIET_MS / 1000} s`))); // a reset, not an end (respondError)
  const path = wireQueryParam(rawPath, 'path') ?? ''; // any bytes: not searchParams (byte-names.ts)
  const content = url.searchParams.get('content') !== '0';
  const after = wireQueryParam(rawPath, 'after') ?? undefined; // resumed: only what comes after it in the walk
  if (!peer.copy) return manifestViaNextHop(peer, stream, content, path, origin, after);
  checkExact(peer, stream.session); // a copy that may have lost changes lists nothing, but to its owner repairing it
  return streamManifest(peer, stream, content, manifestRoot(peer, path), after);
}

/**
 * The subtree a manifest lists: '' for the whole tree, the path when it is
 * confined, null (an empty manifest) when a directory above it does not
 * exist. Escapes (.., symlinked ancestors, reserved names) are refused.
 */
function manifestRoot(peer: PeerContext, path: string): string | null {
  if (path === '') return '';
  try {
    requireCopy(peer).tree.resolve(path);
    return path;
  } catch (err) {
    if (err instanceof MirrorError && err.code === 'MFS_ERRNO' && (err.errno === 'ENOENT' || err.errno === 'ENOTDIR')) return null;
    throw err;
  }
}

/** A pure relay's manifest is its next hop's, once everything queued here has reached it. */
async function manifestViaNextHop(peer: PeerContext, stream: ServerHttp2Stream, content: boolean, path: string, origin: Buffer | null, after: string | undefined): Promise<void> {
  await peer.forwarder!.waitQueuedBeforeNow(NEXT_HOP_TIMEOUT_MS);
  // Named to the next hop as the reader, judged there: the relay's trust does not reach past it.
  const entries = peer.forwarder!.manifestStream({ content, path, origin, after });
  // The first entry before the answer starts: a refusal or failure there is answered as one (a status);
  // a failure later resets the stream, so a reader never takes a cut-short manifest for a whole one.
  try {
    const first = await entries.next();
    respondNdjson(stream);
    await writeNdjson(stream, continued(first, entries));
    stream.end();
  } finally {
    // However this ends (the reader gone, this stream timed out), the next hop's stream ends too: its walk holds a slot.
    await entries.return(undefined);
  }
}

/** A generator's entries again, from one already taken. */
async function* continued<T>(first: IteratorResult<T>, rest: AsyncGenerator<T>): AsyncGenerator<T> {
  if (first.done) return;
  yield first.value;
  yield* rest;
}

/**
 * This copy's manifest, walked under the shared lock a batch of entries at a time (store/manifest.ts),
 * never for the whole tree: a reader (any client with a reading role) must not hold the primary's
 * renames and unlinks, and the writes queued behind them, for as long as it takes to hash a tree
 * or to read the answer. So it is not a snapshot: verify checks again what differs, and repairs
 * hold the mount's claims on what they compare.
 */
async function streamManifest(peer: PeerContext, stream: ServerHttp2Stream, content: boolean, path: string | null, after: string | undefined): Promise<void> {
  respondNdjson(stream);
  if (path === null) return void stream.end(ndjsonEndLine(0)); // nothing there: a complete, empty answer
  const hold: Hold = (fn) => peer.lock.run(false, async () => fn());
  const release = await walkSlot(peer);
  try {
    await writeNdjson(stream, walkManifest(requireCopy(peer).tree.fsRoot, { content, path, hold, after }));
  } finally {
    release();
  }
  stream.end();
}

/** Manifest walks at once per peer (each holds a few descriptors and hashes on the thread pool); more wait their turn. */
const WALKS_AT_ONCE = 2;
const walks = new WeakMap<PeerContext, { running: number; waiting: Array<() => void> }>();

async function walkSlot(peer: PeerContext): Promise<() => void> {
  let w = walks.get(peer);
  if (!w) walks.set(peer, (w = { running: 0, waiting: [] }));
  const slots = w;
  if (slots.running < WALKS_AT_ONCE) slots.running++;
  else await new Promise<void>((resolve) => slots.waiting.push(resolve)); // the slot is handed over, still counted
  return () => {
    const next = slots.waiting.shift();
    if (next) next();
    else slots.running--;
  };
}
