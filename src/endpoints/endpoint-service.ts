import { randomUUID } from 'node:crypto';
import type { JWK } from 'jose';
import type { Database } from '../db/database';
import { assertAllowedEndpointUrl, FhirNetworkError, UrlRefusedError, type CircuitState } from '../fhir';
import type { EndpointAuth, EndpointConnection } from '../fhir/endpoint';
import { assertPinnedTokenEndpoint } from '../fhir/smart-backend-auth';
import { conflict, fieldProblem, HttpProblem, notFound, urlCheckUnavailable } from '../http/problem';
import { errorFields, logger } from '../log';
import type { SecretBox } from '../security/secret-box';
import { summarizeCapabilities, type EndpointCapabilities } from './capabilities';
import type { EndpointClients } from './endpoint-clients';
import { fhirVersionMessage, fhirVersionProblem, unsupportedFhirVersion } from './fhir-version';
import {
  deleteEndpoint,
  findEndpoint,
  insertEndpoint,
  listEndpoints,
  pinTokenEndpoint,
  saveCapabilities,
  setCapabilitiesState,
  updateEndpoint,
  type EndpointRow,
  type EndpointWrite,
} from './endpoint-repository';
import type { CreateEndpointBody, EndpointAuthInput, UpdateEndpointBody } from './endpoint-schema';

export interface EndpointServiceDeps {
  readonly db: Database;
  readonly secrets: SecretBox;
  readonly clients: EndpointClients;
}

