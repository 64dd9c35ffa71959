import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // The TLS identities and trust file every test node uses (tests talk mutual TLS, the default).
    globalSetup: ['test/helpers/global-tls.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file starts its own peers (and later mounts) on port 0, so files can
    // run in parallel; two workers match the machine's two cores.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
