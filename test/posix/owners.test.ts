import { describe, it } from 'vitest';
import { defineCases, usePosixMount } from '../helpers/posix.js';
import { ownersCases } from './cases/owners.js';

/**
 * POSIX conformance, who owns what a user creates: every case runs as root and as an
 * unprivileged user, in an ext4 directory (the oracle) and in a real mount of
 * two real peers; the mount must answer every step as ext4 did, and both
 * peers' copies must equal the mount (owners and xattrs included). One mount
 * for the file; each case in its own directory.
 */
describe('POSIX: who owns what a user creates', () => {
  const fx = usePosixMount();
  defineCases(fx, ownersCases, it, { onMount: true });
});
