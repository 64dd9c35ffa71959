import { checkCanonicalWire, wireByteLength } from './byte-names.js';
import { MirrorError } from './errors.js';

/**
 * Wire paths name an entry relative to the root of the mirrored tree:
 * "a/b/c", with "" for the root itself. They never start with "/", never
 * contain "." or ".." components, empty components, NUL bytes, or components
 * longer than NAME_MAX (counted in bytes: names are bytes, carried as in
 * byte-names.ts, and only their canonical wire form is accepted). Validating here (both sides share this module) means a
 * path that escapes is refused before any file system call is made.
 */

export const NAME_MAX_BYTES = 255;
export const PATH_MAX_BYTES = 4095;

/** Names the mirror keeps for itself at the root of a peer's data directory. */
export const RESERVED_ROOT_NAMES = new Set(['.mirrorfs']);

/** Split and validate a wire path; returns its components ([] for the root). */
export function parseWirePath(path: unknown, what = 'path'): string[] {
  if (typeof path !== 'string') throw new MirrorError('MFS_MALFORMED', `${what} must be a string`);
  if (path === '') return [];
  if (wireByteLength(path) > PATH_MAX_BYTES) {
    throw new MirrorError('MFS_PATH_ESCAPE', `${what} longer than ${PATH_MAX_BYTES} bytes`, { errno: 'ENAMETOOLONG' });
  }
  if (path.includes('\0')) throw new MirrorError('MFS_PATH_ESCAPE', `${what} contains a NUL byte`, { errno: 'EINVAL' });
  checkCanonicalWire(path, what);
  if (path.startsWith('/')) throw new MirrorError('MFS_PATH_ESCAPE', `${what} is absolute: ${JSON.stringify(path)}`);
  const parts = path.split('/');
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..') {
      throw new MirrorError('MFS_PATH_ESCAPE', `${what} has a ${JSON.stringify(part)} component: ${JSON.stringify(path)}`);
    }
    if (part.length > NAME_MAX_BYTES / 3 && wireByteLength(part) > NAME_MAX_BYTES) {
      throw new MirrorError('MFS_PATH_ESCAPE', `${what} has a component longer than ${NAME_MAX_BYTES} bytes`, { errno: 'ENAMETOOLONG' });
    }
  }
  if (RESERVED_ROOT_NAMES.has(parts[0]!)) {
    throw new MirrorError('MFS_RESERVED_NAME', `${what} ${JSON.stringify(parts[0])} is reserved for mirrorfs state`);
  }
  return parts;
}

/** Convert a FUSE path ("/a/b", "/" for the root) into a wire path ("a/b", ""). */
export function fusePathToWire(fusePath: string): string {
  return fusePath === '/' ? '' : fusePath.replace(/^\/+/, '');
}
