/**
 * What a test file starts once for all of its tests (the service, a sandbox EHR, a subscriber…): the
 * `beforeAll` that starts it and the `afterAll` that stops it, registered in the calling file.
 * @packageDocumentation
 */

/** Something a test file starts and must stop once its tests are done. */
export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Starts `start()` before the calling file's tests (within `timeoutMs`), hands what it started to
 * `keep` (which puts it, or its parts, in the file's variables), and stops it after the file's tests,
 * whether they passed or not. Call it at the top level of the file, or of a `describe`, as the hooks
 * it stands for would be.
 */
export function startForFile<T extends Stoppable>(start: () => Promise<T>, keep: (started: T) => void, timeoutMs = 60_000): void {
  let started: T | undefined;
  beforeAll(async () => {
    started = await start();
    keep(started);
  }, timeoutMs);
  afterAll(async () => {
    await started?.stop();
  });
}
