import { CircuitOpenError, FhirNetworkError } from '../../src/fhir';
import { mayWaitForPause, pauseWaitUntil, PAUSE_RECHECK_MS } from '../../queues/paused-endpoint';

/** When a job waits for an endpoint its circuit breaker paused, and until when (pure; jitter fixed at 0). */
const noJitter = (): number => 0;
const NOW = 1_800_000_000_000;
const open = (retryInMs: number): CircuitOpenError => new CircuitOpenError('e1', NOW + retryInMs);

it('waits until the breaker lets a probe through, asking again at least every 10 s', () => {
  expect(pauseWaitUntil(open(3_000), NOW, undefined, 60_000, noJitter)).toBe(NOW + 3_000);
  // A probe in flight answers with the end of its lease (minutes away): ask again sooner.
  expect(pauseWaitUntil(open(120_000), NOW, undefined, 600_000, noJitter)).toBe(NOW + PAUSE_RECHECK_MS);
  // A retry time already past: run again now.
  expect(pauseWaitUntil(open(-5_000), NOW, undefined, 60_000, noJitter)).toBe(NOW);
});

it('waits no longer than its budget, counted from its first wait, and not at all for other errors', () => {
  expect(pauseWaitUntil(open(30_000), NOW, NOW - 55_000, 60_000, noJitter)).toBe(NOW + 5_000);
  expect(mayWaitForPause(NOW, NOW - 60_000, 60_000)).toBe(false);
  expect(pauseWaitUntil(open(1_000), NOW, NOW - 60_000, 60_000, noJitter)).toBeUndefined();
  expect(pauseWaitUntil(open(1_000), NOW, undefined, 0, noJitter)).toBeUndefined();
  expect(pauseWaitUntil(new FhirNetworkError('reset', 'ECONNRESET', true, false), NOW, undefined, 60_000, noJitter)).toBeUndefined();
});

it('spreads the waiting jobs of one endpoint by up to a quarter second', () => {
  const until = pauseWaitUntil(open(3_000), NOW, undefined, 60_000, () => 0.999);
  expect(until).toBeGreaterThan(NOW + 3_000);
  expect(until).toBeLessThan(NOW + 3_250);
});
