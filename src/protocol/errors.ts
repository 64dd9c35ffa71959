import { constants as osConstants } from 'node:os';

/**
 * One registry of the errors that cross the wire.
 *
 * Every failure carries an errno name (what the mount hands back to the kernel)
 * and a stable `code` (why, for logs and callers that branch). Callers branch on
 * `code` or `errno`, never on message text.
 */

const ERRNO = osConstants.errno as Record<string, number>;

/** Protocol-level failure codes, each with the errno the mount reports and an HTTP status. */
export const WIRE_CODES = {
  MFS_MALFORMED: { errno: 'EINVAL', status: 400, message: 'malformed request' },
  MFS_TOO_LARGE: { errno: 'EFBIG', status: 413, message: 'request too large' },
  /** The request's bearer token is missing or wrong. */
  MFS_AUTH: { errno: 'EACCES', status: 401, message: 'authentication failed' },
  /** The peer does not trust this client's TLS certificate (the session is then closed). */
  MFS_AUTH_CERT: { errno: 'EACCES', status: 401, message: 'client certificate not trusted' },
  /** The client's certificate is trusted, but its roles do not allow this request (security/roles.ts). */
  MFS_ROLE: { errno: 'EACCES', status: 403, message: 'the certificate\'s roles do not allow this' },
  /** A handshake skips epochs: a peer advances one epoch at a time (the client steps through them). */
  MFS_EPOCH_SKIP: { errno: 'EPROTO', status: 200, message: 'epoch is more than one ahead of this peer' },
  /** Client side: the peer's TLS certificate is not one this node trusts (nothing was sent to it). */
  MFS_UNTRUSTED: { errno: 'EACCES', status: 0, message: 'peer certificate not trusted' },
  MFS_PROTOCOL_MISMATCH: { errno: 'EPROTO', status: 426, message: 'protocol version mismatch' },
  MFS_NOT_FOUND: { errno: 'EINVAL', status: 404, message: 'no such route' },
  MFS_PATH_ESCAPE: { errno: 'EACCES', status: 200, message: 'path escapes the data directory' },
  MFS_RESERVED_NAME: { errno: 'EPERM', status: 200, message: 'name is reserved by mirrorfs' },
  MFS_FENCED: { errno: 'EROFS', status: 200, message: 'fenced: a newer epoch owns this peer' },
  MFS_NOT_OWNER: { errno: 'EBUSY', status: 200, message: 'peer is owned by another mount' },
  MFS_NO_HANDSHAKE: { errno: 'EPROTO', status: 200, message: 'epoch not established: handshake first' },
  MFS_SEQ_CONFLICT: { errno: 'EIO', status: 200, message: 'sequence number already used by a different operation' },
  MFS_SEQ_FORGOTTEN: { errno: 'EIO', status: 200, message: 'sequence number older than the retained history' },
  MFS_SHUTTING_DOWN: { errno: 'EAGAIN', status: 503, message: 'peer is shutting down' },
  /** The peer restarted after its machine crashed with changes not yet flushed: not exact until its owner repairs it. */
  MFS_UNCLEAN: { errno: 'EIO', status: 503, message: 'peer restarted uncleanly and is not exact until repaired' },
  MFS_TIMEOUT: { errno: 'EIO', status: 0, message: 'peer did not answer in time' },
  MFS_UNREACHABLE: { errno: 'EIO', status: 0, message: 'peer unreachable' },
  MFS_BAD_RESPONSE: { errno: 'EIO', status: 0, message: 'peer sent an invalid response' },
  MFS_OUT_OF_STEP: { errno: 'EIO', status: 0, message: 'peer missed an earlier change and needs catching up' },
  MFS_INTERNAL: { errno: 'EIO', status: 500, message: 'internal error' },
  /** A plain errno from the file system, e.g. ENOENT from lstat. */
  MFS_ERRNO: { errno: 'EIO', status: 200, message: 'file system error' },
} as const;

export type WireCode = keyof typeof WIRE_CODES;

/** The shape an error takes on the wire. */
export interface WireError {
  errno: string;
  code: WireCode;
  message: string;
}

export interface ErrorContext {
  peer?: string;
  path?: string;
  op?: string;
}

/** The one error type of mirrorfs. The message starts with the code, as in hypercore. */
export class MirrorError extends Error {
  readonly errno: string;
  readonly code: WireCode;
  readonly context: ErrorContext;

  constructor(code: WireCode, detail?: string, opts: { errno?: string; context?: ErrorContext; cause?: unknown } = {}) {
    const base = WIRE_CODES[code];
    const errno = opts.errno ?? base.errno;
    super(`${code}${errno !== base.errno || code === 'MFS_ERRNO' ? ` ${errno}` : ''}: ${detail ?? base.message}`, { cause: opts.cause });
    this.name = 'MirrorError';
    this.errno = errno;
    this.code = code;
    this.context = opts.context ?? {};
  }

  /** HTTP status a server uses for this error (200 for operation outcomes). */
  get httpStatus(): number {
    return WIRE_CODES[this.code].status || 500;
  }

  toWire(): WireError {
    return { errno: this.errno, code: this.code, message: this.message };
  }

  static fromWire(w: WireError, context?: ErrorContext): MirrorError {
    const code: WireCode = w.code in WIRE_CODES ? w.code : 'MFS_ERRNO';
    const err = new MirrorError(code, stripCode(w.message, code), { errno: isErrnoName(w.errno) ? w.errno : 'EIO', context });
    return err;
  }
}

