import { defineConfig } from 'vitest/config';

// Two projects: 'fast' (pure and in-process tests, run in parallel) and 'e2e' (real processes and a
// browser, run one file at a time so that a 2-core machine is not oversubscribed).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'fast',
          include: ['test/unit/**/*.test.ts', 'test/model/**/*.test.ts', 'test/interaction/**/*.test.ts', 'test/sim/**/*.test.ts', 'machines/**/*.test.ts', 'src/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts', 'test/browser/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 240_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
