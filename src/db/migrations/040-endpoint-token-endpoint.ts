import type { Migration } from './index';

/**
 * `endpoints.token_endpoint`: the SMART token endpoint pinned for a `smart-backend` endpoint, what
 * its server's discovery (`.well-known/smart-configuration`) named when an admin registered it or
 * changed its base URL or auth. A later discovery naming another one is refused before any token
 * request (OAuth mix-up, src/fhir/smart-backend-auth.ts `assertPinnedTokenEndpoint`). A new base URL
 * clears it in the same statement (it belongs to the previous server) until the new server's is
 * pinned. Endpoints stored before keep NULL (not pinned: discovery trusted, as before) until their
 * capabilities are read again (`POST /api/endpoints/:id/capabilities`) or an admin changes them.
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html
 */
export const migration040: Migration = {
  version: 40,
  name: 'endpoint-token-endpoint',
  sql: `
ALTER TABLE endpoints ADD COLUMN token_endpoint text;
`,
};
