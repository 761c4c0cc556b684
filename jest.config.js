/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // TypeScript to CommonJS by SWC: types stripped, no type check (`npm test` runs `tsc` first), the
  // same output shape as tsconfig.json's (ES2022, class fields defined, esModuleInterop's default
  // imports). ts-jest did the same through TypeScript's `transpileModule` at ~2× the CPU on a cold
  // cache (a clean clone: every module of every worker), and loaded `typescript` into each worker.
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript' }, target: 'es2022', transform: { useDefineForClassFields: true } }, module: { type: 'commonjs' }, sourceMaps: true },
    ],
  },
  setupFiles: ['<rootDir>/test/support/setup-env.ts'],
  setupFilesAfterEnv: ['<rootDir>/test/support/setup-after-env.ts'],
  // Builds the migrated template databases once, before the workers start (test/support/global-setup.ts).
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  // A test's own limit where it sets one; otherwise 60 s. Some PGlite tests take 2 s alone but 8 s
  // beside two other files on this 2-core machine, and the shared host runs up to 2-3× slower at
  // times: 30 s left too little room. Only a hanging test waits longer for it.
  testTimeout: 60000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  // The long files (drills, demo, real patients) first, so they overlap with the rest (test/support/long-first-sequencer.js).
  testSequencer: '<rootDir>/test/support/long-first-sequencer.js',
  // Each test file gets its own PostgreSQL database and Redis key prefix (test/support), so files
  // run in parallel. Three workers on the machine's two cores: the test files spend much of their
  // time waiting (on sandbox servers, PostgreSQL, Redis, queue workers, Retry-After waits), so with two
  // the cores were idle ~40 % of the time (test/pull: 340 s with 2 workers, 276 s with 3). Four gave
  // nothing more (2026-12-02, the whole suite back to back: 795 s with 3, 806 s with 4).
  maxWorkers: 3,
  // A worker whose memory has grown past this after a file is replaced by a fresh one. Each file loads
  // its own copy of the service's ~1,300 modules (a suite of test parts once for all its parts:
  // test/support/test-parts.ts) and a worker keeps much of every file it ran: its heap
  // grew by tens of MB a file (700–900 MB after a file, with this limit, before the worker was
  // replaced), and every full collection marked all of it. Measured on this 2-core machine
  // (2026-12-01, the whole suite, `npx jest`): no limit 933–956 s (~1,790 s of CPU), 700 MB 698 s
  // (~1,310 s), 400 MB 689 s (~1,290 s): a worker's start (~1 s) is cheap beside that.
  workerIdleMemoryLimit: '700MB',
};
