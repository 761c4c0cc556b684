/**
 * Search (`GET [base]/{type}?…`, `POST [base]/{type}/_search`), `Patient/{id}/$everything` and
 * page fetches by token (`GET [base]?_getpages=…`), all served from search snapshots: the search runs
 * once and every page is a slice of its result, written from cached resource JSON.
 *
 * @see https://hl7.org/fhir/R4/http.html#search
 * @see https://hl7.org/fhir/R4/http.html#paging
 */
import { OperationOutcomeError, badRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { patientEverything } from '../operations/patient-everything';
import { pageLinks } from '../paging/page-links';
import type { NewSnapshot, SearchSnapshot } from '../paging/search-snapshots';
import { undeclaredParameter } from '../search/declared-parameters';
import { resolveIncludes } from '../search/includes';
import { parseNonNegativeInteger, parseSearchQuery } from '../search/search-query';
import { insufficientScope, type AccessPolicy } from '../smart/bearer-auth';
import type { RouteContext } from './route-context';
import { headerValue, type SandboxRequest } from './sandbox-request';
import { fhirJsonResponse, outcomeResponse, simpleOutcome, type SandboxResponse } from './sandbox-response';
import { writeSearchset } from './searchset-writer';

/** `GET [base]/{type}` or `POST [base]/{type}/_search` (form parameters merged with the query). */
export function searchType(ctx: RouteContext, req: SandboxRequest, resourceType: string, policy: AccessPolicy, params: URLSearchParams): SandboxResponse {
  if (!policy.allows(resourceType, 's')) {
    return insufficientScope(resourceType, 's');
  }
  const undeclared = undeclaredParameter(ctx.searchParams, resourceType, params);
  if (undeclared !== undefined) {
    return outcomeResponse(400, simpleOutcome('error', 'not-supported', `Search parameter ${undeclared} is not supported for ${resourceType}`));
  }
  const strict = /handling\s*=\s*strict/i.test(headerValue(req.headers, 'prefer') ?? '');
  const parsed = parseSearchQuery(resourceType, params, { baseUrl: ctx.baseUrl, strict });
  const queryKey = `${resourceType}?${parsed.canonicalQuery}`;
  const snapshot = cachedOrNew(ctx, queryKey, ctx.repo.versionOf(resourceType), () => ({
    queryKey,
    selfPath: parsed.canonicalQuery ? queryKey : resourceType,
    resources: ctx.repo.searchEngine.execute(parsed.searchRequest),
    includes: parsed.includes,
    resourceTypes: [resourceType],
    permission: 's',
    version: ctx.repo.versionOf(resourceType),
  }));
  const count = parsed.totalOnly ? 0 : parsed.count;
  return renderPage(ctx, snapshot, parsed.offset, count);
}

/** `GET [base]/Patient/{id}/$everything?_since=…&_type=…&_count=…` (https://hl7.org/fhir/R4/patient-operation-everything.html). */
export function everything(ctx: RouteContext, patientId: string, policy: AccessPolicy, params: URLSearchParams): SandboxResponse {
  if (!policy.allows('Patient', 'r')) {
    return insufficientScope('Patient', 'r');
  }
  const since = params.get('_since');
  const sinceMs = since ? Date.parse(since) : undefined;
  if (sinceMs !== undefined && !Number.isFinite(sinceMs)) {
    throw new OperationOutcomeError(badRequest(`_since must be an instant: ${since}`, '_since'));
  }
  const typeParam = params.get('_type');
  const types = typeParam ? new Set(typeParam.split(',').map((type) => type.trim()).filter(Boolean)) : undefined;
  const canonical = new URLSearchParams();
  if (since) {
    canonical.set('_since', since);
  }
  if (types) {
    canonical.set('_type', [...types].sort().join(','));
  }
  const selfPath = `Patient/${encodeURIComponent(patientId)}/$everything${canonical.size ? '?' + canonical.toString() : ''}`;
  const queryKey = `${selfPath}#${policy.fingerprint}`;
  const version = ctx.repo.versionOf();
  let snapshot = ctx.snapshots.byQueryIfCurrent(queryKey, version);
  if (!snapshot) {
    const canRead = (type: string): boolean => policy.allows(type, 'r');
    const resources = patientEverything(ctx.repo, ctx.references, patientId, { sinceMs, types, canRead });
    if (!resources) {
      return outcomeResponse(404, simpleOutcome('error', 'not-found', `Patient/${patientId} not found`));
    }
    snapshot = ctx.snapshots.add({
      queryKey,
      selfPath,
      resources,
      includes: undefined,
      resourceTypes: distinctTypes(resources),
      permission: 'r',
      version,
    });
  }
  return renderPage(ctx, snapshot, parseNonNegativeInteger(params, '_offset') ?? 0, parseNonNegativeInteger(params, '_count'));
}

/** `GET [base]?_getpages=<token>&_getpagesoffset=<n>&_count=<c>` (HAPI-style page links). */
export function pageByToken(ctx: RouteContext, policy: AccessPolicy, params: URLSearchParams): SandboxResponse {
  const token = params.get('_getpages') ?? '';
  const snapshot = ctx.snapshots.byTokenIfLive(token);
  if (!snapshot) {
    return outcomeResponse(410, simpleOutcome('error', 'not-found', `Search ${token} does not exist or has expired; run the search again`));
  }
  const denied = snapshot.resourceTypes.find((type) => !policy.allows(type, snapshot.permission));
  if (denied) {
    return insufficientScope(denied, snapshot.permission);
  }
  const offset = parseNonNegativeInteger(params, '_getpagesoffset') ?? parseNonNegativeInteger(params, '_offset') ?? 0;
  return renderPage(ctx, snapshot, offset, parseNonNegativeInteger(params, '_count'));
}

function cachedOrNew(ctx: RouteContext, queryKey: string, version: number, create: () => NewSnapshot): SearchSnapshot {
  return ctx.snapshots.byQueryIfCurrent(queryKey, version) ?? ctx.snapshots.add(create());
}

function renderPage(ctx: RouteContext, snapshot: SearchSnapshot, offset: number, requestedCount: number | undefined): SandboxResponse {
  const count = Math.min(requestedCount ?? ctx.defaultCount, ctx.maxCount);
  const total = snapshot.resources.length;
  const matches = snapshot.resources.slice(offset, offset + count);
  const included = snapshot.includes && matches.length > 0 ? resolveIncludes(matches, snapshot.includes, ctx.repo) : [];
  const body = writeSearchset(ctx.wire, {
    total,
    links: pageLinks(ctx.baseUrl, ctx.paging, snapshot, { offset, count, total }),
    matches,
    included,
    lastUpdated: new Date(ctx.now()).toISOString(),
  });
  return fhirJsonResponse(200, body);
}

function distinctTypes(resources: readonly Resource[]): string[] {
  return [...new Set(resources.map((resource) => resource.resourceType))];
}
