import type { Migration } from './index';

/**
 * Webhook subscribers enabled again, and a pruned outbox.
 *
 * - `webhooks.enabled_at`: when the subscriber was last (re-)enabled; it is sent only events raised
 *   at or after it, so one enabled again gets none raised while it was disabled. Backfilled from
 *   `created_at` (a subscriber disabled now moves it when an admin enables it again).
 * - `webhook_deliveries.finished_at`: when a delivery ended (delivered, failed, or `skipped`: an event
 *   raised before its subscriber was enabled again, never sent). Set exactly for the finished states.
 *   Backfilled from `delivered_at`, or for a failed one from `created_at` (when it failed was not
 *   recorded; its retries lasted minutes to hours after that).
 * - Finished rows older than `NOTIFY_OUTBOX_RETENTION_DAYS` are pruned by the notify worker
 *   (outbox-processor.ts), which these indexes serve: finished deliveries by age, processed events by
 *   age, and the deliveries of an event (an event is pruned once none is left; its delete cascades
 *   through this index rather than a scan per event).
 * - A case-manager notification outlives the outbox event it came from (its list is the team's
 *   record): `outbox_id` becomes null when the event is pruned, instead of the notification being
 *   deleted with it.
 */
export const migration037: Migration = {
  version: 37,
  name: 'webhook-enabled-at-and-outbox-pruning',
  sql: `
ALTER TABLE webhooks ADD COLUMN enabled_at timestamptz;
UPDATE webhooks SET enabled_at = created_at;
ALTER TABLE webhooks ALTER COLUMN enabled_at SET DEFAULT now();
ALTER TABLE webhooks ALTER COLUMN enabled_at SET NOT NULL;

ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_state_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_state_check CHECK (state IN ('queued', 'delivered', 'failed', 'skipped'));
ALTER TABLE webhook_deliveries ADD COLUMN finished_at timestamptz;
UPDATE webhook_deliveries SET finished_at = COALESCE(delivered_at, created_at) WHERE state <> 'queued';
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_finished CHECK ((state = 'queued') = (finished_at IS NULL));

CREATE INDEX webhook_deliveries_finished_idx ON webhook_deliveries (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX webhook_deliveries_outbox_idx ON webhook_deliveries (outbox_id);
CREATE INDEX outbox_processed_idx ON outbox (processed_at) WHERE processed_at IS NOT NULL;

ALTER TABLE notifications DROP CONSTRAINT notifications_outbox_id_fkey;
ALTER TABLE notifications ADD CONSTRAINT notifications_outbox_id_fkey FOREIGN KEY (outbox_id) REFERENCES outbox(id) ON DELETE SET NULL;
`,
};
