import { describe, it } from 'vitest';
import { defineCases, useLocalPair } from '../helpers/posix.js';
import { namesCases } from './cases/names.js';
import { timesCases } from './cases/times.js';

/**
 * The self-check of the times and length-limit cases, as harness.test.ts
 * does for the first ones: on two plain local directories (ext4 both) every
 * case must pass, known limits included; a case that fails here tests the
 * harness, not the product.
 */
describe('the times and length-limit cases on two local directories', () => {
  const fx = useLocalPair();
  describe('times', () => defineCases(fx, timesCases, it));
  describe('names', () => defineCases(fx, namesCases, it));
});
