import { CircuitOpenError } from '../fhir';

/**
 * How many of one subscriber's webhook requests a worker process has in flight at once. Each attempt
 * may hold a worker slot for up to `WEBHOOK_TIMEOUT_MS`: without a cap, a subscriber that accepts
 * connections and never answers (or a backlog of its events) fills every slot of the `send-webhook`
 * worker and every other subscriber's events wait behind it for the whole of its retry schedule.
 * With one per subscriber, the other slots stay free for the others.
 */
const WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIBER = 1;

/** How long a job that found its subscriber's slot taken waits before it asks again (ms, plus the wait's jitter). */
export const SUBSCRIBER_BUSY_RECHECK_MS = 2000;

/**
 * The subscriber already has {@link WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIBER} requests in flight in this
 * process. A {@link CircuitOpenError} (the subscriber id as its endpoint id): the `send-webhook`
 * worker waits it out as jobs wait for a paused FHIR endpoint (`queues/paused-endpoint.ts`), back in
 * the delayed set without spending an attempt, and nothing is recorded against the subscriber.
 */
export class SubscriberBusyError extends CircuitOpenError {
  override readonly name = 'SubscriberBusyError';
  constructor(webhookId: string, retryAt: number) {
    super(webhookId, retryAt, 'subscriber has a webhook request in flight');
  }
}

/** Per-subscriber in-flight counts of one worker process. */
export class SubscriberSlots {
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly max: number = WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIBER) {}

  /** A slot of `webhookId` (call the returned function once, when the request ended), or undefined when all are taken. */
  tryAcquire(webhookId: string): (() => void) | undefined {
    const n = this.inFlight.get(webhookId) ?? 0;
    if (n >= this.max) return undefined;
    this.inFlight.set(webhookId, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inFlight.get(webhookId) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(webhookId);
      else this.inFlight.set(webhookId, left);
    };
  }
}
