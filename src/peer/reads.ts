import http2, { type ServerHttp2Stream } from 'node:http2';
import type { ReadRequest } from '../protocol/ops.js';
import type { ApplyContext } from '../store/apply.js';
import { preadFully, serveRead } from '../store/reads.js';
import type { PeerContext } from './context.js';
import { respondFrame } from './http.js';

/** Read answers from this peer's copy: data reads from pooled buffers, everything else (stat, lists, links, xattrs) under the shared lock. */

/** Read answers up to this size come from reused buffers (several readers' reads in flight: an idle peer holds at most 8 MiB of them). */
export const READ_BUFFER_BYTES = 1024 * 1024;
export const READ_BUFFERS_KEPT = 8;
/** Larger ones, up to the mount's read-ahead block (mount/read-ahead.ts: 4 MiB), from buffers of that size (at most 8 MiB idle). */
export const BLOCK_READ_BUFFER_BYTES = 4 * 1024 * 1024;
export const BLOCK_READ_BUFFERS_KEPT = 2;

/** Answer a read; resolves with the errno of an error answer sent in place of one that could not be encoded, else null. */
export async function answerRead(peer: PeerContext, stream: ServerHttp2Stream, ctx: ApplyContext, req: ReadRequest): Promise<string | null> {
  if (req.op === 'read') return answerDataRead(peer, stream, ctx, req);
  const out = await peer.lock.run(false, async () => serveRead(ctx, req));
  return respondFrame(stream, out.result === undefined ? { ok: true } : { ok: true, result: out.result }, out.payload);
}

/**
 * A data read. The namespace lock is held only to open (or find) the file's
 * fd: the pread runs on the thread pool after it, so a rename or unlink does
 * not wait for a disk read (the fd cache closes an fd only when its last
 * user lets go).
 *
 * Over TLS the answer comes from a pooled buffer, which goes back to the
 * pool when its stream closed normally (rstCode 0): the session hands the
 * bytes to TLS, which encrypts them into its own memory, within the same
 * native call that sends them, so nothing reads the buffer after that. A
 * stream reset or cut off may have left them queued, so its buffer is never
 * reused, only collected. Over cleartext a socket write reads the bytes from
 * where they lie until the kernel took them, which no stream event reports:
 * a new buffer per read.
 */
async function answerDataRead(peer: PeerContext, stream: ServerHttp2Stream, ctx: ApplyContext, req: Extract<ReadRequest, { op: 'read' }>): Promise<string | null> {
  const file = await peer.lock.run(false, async () => ctx.fds.acquire(req.path, () => ctx.tree.resolve(req.path)));
  const pool = peer.opts.transport.kind !== 'tls' ? null : req.length <= READ_BUFFER_BYTES ? peer.readBuffers : req.length <= BLOCK_READ_BUFFER_BYTES ? peer.blockReadBuffers : null;
  const buf = pool ? pool.acquire() : Buffer.allocUnsafe(req.length);
  const giveBack = () => {
    if (pool) pool.release(buf);
  };
  let length: number;
  try {
    length = await preadFully(file.fd, buf, req.offset, req.length);
  } catch (err) {
    giveBack(); // nothing was sent from it
    throw err;
  } finally {
    file.release();
  }
  if (stream.destroyed) {
    giveBack();
    return null;
  }
  if (pool) stream.once('close', () => (stream.rstCode === http2.constants.NGHTTP2_NO_ERROR ? pool.release(buf) : pool.forget(buf)));
  return respondFrame(stream, { ok: true }, buf.subarray(0, length));
}
