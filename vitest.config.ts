import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Suites start their own servers and child processes; on a 2-core machine running
          // them one file at a time keeps timing-sensitive assertions (leases, deadlines) honest.
          fileParallelism: false,
        },
      },
    ],
  },
});
