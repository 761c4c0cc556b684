import type { Migration } from './index';

/**
 * `webhook_deliveries.requeued_at`: when the stale sweep last queued the delivery again (its job
 * may have been lost). The sweep takes the queued deliveries not looked at for the longest first
 * (never, then oldest `requeued_at`) and stamps them, so a subscriber with hundreds of deliveries
 * still retrying (their jobs alive, waiting out their backoff) cannot fill every sweep's batch and
 * keep another subscriber's lost delivery from ever being queued again. NULL: never re-queued.
 * The partial index serves that order over the queued rows only.
 */
export const migration043: Migration = {
  version: 43,
  name: 'webhook-delivery-requeued-at',
  sql: `
ALTER TABLE webhook_deliveries ADD COLUMN requeued_at timestamptz;
CREATE INDEX webhook_deliveries_requeue_idx ON webhook_deliveries (requeued_at NULLS FIRST, created_at) WHERE state = 'queued';
`,
};
