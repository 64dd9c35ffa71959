/**
 * Wire protocol version. Bump on any incompatible change to framing, operation
 * shapes or semantics; both sides refuse a peer that speaks another version
 * (see docs/PROTOCOL.md, "Versioning").
 */
export const PROTOCOL_VERSION = 1;

/** Header carried by every request and response. */
export const PROTOCOL_HEADER = 'mirrorfs-protocol';

/** URL paths of the API. One place, so client and server cannot drift. */
export const ROUTES = {
  call: '/v1/call',
  status: '/v1/status',
  manifest: '/v1/manifest',
} as const;
