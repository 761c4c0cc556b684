import { getEventListeners, getMaxListeners } from 'node:events';
import { stopWaitsAtOnce } from '../../queues';
import { loadConfig } from '../../src/config';
import { abortableSleep } from '../../src/util/abortable-sleep';
import { stopController } from '../../src/util/stop-controller';

/**
 * The process's stop signal takes as many listeners as its workers can have waits at once, so Node's
 * MaxListenersExceededWarning (seen in bench:e2e: 11 requests waiting for one endpoint's limiter slots
 * at the default concurrencies) is not logged for legitimate waits, and still is for a leak: Node warns
 * when a signal's listeners exceed `getMaxListeners(signal)`.
 */

it('takes the waits of the default concurrencies (8 pull jobs with a page ahead each, 4 attachment jobs) without a warning, and none is left after the stop', async () => {
  const config = loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/x', AUTH_JWT_SECRET: 'test-secret-that-is-long-enough-for-hs256-0123456789' });
  const waits = stopWaitsAtOnce(config);
  expect(waits).toBe(2 * 8 + 4);
  const stop = stopController(waits);
  const sleeping = Array.from({ length: waits }, () => abortableSleep(60_000, stop.signal));
  expect(getEventListeners(stop.signal, 'abort')).toHaveLength(waits);
  expect(getEventListeners(stop.signal, 'abort').length).toBeLessThanOrEqual(getMaxListeners(stop.signal));
  stop.abort();
  await Promise.all(sleeping);
  expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
});

it('keeps Node\'s leak warning past its bound, and never goes below Node\'s default of 10', () => {
  expect(getMaxListeners(stopController(64 * 2 + 64).signal)).toBe(192);
  expect(getMaxListeners(stopController(3).signal)).toBe(10);
  expect(getMaxListeners(new AbortController().signal)).toBe(10);
});
