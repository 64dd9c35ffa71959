import { describe, it } from 'vitest';
import { defineCases, usePosixMount } from '../helpers/posix.js';
import { timesCases } from './cases/times.js';

/**
 * POSIX conformance, times: which operation changes which time of which
 * name (compared with ext4 as relations: the two file systems stamp at
 * different instants), explicit times to the nanosecond before 1970 and after
 * 2038 (compared exactly, in the mount and in both peers' trees), every
 * combination of UTIME_NOW and UTIME_OMIT, and a symlink's own times. Each
 * case as root and as an unprivileged user; one mount for the file.
 */
describe('POSIX: times', () => {
  const fx = usePosixMount();
  defineCases(fx, timesCases, it, { onMount: true });
});
