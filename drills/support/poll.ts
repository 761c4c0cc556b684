/**
 * Waiting on state that has no event to await (a pull's row in PostgreSQL, a child process's
 * progress): read it every `intervalMs` until it holds, and fail with the last value seen after
 * the deadline.
 */
export async function eventually<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 60_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await read();
      if (done(value)) return value;
      lastError = undefined;
      if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms (last: ${JSON.stringify(value).slice(0, 500)})`);
    } catch (err) {
      // A read may fail while the thing under test restarts; only the deadline ends the wait.
      if (err instanceof Error && err.message.startsWith(`${what}: not reached`)) throw err;
      lastError = err;
      if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
