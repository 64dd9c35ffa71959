import { describe, it } from 'vitest';
import { defineCases, usePosixMount } from '../helpers/posix.js';
import { xattrCases } from './cases/xattrs.js';

/**
 * POSIX conformance, extended attributes: every case runs as root and as an
 * unprivileged user, in an ext4 directory (the oracle) and in a real mount of
 * two real peers; the mount must answer every step as ext4 did, and both
 * peers' copies must equal the mount (owners and xattrs included). One mount
 * for the file; each case in its own directory.
 */
describe('POSIX: extended attributes', () => {
  const fx = usePosixMount();
  defineCases(fx, xattrCases, it, { onMount: true });
});
