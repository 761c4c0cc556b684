/**
 * Waits `ms`, or less: until any of `wakeOn` fires (resolves either way, never rejects). A signal that
 * has already fired ends the wait at once. The timer and the listeners are removed when the wait
 * ends, whichever way, so a long-lived signal (a process's stop) collects nothing from repeated waits.
 * @param ms - The longest wait.
 * @param wakeOn - Signals that end the wait early (undefined ones are ignored).
 */
export function abortableSleep(ms: number, ...wakeOn: readonly (AbortSignal | undefined)[]): Promise<void> {
  const signals = wakeOn.filter((s): s is AbortSignal => s !== undefined);
  if (signals.some((s) => s.aborted)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      for (const signal of signals) signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const signal of signals) signal.addEventListener('abort', done, { once: true });
  });
}
