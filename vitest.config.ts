import { defineConfig } from 'vitest/config';

// Each test file opens its own database (a PGlite clone, or a fresh Postgres database in the
// real-Postgres tier) and loads the offline embedder: ~200-300 MB a file, so two at a time on
// a 2-core machine.
export default defineConfig({
  resolve: {
    // Node resolves `graphql` to its CJS entry (for pothos and yoga, loaded natively); Vite
    // would pick the .mjs one for our code, and graphql refuses to mix the two realms.
    alias: { graphql: 'graphql/index.js' },
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    poolOptions: { forks: { minForks: 1, maxForks: 2 } },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
