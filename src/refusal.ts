/**
 * Refusals before any change is served: a mount, a peer or a command that
 * will not start, and why. Each has a stable code (callers branch on it, never
 * on the message) and an errno name; the message says what to do.
 *
 * Wire errors (what a peer answers a request) are MirrorError, in
 * protocol/errors.ts; these never cross the wire.
 */
export const REFUSAL_CODES = {
  /** The mount point is a FUSE mount whose process died (ENOTCONN). */
  MOUNTPOINT_DEAD: 'ENOTCONN',
  MOUNTPOINT_MISSING: 'ENOENT',
  MOUNTPOINT_UNUSABLE: 'EIO',
  MOUNTPOINT_NOT_DIR: 'ENOTDIR',
  MOUNTPOINT_MOUNTED: 'EBUSY',
  MOUNTPOINT_NOT_EMPTY: 'ENOTEMPTY',
  CONFIG_MISSING: 'ENOENT',
  CONFIG_INVALID: 'EINVAL',
  /** --peers (or the config's peers) names no peer, a bad name or URL, or one twice. */
  PEERS_INVALID: 'EINVAL',
  TOKEN_MISSING: 'EINVAL',
  /** This node has no TLS identity yet (mirrorfs init makes one). */
  TLS_IDENTITY_MISSING: 'ENOENT',
  /** This node's TLS identity is half there, or not a matching PEM pair. */
  TLS_IDENTITY_INVALID: 'EINVAL',
  /** No trust configured, or the trust file is missing, empty or malformed. */
  TRUST_INVALID: 'EINVAL',
  /** The CA bundle given with --trust-ca is missing or holds no certificate. */
  CA_BUNDLE_INVALID: 'EINVAL',
  /** A URL's scheme does not match the node's transport (https:// vs --insecure-cleartext). */
  TRANSPORT_MISMATCH: 'EINVAL',
  FUSE_UNPATCHED: 'ENOSYS',
  FUSE_UNAVAILABLE: 'ENODEV',
  FUSE_LIBRARY_MISSING: 'ENOENT',
  FUSE_LOAD_FAILED: 'EIO',
  FUSE_MOUNT_FAILED: 'EIO',
  /** A peer's routes lead to different peers. */
  ROUTES_DISAGREE: 'EINVAL',
  /** A peer refused the mount (unreachable, credentials, version); `cause` holds its MirrorError. */
  PEER_REFUSED: 'EIO',
  /** Another mount owns the peers, or took them at the same time. */
  PEERS_OWNED: 'EBUSY',
  ACK_POLICY_INVALID: 'EINVAL',
  /** The copies hold different trees and nothing orders the difference: the operator chooses (--resync-from). */
  COPIES_DIFFER: 'EIO',
  /** Recovery at mount could not finish (a catch-up, a roll-forward or a resync failed, or nothing is left to resync from). */
  RECOVERY_FAILED: 'EIO',
  /** A state file (the mount id, the peer's database) is not one this build can use. */
  STATE_INVALID: 'EINVAL',
  /** The peer's data directory (or, without one, what a pure relay needs) is wrong. */
  DATA_DIR_INVALID: 'ENOTDIR',
  /** Our posix addon (native/posix) is not built or does not load. */
  ADDON_MISSING: 'ENOENT',
  CONTROL_LISTEN_FAILED: 'EIO',
} as const;

export type RefusalCode = keyof typeof REFUSAL_CODES;

export class Refusal extends Error {
  override readonly name = 'Refusal';
  readonly errno: string;

  constructor(readonly code: RefusalCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.errno = REFUSAL_CODES[code];
  }
}

/** The refusal's code, or undefined for anything else (a bug, a plain Error). */
export function refusalCode(err: unknown): RefusalCode | undefined {
  return err instanceof Refusal ? err.code : undefined;
}
