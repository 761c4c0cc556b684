/**
 * Temporary folders for a test file (rule data written for one test, an empty folder…), all under
 * one root that is removed once the file's tests are done: importing this module registers the
 * removal (`afterAll`) in the importing file, so a test never leaves folders behind in the OS temp
 * folder, whether it passes or fails.
 * @packageDocumentation
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

let root: string | undefined;

/** A new empty folder named `<prefix>-…`, removed after the test file. */
export function tempDir(prefix: string): string {
  root ??= fs.mkdtempSync(path.join(os.tmpdir(), 'sob-test-files-'));
  return fs.mkdtempSync(path.join(root, `${prefix}-`));
}

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
  root = undefined;
});
