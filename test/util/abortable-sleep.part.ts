import { getEventListeners } from 'node:events';
import { abortableSleep } from '../../src/util/abortable-sleep';

/** `abortableSleep`: the whole wait, or until one of its signals fires; nothing left behind either way. */

it('waits the whole time when no signal fires, and leaves no listener', async () => {
  const stop = new AbortController();
  const started = performance.now();
  await abortableSleep(50, stop.signal, undefined);
  expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
});

it('ends as soon as any of its signals fires, and leaves no listener on the others', async () => {
  const stop = new AbortController();
  const wake = new AbortController();
  const started = performance.now();
  const sleeping = abortableSleep(60_000, stop.signal, wake.signal);
  expect(getEventListeners(stop.signal, 'abort')).toHaveLength(1);
  wake.abort();
  await sleeping;
  expect(performance.now() - started).toBeLessThan(10_000); // of a 60 s sleep
  expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
});

it('does not wait at all for a signal that has already fired', async () => {
  const started = performance.now();
  await abortableSleep(60_000, undefined, AbortSignal.abort());
  expect(performance.now() - started).toBeLessThan(10_000); // of a 60 s sleep
});
