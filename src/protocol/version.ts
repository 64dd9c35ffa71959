/**
 * Wire protocol version. Bump on any incompatible change to framing, operation
 * shapes or semantics; both sides refuse a peer that speaks another version
 * (see docs/PROTOCOL.md, "Versioning").
 */
export const PROTOCOL_VERSION = 12;

/** Header carried by every request and response. */
export const PROTOCOL_HEADER = 'mirrorfs-protocol';

/** The certificate (DER, base64) a relay or a pulling peer acts for: judged by the receiving peer's own trust (peer/principal.ts). */
export const ORIGIN_HEADER = 'mirrorfs-origin';

/** A pull ticket: the owner's signature letting a peer read another for it, instead of the source's token (security/pull-ticket.ts). */
export const TICKET_HEADER = 'mirrorfs-ticket';

/** URL paths of the API. One place, so client and server cannot drift. */
export const ROUTES = {
  call: '/v1/call',
  /** The call channel: changes as tagged frames on one long-lived stream (envelope.ts). */
  channel: '/v1/channel',
  status: '/v1/status',
  manifest: '/v1/manifest',
} as const;

/**
 * HTTP/2 flow-control windows. The protocol default (64 KiB per stream and per
 * connection) would stall 16 concurrent 128 KiB writes on window updates; both
 * sides advertise these instead. Every change to a peer shares one stream (the
 * call channel), so its window bounds the bytes of changes in flight on a long
 * link: 32 MiB is ~160 MiB/s at a 200 ms round trip. Memory per connection:
 * each call is refused past MAX_FRAME_BYTES (codec.ts) and at most
 * H2_MAX_CONCURRENT_STREAMS calls run at once (streams, or calls on the one
 * channel), so about 64 x 4 MiB = 256 MiB, plus what the windows let in unread.
 */
export const H2_STREAM_WINDOW_BYTES = 32 * 1024 * 1024;
export const H2_CONNECTION_WINDOW_BYTES = 64 * 1024 * 1024;
export const H2_MAX_CONCURRENT_STREAMS = 64;
/** Larger DATA frames: a 128 KiB write crosses as one frame instead of eight. */
export const H2_MAX_FRAME_BYTES = 1024 * 1024;
