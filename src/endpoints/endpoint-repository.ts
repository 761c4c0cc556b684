import type { Queryable } from '../db/database';

export interface EndpointRow {
  readonly id: string;
  readonly name: string;
  readonly baseUrl: string;
  readonly authType: 'none' | 'bearer' | 'smart-backend';
  readonly clientId: string | null;
  readonly scope: string | null;
  readonly sealedSecret: string | null;
  readonly maxRequestsPerSecond: number;
  readonly maxConcurrency: number;
  readonly allowInsecureHttp: boolean;
  /** Follow `next` links naming another origin on this endpoint's origin (an EHR behind a proxy publishing its internal address). */
  readonly rebaseNextLinks: boolean;
  /** The `sub` of the tokens this EHR uses to call the service (`ehr` role), when bound. */
  readonly inboundSubject: string | null;
  /**
   * `smart-backend`: the token endpoint pinned for it (what discovery named when an admin registered or
   * changed it); null while not pinned. See `SmartBackendAuthConfig.pinnedTokenEndpoint`.
   */
  readonly tokenEndpoint: string | null;
  readonly capabilities: unknown;
  readonly capabilitiesFetchedAt: Date | null;
  readonly capabilitiesError: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

const COLUMNS = `id, name, base_url, auth_type, client_id, scope, sealed_secret, max_requests_per_second,
  max_concurrency, allow_insecure_http, rebase_next_links, inbound_subject, token_endpoint, capabilities, capabilities_fetched_at, capabilities_error, created_at, updated_at`;

interface Row {
  id: string;
  name: string;
  base_url: string;
  auth_type: EndpointRow['authType'];
  client_id: string | null;
  scope: string | null;
  sealed_secret: string | null;
  max_requests_per_second: number;
  max_concurrency: number;
  allow_insecure_http: boolean;
  rebase_next_links: boolean;
  inbound_subject: string | null;
  token_endpoint: string | null;
  capabilities: unknown;
  capabilities_fetched_at: Date | null;
  capabilities_error: string | null;
  created_at: Date;
  updated_at: Date;
}

function toEndpoint(r: Row): EndpointRow {
  return {
    id: r.id,
    name: r.name,
    baseUrl: r.base_url,
    authType: r.auth_type,
    clientId: r.client_id,
    scope: r.scope,
    sealedSecret: r.sealed_secret,
    maxRequestsPerSecond: r.max_requests_per_second,
    maxConcurrency: r.max_concurrency,
    allowInsecureHttp: r.allow_insecure_http,
    rebaseNextLinks: r.rebase_next_links,
    inboundSubject: r.inbound_subject,
    tokenEndpoint: r.token_endpoint,
    capabilities: r.capabilities,
    capabilitiesFetchedAt: r.capabilities_fetched_at,
    capabilitiesError: r.capabilities_error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export type EndpointWrite = Omit<EndpointRow, 'tokenEndpoint' | 'capabilities' | 'capabilitiesFetchedAt' | 'capabilitiesError' | 'createdAt' | 'updatedAt'>;

export async function insertEndpoint(db: Queryable, e: EndpointWrite): Promise<void> {
  await db.query(
    `INSERT INTO endpoints (id, name, base_url, auth_type, client_id, scope, sealed_secret, max_requests_per_second,
       max_concurrency, allow_insecure_http, inbound_subject, rebase_next_links) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [e.id, e.name, e.baseUrl, e.authType, e.clientId, e.scope, e.sealedSecret, e.maxRequestsPerSecond, e.maxConcurrency, e.allowInsecureHttp, e.inboundSubject, e.rebaseNextLinks],
  );
}

/**
 * Records that the endpoint's current `inbound_subject` is no longer bound to it (when it is about to
 * change to `next`, or the endpoint is deleted): that EHR client then opens no case
 * (`http/case-access.ts`, migration 028).
 */
async function retireInboundSubject(db: Queryable, endpointId: string, next: string | null): Promise<void> {
  await db.query(
    `INSERT INTO retired_inbound_subjects (subject, endpoint_id)
     SELECT inbound_subject, id FROM endpoints
     WHERE id = $1 AND deleted_at IS NULL AND inbound_subject IS NOT NULL AND inbound_subject IS DISTINCT FROM $2
     ON CONFLICT (subject) DO UPDATE SET endpoint_id = EXCLUDED.endpoint_id, retired_at = now()`,
    [endpointId, next],
  );
}

/**
 * Writes a registration change. A new `base_url` drops, in the same statement, the capabilities read
 * from the previous server (and when, and its error) and the token endpoint pinned for it: what
 * another server supports (resources, `$everything`, conditional create, its declared
 * `implementation.url`, its SMART token endpoint) says nothing about this one, so until its own
 * `/metadata` and discovery are read they are unknown (`null`), never stale.
 * @see https://hl7.org/fhir/R4/capabilitystatement.html
 */
export async function updateEndpoint(db: Queryable, e: EndpointWrite): Promise<void> {
  // Retired first: should the update fail, the subject is still bound live (a live binding wins).
  await retireInboundSubject(db, e.id, e.inboundSubject);
  await db.query(
    `UPDATE endpoints SET name = $2, base_url = $3, auth_type = $4, client_id = $5, scope = $6, sealed_secret = $7,
       max_requests_per_second = $8, max_concurrency = $9, allow_insecure_http = $10, inbound_subject = $11, rebase_next_links = $12, updated_at = now(),
       capabilities = CASE WHEN base_url IS DISTINCT FROM $3 THEN NULL ELSE capabilities END,
       capabilities_fetched_at = CASE WHEN base_url IS DISTINCT FROM $3 THEN NULL ELSE capabilities_fetched_at END,
       capabilities_error = CASE WHEN base_url IS DISTINCT FROM $3 THEN NULL ELSE capabilities_error END,
       token_endpoint = CASE WHEN base_url IS DISTINCT FROM $3 THEN NULL ELSE token_endpoint END
     WHERE id = $1 AND deleted_at IS NULL`,
    [e.id, e.name, e.baseUrl, e.authType, e.clientId, e.scope, e.sealedSecret, e.maxRequestsPerSecond, e.maxConcurrency, e.allowInsecureHttp, e.inboundSubject, e.rebaseNextLinks],
  );
}

/**
 * Pins the endpoint's SMART token endpoint (null: none pinned). A change moves `updated_at`, so every
 * process rebuilds its client for the endpoint with the new pin (`EndpointClients.forEndpoint`).
 */
export async function pinTokenEndpoint(db: Queryable, id: string, tokenEndpoint: string | null): Promise<void> {
  await db.query('UPDATE endpoints SET token_endpoint = $2, updated_at = now() WHERE id = $1 AND token_endpoint IS DISTINCT FROM $2', [id, tokenEndpoint]);
}

export async function findEndpoint(db: Queryable, id: string): Promise<EndpointRow | undefined> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM endpoints WHERE id = $1 AND deleted_at IS NULL`, [id]);
  return rows[0] ? toEndpoint(rows[0]) : undefined;
}

export async function listEndpoints(db: Queryable): Promise<EndpointRow[]> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM endpoints WHERE deleted_at IS NULL ORDER BY created_at, id`);
  return rows.map(toEndpoint);
}

/** Soft delete: sources and raw data that came from the endpoint keep their history. */
export async function deleteEndpoint(db: Queryable, id: string): Promise<boolean> {
  await retireInboundSubject(db, id, null);
  const result = await db.query(
    'UPDATE endpoints SET deleted_at = now(), sealed_secret = NULL WHERE id = $1 AND deleted_at IS NULL',
    [id],
  );
  return result.rowCount === 1;
}

export async function saveCapabilities(
  db: Queryable,
  id: string,
  result: { capabilities: unknown; error: null } | { capabilities: null; error: string },
): Promise<void> {
  if (result.error === null) {
    await db.query(
      'UPDATE endpoints SET capabilities = $2, capabilities_fetched_at = now(), capabilities_error = NULL WHERE id = $1',
      [id, JSON.stringify(result.capabilities)],
    );
  } else {
    await db.query('UPDATE endpoints SET capabilities_error = $2 WHERE id = $1', [id, result.error]);
  }
}

/**
 * Sets an endpoint's capabilities, their error and when they were read, all three as given: a
 * statement read whose server is refused (its FHIR version) keeps both, and a refused change puts
 * back what the endpoint had.
 */
export async function setCapabilitiesState(
  db: Queryable,
  id: string,
  state: { capabilities: unknown; error: string | null; fetchedAt: Date | null },
): Promise<void> {
  await db.query('UPDATE endpoints SET capabilities = $2, capabilities_error = $3, capabilities_fetched_at = $4 WHERE id = $1', [
    id,
    state.capabilities === null ? null : JSON.stringify(state.capabilities),
    state.error,
    state.fetchedAt,
  ]);
}
