import { describe, it } from 'vitest';
import { defineCases, useLocalPair } from '../helpers/posix.js';
import { extrasCases } from './cases/extras.js';
import { specialCases } from './cases/special.js';

/**
 * The self-check of the special-file cases and of what the kernel offers
 * beyond read/write, as harness.test.ts does for the first ones: on two plain
 * local directories (ext4 both) every case must pass, known limits included;
 * a case that fails here tests the harness, not the product.
 */
describe('the special-file and beyond-read/write cases on two local directories', () => {
  const fx = useLocalPair();
  describe('special files', () => defineCases(fx, specialCases, it));
  describe('beyond read/write', () => defineCases(fx, extrasCases, it));
});
