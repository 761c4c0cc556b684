import type { Migration } from './index';

/**
 * Webhook signing-secret rotation without a gap (`POST /api/webhooks/:id/secret`): the secret a
 * rotation replaced keeps signing beside the new one until `previous_secret_until`, so a subscriber
 * can switch at any time in that overlap. Sealed like `sealed_secret` (AES-256-GCM, AAD = webhook
 * id); both columns are set together or not at all.
 */
export const migration031: Migration = {
  version: 31,
  name: 'webhook-secret-rotation',
  sql: `
ALTER TABLE webhooks ADD COLUMN previous_sealed_secret text;
ALTER TABLE webhooks ADD COLUMN previous_secret_until timestamptz;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_previous_secret_pair
  CHECK ((previous_sealed_secret IS NULL) = (previous_secret_until IS NULL));
`,
};
