import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

// Tests never touch the user's own settings and data (recent projects, model list, hash cache, demo project).
const scratch = mkdtempSync(path.join(os.tmpdir(), 'eidetic-test-home-'));

// The demo acceptance runs: the bundled demo model, descriptor, search and project measured against their
// targets with the app's own engine. They take minutes each (most of the suite's time), so they are a
// project of their own: `npm run test:fast` runs `unit` only, `npm test` runs both.
const acceptance = [
  'tests/integration/demo-model.test.ts',
  'tests/integration/demo-match.test.ts',
  'tests/integration/search-demo.test.ts',
  'tests/integration/demo-project.test.ts',
  'tests/integration/benchmark-demo.test.ts',
];

export default defineConfig({
  test: {
    globalSetup: ['tests/global-setup.ts'],
    env: { EIDETIC_CONFIG_DIR: path.join(scratch, 'config'), EIDETIC_DATA_DIR: path.join(scratch, 'data') },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // The machine has 2 cores; ONNX sessions are multi-threaded themselves. Shared by both projects.
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts', 'tests/integration/**/*.test.ts', 'tests/robustness/**/*.test.ts'],
          exclude: acceptance,
        },
      },
      {
        extends: true,
        test: {
          name: 'acceptance',
          include: acceptance,
        },
      },
    ],
  },
});
