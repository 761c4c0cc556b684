/**
 * Temporary folders for a test file (rule data written for one test, an empty folder…), all under
 * one root that is removed once the file's tests are done (`removeTempDirs`, an `afterAll` of every
 * test file: `setup-after-env.ts`), so a test never leaves folders behind in the OS temp folder,
 * whether it passes or fails. Not a hook registered here on import: in a suite of test parts that
 * would be the first importing part's, and remove the later parts' folders under them.
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

/** Removes every folder {@link tempDir} made in this test file. */
export function removeTempDirs(): void {
  if (root) fs.rmSync(root, { recursive: true, force: true });
  root = undefined;
}
