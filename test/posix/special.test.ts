import { describe, it } from 'vitest';
import { defineCases, usePosixMount } from '../helpers/posix.js';
import { specialCases } from './cases/special.js';

/**
 * POSIX conformance, special files: FIFOs, sockets, character and block
 * devices (root; EPERM for anyone else), their modes, owners and device
 * numbers on the mount and on both peers, what can be done to them, and data
 * through a FIFO on the mount. Each case as root and as an unprivileged user;
 * one mount for the file.
 */
describe('POSIX: special files', () => {
  const fx = usePosixMount();
  defineCases(fx, specialCases, it, { onMount: true });
});
