import { describe, it } from 'vitest';
import { defineCases, useLocalPair } from '../helpers/posix.js';
import { timesCases } from './cases/times.js';

/**
 * The self-check of the newer conformance cases (times, names, special files,
 * extras), as harness.test.ts does for the first ones: on two plain local
 * directories (ext4 both) every case must pass, known limits included; a case
 * that fails here tests the harness, not the product.
 */
describe('the newer POSIX cases on two local directories', () => {
  const fx = useLocalPair();
  describe('times', () => defineCases(fx, timesCases, it));
});
