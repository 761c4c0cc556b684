/**
 * An AbortController for a stop that many waits listen for at once (the process's stop, which every
 * request waiting to be sent listens for).
 *
 * Each wait adds an `abort` listener and removes it when the wait ends, whichever way
 * (`abortable-sleep.ts`, the FHIR client's retry backoff): the listeners at any moment are the waits
 * under way, bounded by the work running, not growing with time. Node warns of a possible leak past 10
 * listeners on one signal (`MaxListenersExceededWarning`), a line an operator would rightly chase;
 * the bound is raised to the waits the caller can legitimately have at once, so that a warning past
 * it still means a leak.
 * @see https://nodejs.org/docs/latest-v20.x/api/events.html#eventssetmaxlistenersn-eventtargets
 * @packageDocumentation
 */
import { setMaxListeners } from 'node:events';

/** Node's default: more `abort` listeners than this on one signal are warned of. */
const NODE_DEFAULT_MAX_LISTENERS = 10;

/** A controller whose signal takes `maxWaitsAtOnce` listeners (never fewer than Node's default) before Node warns. */
export function stopController(maxWaitsAtOnce: number): AbortController {
  const controller = new AbortController();
  setMaxListeners(Math.max(NODE_DEFAULT_MAX_LISTENERS, Math.ceil(maxWaitsAtOnce)), controller.signal);
  return controller;
}
