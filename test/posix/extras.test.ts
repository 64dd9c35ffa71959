import { describe, it } from 'vitest';
import { defineCases, usePosixMount } from '../helpers/posix.js';
import { extrasCases } from './cases/extras.js';

/**
 * POSIX conformance, what the kernel offers beyond read and write:
 * fallocate, copy_file_range, O_DIRECT, shared writable mmap, concurrent
 * O_APPEND, O_TMPFILE, renameat2 flags, flock/fcntl locks, POSIX ACLs; each
 * compared with ext4 and, for contents, on both peers. Known limits (README)
 * run as expected failures. Each case as root and as an unprivileged user;
 * one mount for the file.
 */
describe('POSIX: what the kernel offers beyond read/write', () => {
  const fx = usePosixMount();
  defineCases(fx, extrasCases, it, { onMount: true });
});
