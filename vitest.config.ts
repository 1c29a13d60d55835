import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Browser tests start Chromium; keep them from fighting the rest for the two cores.
    maxWorkers: process.env.CI ? 2 : undefined,
    // fast-check runs with a fixed seed in CI (see test/helpers/fc.ts)
    env: { FC_SEED: process.env.FC_SEED ?? '20261125' },
  },
});