function stripCode(message: string, code: string): string {
  const m = /^[A-Z_]+(?: E[A-Z0-9]+)?: (.*)$/s.exec(message);
  return m && message.startsWith(code) ? (m[1] ?? message) : message;
}

/** True for errno names this platform knows (ENOENT, EEXIST, ...). */
export function isErrnoName(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(ERRNO, name);
}

/** Numeric errno for a name; unknown names become EIO (and the caller should log). */
export function errnoNumber(name: string): number {
  return ERRNO[name] ?? ERRNO.EIO ?? 5;
}

/**
 * Errno outcomes that describe the state of the tree (deterministic: the same
 * operation on the same tree gives the same answer). Only these are remembered
 * as an operation's "first result"; anything else (ENOSPC, EIO, EMFILE ...) is
 * transient and a retry must be allowed to succeed.
 */
const DETERMINISTIC_ERRNOS = new Set([
  'ENOENT', 'EEXIST', 'ENOTEMPTY', 'ENOTDIR', 'EISDIR', 'EINVAL', 'EACCES', 'EPERM',
  'ENAMETOOLONG', 'ELOOP', 'EXDEV', 'EMLINK', 'ENODATA', 'ERANGE', 'E2BIG', 'EFBIG', 'EBADF',
  // an unknown xattr namespace, an operation the peer's file system lacks: the same every time
  'ENOTSUP', 'EOPNOTSUPP',
]);

export function isDeterministic(errno: string): boolean {
  return DETERMINISTIC_ERRNOS.has(errno);
}

/**
 * Translate anything thrown while applying an operation into a MirrorError.
 * Node fs errors carry `code` = errno name; those keep their errno. Anything
 * unknown becomes EIO with MFS_INTERNAL, so the caller logs it rather than
 * swallowing it.
 */
export function toMirrorError(err: unknown, context: ErrorContext = {}): MirrorError {
  if (err instanceof MirrorError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && typeof e.code === 'string' && isErrnoName(e.code)) {
    return new MirrorError('MFS_ERRNO', `${context.op ?? 'operation'} ${context.path ?? ''}: ${e.code}`.trim(), {
      errno: e.code,
      context,
      cause: err,
    });
  }
  return new MirrorError('MFS_INTERNAL', `${context.op ?? 'operation'} failed: ${e?.message ?? String(err)}`, { context, cause: err });
}

/**
 * Codes that mean "no answer about the operation" (the peer was not reached or
 * failed, or one side refused the other's credentials before any operation),
 * not an outcome.
 */
const TRANSPORT_CODES: ReadonlySet<WireCode> = new Set([
  'MFS_TIMEOUT', 'MFS_UNREACHABLE', 'MFS_BAD_RESPONSE', 'MFS_SHUTTING_DOWN', 'MFS_UNCLEAN', 'MFS_INTERNAL', 'MFS_OUT_OF_STEP',
  'MFS_AUTH', 'MFS_AUTH_CERT', 'MFS_UNTRUSTED', 'MFS_ROLE',
]);

/** No answer about the operation: anything that is not a MirrorError, or a code in TRANSPORT_CODES. */
export function isTransportFailure(err: unknown): boolean {
  return !(err instanceof MirrorError) || TRANSPORT_CODES.has(err.code);
}

/** A MirrorError known to carry one of the given codes (what the predicates below narrow to). */
export type MirrorErrorOf<C extends WireCode> = MirrorError & { readonly code: C };

/** The peer could not be reached or did not answer in time (a route or link problem, worth retrying elsewhere). */
export function isNoAnswer(err: unknown): err is MirrorErrorOf<'MFS_UNREACHABLE' | 'MFS_TIMEOUT'> {
  return err instanceof MirrorError && (err.code === 'MFS_UNREACHABLE' || err.code === 'MFS_TIMEOUT');
}

/** The peer is fenced for this mount: a newer epoch owns it, or another mount does. */
export function isFenced(err: unknown): err is MirrorErrorOf<'MFS_FENCED' | 'MFS_NOT_OWNER'> {
  return err instanceof MirrorError && (err.code === 'MFS_FENCED' || err.code === 'MFS_NOT_OWNER');
}

/** The peer refused our credentials (the token, or our certificate); it then closes the connection. */
export function isCredentialRefusal(err: unknown): err is MirrorErrorOf<'MFS_AUTH' | 'MFS_AUTH_CERT'> {
  return err instanceof MirrorError && (err.code === 'MFS_AUTH' || err.code === 'MFS_AUTH_CERT');
}

/**
 * The mount's rule: the peer answered the operation with an outcome it has
 * recorded as the operation's first result (a deterministic errno such as
 * ENOENT), so every copy must agree on it. Anything else is no answer.
 */
export function isRecordedOutcome(err: unknown): err is MirrorErrorOf<'MFS_ERRNO'> {
  return err instanceof MirrorError && err.code === 'MFS_ERRNO' && isDeterministic(err.errno);
}

/**
 * The peer's rule for which failures it records as an operation's first
 * result: any code but MFS_INTERNAL with a deterministic errno. Wider than
 * isRecordedOutcome (it includes e.g. MFS_RESERVED_NAME and MFS_PATH_ESCAPE);
 * the two are kept apart on purpose until that difference is settled.
 */
export function isRecordable(err: MirrorError): boolean {
  return err.code !== 'MFS_INTERNAL' && isDeterministic(err.errno);
}