/** The API view of an endpoint: never a secret. */
export interface EndpointView {
  readonly id: string;
  readonly name: string;
  readonly baseUrl: string;
  /**
   * `keyId`: the signing key's kid; `nextKeyId`: a key published beside it, not signing until promoted (rotation).
   * `tokenEndpoint` (smart-backend): where our client assertions go and tokens come from, pinned when
   * an admin registered or changed the endpoint; null while not pinned.
   */
  readonly auth: {
    type: EndpointRow['authType'];
    clientId?: string;
    scope?: string;
    keyId?: string;
    nextKeyId?: string;
    tokenEndpoint?: string | null;
    secretStored: boolean;
    secretUnreadable?: true;
  };
  readonly maxRequestsPerSecond: number;
  readonly maxConcurrency: number;
  readonly allowInsecureHttp: boolean;
  readonly rebaseNextLinks: boolean;
  /** The `sub` of the tokens this EHR calls the service with (`ehr` role), when bound. */
  readonly inboundSubject: string | null;
  readonly capabilities: EndpointCapabilities | null;
  readonly capabilitiesFetchedAt: string | null;
  readonly capabilitiesError: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** An endpoint's sealed credentials, opened. */
export interface SealedSecret {
  token?: string;
  privateKeyJwk?: JWK;
  /** Published in our JWKS, not used to sign until promoted (key rotation). */
  nextPrivateKeyJwk?: JWK;
}

/** The endpoint's sealed credentials, opened (none: an empty object). */
export function openSealedSecret(row: EndpointRow, secrets: SecretBox): SealedSecret {
  return row.sealedSecret ? (JSON.parse(secrets.open(row.sealedSecret, row.id)) as SealedSecret) : {};
}

/**
 * The endpoint's sealed credentials, opened; undefined (with a warning) when they cannot be: sealed
 * under another `SECRETS_KEY`, or damaged. For the readers that must go on without them (the endpoint
 * list, our JWKS) rather than fail for every endpoint.
 */
export function openSealedSecretIfReadable(row: EndpointRow, secrets: SecretBox): SealedSecret | undefined {
  try {
    return openSealedSecret(row, secrets);
  } catch (err) {
    logger.warn('endpoint secret cannot be opened with this SECRETS_KEY: register its auth again', { endpointId: row.id, ...errorFields(err) });
    return undefined;
  }
}

/**
 * The answer to an admin action that needs the endpoint's sealed secret when this `SECRETS_KEY`
 * cannot open it (sealed under another key, or damaged): 409 naming `auth`, to register again.
 * Nothing was changed. Not a 500: the service is fine, the stored credentials are not usable.
 */
export function unreadableSecretProblem(id: string, what = 'its sealed secret cannot be opened with this SECRETS_KEY (sealed under another key, or damaged)'): HttpProblem {
  const detail = `${what}: register its auth again (PATCH /api/endpoints/${id} with auth)`;
  return new HttpProblem(409, 'Conflict', `auth: ${detail}.`, [{ field: 'auth', pointer: '#/auth', detail }], { field: 'auth' });
}

/**
 * The endpoint's sealed credentials, opened, for an admin action that cannot go on without them.
 * @throws HttpProblem 409 naming `auth` when they cannot be opened ({@link unreadableSecretProblem})
 */
export function openSealedSecretOrRefuse(row: EndpointRow, secrets: SecretBox): SealedSecret {
  const opened = openSealedSecretIfReadable(row, secrets);
  if (opened === undefined) throw unreadableSecretProblem(row.id);
  return opened;
}

function view(row: EndpointRow, secrets: SecretBox): EndpointView {
  // Every sealed secret, bearer tokens too: one this key cannot open is flagged, whatever the auth type.
  const opened = row.sealedSecret === null ? {} : openSealedSecretIfReadable(row, secrets);
  const sealed = opened ?? {};
  const keyId = sealed.privateKeyJwk?.kid;
  const nextKeyId = sealed.nextPrivateKeyJwk?.kid;
  return {
    id: row.id,
    name: row.name,
    baseUrl: row.baseUrl,
    auth: {
      type: row.authType,
      ...(row.clientId ? { clientId: row.clientId } : {}),
      ...(row.scope ? { scope: row.scope } : {}),
      ...(keyId ? { keyId } : {}),
      ...(nextKeyId ? { nextKeyId } : {}),
      ...(row.authType === 'smart-backend' ? { tokenEndpoint: row.tokenEndpoint } : {}),
      secretStored: row.sealedSecret !== null,
      // Sealed under another SECRETS_KEY, or damaged: nothing can be sent to this endpoint until its auth is registered again.
      ...(opened === undefined ? { secretUnreadable: true } : {}),
    },
    maxRequestsPerSecond: row.maxRequestsPerSecond,
    maxConcurrency: row.maxConcurrency,
    allowInsecureHttp: row.allowInsecureHttp,
    rebaseNextLinks: row.rebaseNextLinks,
    inboundSubject: row.inboundSubject,
    capabilities: (row.capabilities as EndpointCapabilities | null) ?? null,
    capabilitiesFetchedAt: row.capabilitiesFetchedAt?.toISOString() ?? null,
    capabilitiesError: row.capabilitiesError,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

function sealAuth(auth: EndpointAuthInput, id: string, secrets: SecretBox): Pick<EndpointWrite, 'authType' | 'clientId' | 'scope' | 'sealedSecret'> {
  switch (auth.type) {
    case 'none':
      return { authType: 'none', clientId: null, scope: null, sealedSecret: null };
    case 'bearer':
      return { authType: 'bearer', clientId: null, scope: null, sealedSecret: secrets.seal(JSON.stringify({ token: auth.token }), id) };
    case 'smart-backend':
      return {
        authType: 'smart-backend',
        clientId: auth.clientId,
        scope: auth.scope ?? null,
        sealedSecret: secrets.seal(
          JSON.stringify({ privateKeyJwk: auth.privateKeyJwk, ...(auth.nextPrivateKeyJwk ? { nextPrivateKeyJwk: auth.nextPrivateKeyJwk } : {}) } satisfies SealedSecret),
          id,
        ),
      };
  }
}

/** The decrypted connection settings the outbound client needs. Only workers and delivery call this. */
export function toConnection(row: EndpointRow, secrets: SecretBox): EndpointConnection {
  const secret = openSealedSecret(row, secrets);
  let auth: EndpointAuth;
  if (row.authType === 'bearer') auth = { type: 'bearer', token: secret.token ?? '' };
  else if (row.authType === 'smart-backend') {
    auth = {
      type: 'smart-backend',
      clientId: row.clientId ?? '',
      privateKeyJwk: secret.privateKeyJwk ?? ({} as JWK),
      ...(row.scope ? { scope: row.scope } : {}),
      ...(row.tokenEndpoint !== null ? { pinnedTokenEndpoint: row.tokenEndpoint } : {}),
    };
  } else auth = { type: 'none' };
  const declaredBaseUrl = declaredBaseOf(row);
  return {
    id: row.id,
    baseUrl: row.baseUrl,
    auth,
    maxRequestsPerSecond: row.maxRequestsPerSecond,
    maxConcurrency: row.maxConcurrency,
    allowInsecureHttp: row.allowInsecureHttp,
    rebaseNextLinks: row.rebaseNextLinks,
    ...(declaredBaseUrl !== undefined ? { declaredBaseUrl } : {}),
  };
}

/**
 * The base URL the server declares for itself (capabilities read at registration, see
 * `EndpointCapabilities.implementationUrl`), for an endpoint that rebases its `next` links by it.
 */
export function declaredBaseOf(row: EndpointRow): string | undefined {
  return row.rebaseNextLinks ? (row.capabilities as EndpointCapabilities | null)?.implementationUrl : undefined;
}

/**
 * The base URL against the outbound policy, before anything is kept: refused → 400 naming `baseUrl`;
 * its host name not looked up for a temporary DNS failure (EAI_AGAIN, a timeout: url-guard.ts's
 * retryable FhirNetworkError) → 503 with `Retry-After` naming `baseUrl`, not a 500.
 */
async function checkBaseUrl(deps: Pick<EndpointServiceDeps, 'clients'>, baseUrl: string, allowInsecureHttp: boolean): Promise<void> {
  try {
    await assertAllowedEndpointUrl(baseUrl, { ...deps.clients.urlGuard(allowInsecureHttp), allowInsecureHttp });
  } catch (err) {
    if (err instanceof UrlRefusedError) {
      throw new HttpProblem(400, 'Invalid request', `baseUrl: ${err.reason}`, [
        { field: 'baseUrl', pointer: '#/baseUrl', detail: `refused: ${err.reason}` },
      ]);
    }
    if (err instanceof FhirNetworkError && err.retryable) {
      logger.warn('endpoint base URL not checked: temporary DNS failure', { ...errorFields(err), code: err.code });
      throw urlCheckUnavailable('baseUrl');
    }
    throw err;
  }
}

/** One endpoint per inbound subject (a unique index): another endpoint has it → 409 naming the field. */
function inboundSubjectTaken(err: unknown): never {
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown };
  if (e.code === '23505' && `${String(e.constraint ?? '')} ${String(e.message ?? '')}`.includes('inbound_subject')) {
    throw new HttpProblem(409, 'Conflict', 'inboundSubject is already bound to another endpoint.', [
      { field: 'inboundSubject', pointer: '#/inboundSubject', detail: 'already bound to another endpoint' },
    ]);
  }
  throw err;
}

/** How {@link requireEndpoint} answers when no endpoint has the id. */
export interface RequireEndpointOptions {
  /**
   * The member of a request's body that named the endpoint (`endpointId` of `POST …/sources`,
   * `…/recipients`): the 404's `errors[]` names it as any other field problem does (RFC 9457 §3
   * extension member), so a client knows which member of what it sent found nothing. Without it, the
   * plain 404 `Endpoint <id> was not found.` (the id came from the path, or from stored data).
   */
  readonly bodyField?: string;
}

/**
 * The registered endpoint with this id. The status of a missing one stays 404 either way (the public
 * contract of the routes); only its wording follows {@link RequireEndpointOptions.bodyField}.
 * @throws HttpProblem 404, naming `options.bodyField` when given
 * @see https://www.rfc-editor.org/rfc/rfc9457#section-3
 */
export async function requireEndpoint(db: Database, id: string, options: RequireEndpointOptions = {}): Promise<EndpointRow> {
  const row = await findEndpoint(db, id);
  if (row) return row;
  if (options.bodyField === undefined) throw notFound(`Endpoint ${id}`);
  const problem = fieldProblem([options.bodyField], `no endpoint is registered with the id ${id}: register it first (POST /api/endpoints), or use the id of one that is`);
  throw new HttpProblem(404, 'Not Found', `${problem.field}: ${problem.detail}.`, [problem]);
}

/**
 * What a capabilities read does with a SMART endpoint's token endpoint: `pin` what discovery names now
 * (an admin registered the endpoint, or changed its base URL or auth: the admin's say-so), or `check`
 * that it is still the pinned one (a refresh; one not pinned yet is pinned).
 */
type TokenEndpointPinning = 'pin' | 'check';

/**
 * A `smart-backend` endpoint's token endpoint, as discovery names it now, pinned or checked against
 * the pin ({@link TokenEndpointPinning}); cleared for another auth type. So the admin's action that
 * points credentials at a server also fixes where its tokens come from, and the endpoint view shows
 * it; a server whose discovery later names another token endpoint gets no token minted there (OAuth
 * mix-up, see `assertPinnedTokenEndpoint`).
 * @throws SmartAuthError when discovery fails, or names another token endpoint than the pinned one (`check`)
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.4
 */
async function settleTokenEndpoint(deps: EndpointServiceDeps, row: EndpointRow, pinning: TokenEndpointPinning): Promise<void> {
  if (row.authType !== 'smart-backend') {
    if (row.tokenEndpoint !== null) await pinTokenEndpoint(deps.db, row.id, null);
    return;
  }
  const discovered = await deps.clients.discoverTokenEndpoint(row);
  if (pinning === 'check' && row.tokenEndpoint !== null) {
    assertPinnedTokenEndpoint(discovered, row.tokenEndpoint);
    return;
  }
  await pinTokenEndpoint(deps.db, row.id, discovered);
  if (discovered !== row.tokenEndpoint) logger.info('smart token endpoint pinned', { endpointId: row.id });
}

/**
 * Reads `/metadata` and keeps what the server supports; a failure to read it is recorded, not thrown.
 * A SMART endpoint's token endpoint is pinned or checked first ({@link settleTokenEndpoint}); its
 * failure is recorded the same way, and then nothing else is asked.
 * A server declaring another FHIR version than R4 has its capabilities kept (so the version shows)
 * with `capabilitiesError` naming it, which makes every request to it refused (fhir-version.ts).
 * @returns the FHIR version the server declares when it is not R4, else undefined
 */
async function readCapabilities(deps: EndpointServiceDeps, id: string, pinning: TokenEndpointPinning): Promise<string | undefined> {
  const row = await requireEndpoint(deps.db, id);
  try {
    await settleTokenEndpoint(deps, row, pinning);
    const statement = await deps.clients.withCurrentClient(() => requireEndpoint(deps.db, id), deps.secrets, (client) => client.capabilities(), 'capabilities');
    const capabilities = summarizeCapabilities(statement);
    const declared = unsupportedFhirVersion(capabilities);
    if (declared === undefined) {
      await saveCapabilities(deps.db, id, { capabilities, error: null });
      return undefined;
    }
    logger.warn('endpoint declares another FHIR version than R4: its requests are refused', { endpointId: id, fhirVersion: declared });
    await setCapabilitiesState(deps.db, id, { capabilities, error: `UnsupportedFhirVersionError: ${fhirVersionMessage(declared)}`, fetchedAt: new Date() });
    return declared;
  } catch (err) {
    const fields = errorFields(err);
    logger.warn('capabilities not read', { endpointId: id, ...fields });
    await saveCapabilities(deps.db, id, { capabilities: null, error: `${fields.errorName}: ${fields.errorMessage}` });
    return undefined;
  }
}

/**
 * `POST /api/endpoints/:id/capabilities`: reads `/metadata` again now. A server that cannot be read is
 * recorded (`capabilitiesError`), as before; one declaring another FHIR version than R4 is recorded
 * too and answered 422 naming `fhirVersion` and the version.
 * @throws HttpProblem 422 when the server declares another FHIR version than R4
 */
export async function refreshCapabilities(deps: EndpointServiceDeps, id: string): Promise<EndpointView> {
  const declared = await readCapabilities(deps, id, 'check');
  if (declared !== undefined) {
    throw fhirVersionProblem(declared, 'Recorded as the endpoint\'s capabilitiesError: its pulls and deliveries are refused until its capabilities are read again from an R4 server.');
  }
  return view(await requireEndpoint(deps.db, id), deps.secrets);
}

export async function registerEndpoint(deps: EndpointServiceDeps, body: CreateEndpointBody): Promise<EndpointView> {
  await checkBaseUrl(deps, body.baseUrl, body.allowInsecureHttp);
  const id = randomUUID();
  await insertEndpoint(deps.db, {
    id,
    name: body.name,
    baseUrl: body.baseUrl,
    ...sealAuth(body.auth, id, deps.secrets),
    maxRequestsPerSecond: body.maxRequestsPerSecond,
    maxConcurrency: body.maxConcurrency,
    allowInsecureHttp: body.allowInsecureHttp,
    rebaseNextLinks: body.rebaseNextLinks,
    inboundSubject: body.inboundSubject ?? null,
  }).catch(inboundSubjectTaken);
  const declared = await readCapabilities(deps, id, 'pin');
  if (declared !== undefined) {
    // Not an R4 server: not kept (nothing could be pulled from it or delivered to it).
    await deleteEndpoint(deps.db, id);
    await deps.clients.drop(id);
    logger.info('endpoint not registered: another FHIR version than R4', { endpointId: id, fhirVersion: declared });
    throw fhirVersionProblem(declared, 'The endpoint was not registered.');
  }
  logger.info('endpoint registered', { endpointId: id });
  return view(await requireEndpoint(deps.db, id), deps.secrets);
}

/**
 * A stored bearer token is a credential for the server it was issued for: anyone it is presented to
 * can use it (RFC 6750 §5.1, https://www.rfc-editor.org/rfc/rfc6750#section-5.1). Moving a bearer
 * endpoint to another origin therefore needs its credentials sent again in the same change, or the
 * token (write-only: the admin cannot even see it) would go to the new host at once (`/metadata`)
 * and with every later request. A move within the origin (another path) keeps it.
 *
 * A `smart-backend` endpoint may move without `auth`: its private key never leaves us (the new server
 * gets only assertions signed for its own token endpoint), the move pins the new server's token
 * endpoint (shown as `auth.tokenEndpoint` in the answer) and no token cached for the old server is
 * sent to the new one (`tokenCacheIdentity` in smart-backend-auth.ts).
 * @throws HttpProblem 400 naming `auth`
 */
function refuseBearerTokenMove(row: EndpointRow, body: UpdateEndpointBody): void {
  if (row.authType !== 'bearer' || body.baseUrl === undefined || body.auth !== undefined) return;
  if (new URL(body.baseUrl).origin === new URL(row.baseUrl).origin) return;
  const detail = 'the stored bearer token is not sent to another origin: send the credentials again (auth) with the new baseUrl';
  throw new HttpProblem(400, 'Invalid request', `auth: ${detail}.`, [{ field: 'auth', pointer: '#/auth', detail }]);
}

export async function changeEndpoint(deps: EndpointServiceDeps, id: string, body: UpdateEndpointBody): Promise<EndpointView> {
  const row = await requireEndpoint(deps.db, id);
  const allowInsecureHttp = body.allowInsecureHttp ?? row.allowInsecureHttp;
  const baseUrl = body.baseUrl ?? row.baseUrl;
  if (body.baseUrl !== undefined || body.allowInsecureHttp !== undefined) await checkBaseUrl(deps, baseUrl, allowInsecureHttp);
  refuseBearerTokenMove(row, body);
  const auth = body.auth
    ? sealAuth(body.auth, id, deps.secrets)
    : { authType: row.authType, clientId: row.clientId, scope: row.scope, sealedSecret: row.sealedSecret };
  await updateEndpoint(deps.db, {
    id,
    name: body.name ?? row.name,
    baseUrl,
    ...auth,
    maxRequestsPerSecond: body.maxRequestsPerSecond ?? row.maxRequestsPerSecond,
    maxConcurrency: body.maxConcurrency ?? row.maxConcurrency,
    allowInsecureHttp,
    rebaseNextLinks: body.rebaseNextLinks ?? row.rebaseNextLinks,
    inboundSubject: body.inboundSubject === undefined ? row.inboundSubject : body.inboundSubject,
  }).catch(inboundSubjectTaken);
  if (body.baseUrl !== undefined || body.auth !== undefined) {
    const declared = await readCapabilities(deps, id, 'pin');
    if (declared !== undefined) {
      // The change would point the endpoint at a server of another FHIR version: undone, as a 4xx says.
      await restoreEndpoint(deps, row);
      throw fhirVersionProblem(declared, 'The change was not made: the endpoint keeps its previous settings and capabilities.');
    }
  }
  return view(await requireEndpoint(deps.db, id), deps.secrets);
}

/** Puts an endpoint's registration and capabilities back as `row` had them (a refused change). */
async function restoreEndpoint(deps: EndpointServiceDeps, row: EndpointRow): Promise<void> {
  await updateEndpoint(deps.db, {
    id: row.id,
    name: row.name,
    baseUrl: row.baseUrl,
    authType: row.authType,
    clientId: row.clientId,
    scope: row.scope,
    sealedSecret: row.sealedSecret,
    maxRequestsPerSecond: row.maxRequestsPerSecond,
    maxConcurrency: row.maxConcurrency,
    allowInsecureHttp: row.allowInsecureHttp,
    rebaseNextLinks: row.rebaseNextLinks,
    inboundSubject: row.inboundSubject,
  });
  await setCapabilitiesState(deps.db, row.id, { capabilities: row.capabilities ?? null, error: row.capabilitiesError, fetchedAt: row.capabilitiesFetchedAt });
  await pinTokenEndpoint(deps.db, row.id, row.tokenEndpoint);
}

/**
 * Key rotation, second step: the next key (published in our JWKS since it was registered, so the
 * EHR can know it) becomes the signing key, and the key it replaces is no longer published. The
 * clients are rebuilt with it (the registration's `updated_at` changes) and the CapabilityStatement
 * is read again, which also fetches a token: `capabilitiesError` says at once if the EHR does not
 * accept the new key (then register the old one again with PATCH, the key material never left us).
 * @throws HttpProblem 409 when the endpoint has no next key, or its sealed keys cannot be opened with this `SECRETS_KEY` (naming `auth`)
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#registering-a-smart-backend-service-communicating-public-keys
 */
export async function promoteNextKey(deps: EndpointServiceDeps, id: string): Promise<EndpointView> {
  const row = await requireEndpoint(deps.db, id);
  const next = row.authType === 'smart-backend' ? openSealedSecretOrRefuse(row, deps.secrets).nextPrivateKeyJwk : undefined;
  if (!next) {
    throw conflict(
      row.authType === 'smart-backend'
        ? 'This endpoint has no next key to promote: register one first (PATCH auth with nextPrivateKeyJwk), let the EHR learn it from our JWKS, then promote it.'
        : `This endpoint does not use SMART Backend Services (auth ${row.authType}): it has no keys.`,
      { field: 'auth.nextPrivateKeyJwk' },
    );
  }
  // The auth again with the next key as the signing one and no next key: a change of auth, so the
  // capabilities are read again with it.
  const auth = { type: 'smart-backend', clientId: row.clientId ?? '', privateKeyJwk: next, ...(row.scope ? { scope: row.scope } : {}) } as EndpointAuthInput;
  const promoted = await changeEndpoint(deps, id, { auth });
  logger.info('endpoint signing key promoted', { endpointId: id });
  return promoted;
}

export async function getEndpoint(deps: EndpointServiceDeps, id: string): Promise<EndpointView> {
  return view(await requireEndpoint(deps.db, id), deps.secrets);
}

/** Every endpoint, each with its circuit (so a list shows at once which EHR is paused). */
export async function getEndpoints(deps: EndpointServiceDeps): Promise<(EndpointView & { circuit: Omit<EndpointCircuitView, 'endpointId'> })[]> {
  const rows = await listEndpoints(deps.db);
  return Promise.all(
    rows.map(async (row) => {
      const { endpointId: _id, ...circuit } = await circuitView(deps, row.id);
      return { ...view(row, deps.secrets), circuit };
    }),
  );
}

/**
 * An endpoint's circuit breaker, shared by every worker: `closed` (requests flow), `open` (paused
 * after repeated failures until `retryAt`; pull and attachment jobs wait for it) or `half-open` (one
 * probe request decides). `retryAt` is when an open circuit lets a probe through, or when a probe in
 * flight may be replaced.
 */
export interface EndpointCircuitView {
  readonly endpointId: string;
  readonly state: CircuitState;
  /** Consecutive failed requests counted so far. */
  readonly failures: number;
  readonly retryAt: string | null;
}

async function circuitView(deps: Pick<EndpointServiceDeps, 'clients'>, id: string): Promise<EndpointCircuitView> {
  const snapshot = await deps.clients.circuit(id).snapshot();
  return { endpointId: id, state: snapshot.state, failures: snapshot.failures, retryAt: snapshot.retryAt === undefined ? null : new Date(snapshot.retryAt).toISOString() };
}

/** Every endpoint's circuit (for `/metrics`: `sob_endpoint_circuit`). */
export async function endpointCircuits(deps: Pick<EndpointServiceDeps, 'db' | 'clients'>): Promise<EndpointCircuitView[]> {
  return Promise.all((await listEndpoints(deps.db)).map((row) => circuitView(deps, row.id)));
}

export async function getEndpointCircuit(deps: EndpointServiceDeps, id: string): Promise<EndpointCircuitView> {
  await requireEndpoint(deps.db, id);
  return circuitView(deps, id);
}

/**
 * Closes an endpoint's circuit at once, once the people running the EHR say it is fixed: jobs that
 * wait for the pause go on at their next check (within seconds) instead of after the cool-down.
 */
export async function resetEndpointCircuit(deps: EndpointServiceDeps, id: string): Promise<EndpointCircuitView> {
  await requireEndpoint(deps.db, id);
  await deps.clients.circuit(id).reset();
  logger.info('endpoint circuit reset', { endpointId: id });
  return circuitView(deps, id);
}

export async function removeEndpoint(deps: EndpointServiceDeps, id: string): Promise<void> {
  if (!(await deleteEndpoint(deps.db, id))) throw notFound(`Endpoint ${id}`);
  logger.info('endpoint deleted', { endpointId: id });
}
