/**
 * Hooks of every test file, at its top level (Jest's `setupFilesAfterEnv`): in a suite of test parts
 * (`test-parts.ts`) they run once the last part is done, not when the first part that imported a
 * helper ends.
 */
import { removeTempDirs } from './temp-dir';

afterAll(() => {
  removeTempDirs();
});
