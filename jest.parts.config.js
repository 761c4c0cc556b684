/**
 * Runs test parts (`*.part.ts`) as test files of their own, one module registry each, as their suites
 * do not: `npm run test:part -- test/pull/pull-kill` (see test/support/test-parts.ts).
 * @type {import('jest').Config}
 */
module.exports = { ...require('./jest.config'), testMatch: ['**/*.part.ts'] };
