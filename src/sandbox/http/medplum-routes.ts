/**
 * Every FHIR interaction the sandbox does not handle itself goes to Medplum's `FhirRouter`: read,
 * vread, history, create (with `If-None-Exist`), update (with `If-Match`), conditional update,
 * patch, delete. This adapter checks SMART scopes for the interaction, turns the HTTP request into a
 * `FhirRequest` and Medplum's `[outcome, resource]` back into an HTTP response.
 *
 * @see https://hl7.org/fhir/R4/http.html
 */
import { getStatus, isOk } from '@medplum/core';
import type { FhirRequest, HttpMethod, RestInteraction } from '@medplum/fhir-router';
import type { Resource } from '@medplum/fhirtypes';
import { insufficientScope, type AccessPolicy } from '../smart/bearer-auth';
import type { Permission } from '../smart/scopes';
import type { RouteContext } from './route-context';
import { headerValue, type SandboxRequest } from './sandbox-request';
import { fhirJsonResponse, outcomeResponse, simpleOutcome, type SandboxResponse } from './sandbox-response';
import { versionHeaders } from './version-headers';

const PERMISSIONS: Partial<Record<RestInteraction, Permission>> = {
  read: 'r',
  vread: 'r',
  'history-instance': 'r',
  'history-type': 'r',
  'search-type': 's',
  create: 'c',
  update: 'u',
  patch: 'u',
  delete: 'd',
};

/** The SMART permission a request needs, per Medplum's route table; undefined if the route is not offered. */
export function requiredPermission(ctx: RouteContext, method: string, relativeUrl: string): { resourceType: string; permission: Permission } | undefined {
  const route = ctx.router.find(method as HttpMethod, relativeUrl);
  const interaction = route?.data?.interaction;
  const permission = interaction ? PERMISSIONS[interaction] : undefined;
  const resourceType = route?.params.resourceType;
  return permission && resourceType ? { resourceType, permission } : undefined;
}

export async function handleWithMedplum(ctx: RouteContext, req: SandboxRequest, policy: AccessPolicy): Promise<SandboxResponse> {
  const relativeUrl = (req.path ?? '/').slice(1) + req.url.search;
  const required = requiredPermission(ctx, req.method, relativeUrl);
  if (!required) {
    return outcomeResponse(404, simpleOutcome('error', 'not-supported', `${req.method} ${req.path} is not supported by this server`));
  }
  if (!policy.allows(required.resourceType, required.permission)) {
    return insufficientScope(required.resourceType, required.permission);
  }
  let body: unknown;
  if (req.body.length > 0) {
    try {
      body = JSON.parse(req.body.toString('utf8'));
    } catch {
      return outcomeResponse(400, simpleOutcome('error', 'structure', 'Request body is not valid JSON'));
    }
  }
  const fhirRequest: FhirRequest = {
    method: req.method as HttpMethod,
    url: relativeUrl,
    pathname: '',
    body,
    params: {},
    query: {},
    headers: req.headers,
    config: { transactions: false },
  };
  const existedBefore = req.method === 'PUT' && required.permission === 'u' && existingTarget(ctx, req.path ?? '');
  const [outcome, resource] = await ctx.router.handleRequest(fhirRequest, ctx.repo);
  // Medplum answers every update with 200; an update that creates answers 201 (https://hl7.org/fhir/R4/http.html#update).
  const status = req.method === 'PUT' && existedBefore === false && getStatus(outcome) === 200 ? 201 : getStatus(outcome);
  if (!isOk(outcome) || !resource) {
    return outcomeResponse(status, outcome);
  }
  const headers = resource.meta ? versionHeaders(resource) : {};
  if (status === 201) {
    headers.location = `${ctx.baseUrl}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`;
  }
  return preferredBody(ctx, req, status, resource, outcome, headers);
}

/** For `PUT /Type/id`: whether the resource exists (undefined for conditional updates). */
function existingTarget(ctx: RouteContext, path: string): boolean | undefined {
  const [type, id, extra] = path.split('/').filter(Boolean);
  return id && extra === undefined ? ctx.repo.getStored(type, decodeURIComponent(id)) !== undefined : undefined;
}

/** Honours `Prefer: return=minimal | representation | OperationOutcome` (https://hl7.org/fhir/R4/http.html#ops). */
function preferredBody(
  ctx: RouteContext,
  req: SandboxRequest,
  status: number,
  resource: Resource,
  outcome: Resource,
  headers: Record<string, string>
): SandboxResponse {
  const prefer = headerValue(req.headers, 'prefer') ?? '';
  if (/return\s*=\s*minimal/i.test(prefer)) {
    return { status, headers, body: '' };
  }
  if (/return\s*=\s*OperationOutcome/i.test(prefer)) {
    return fhirJsonResponse(status, JSON.stringify(outcome), headers);
  }
  return fhirJsonResponse(status, ctx.wire.toJson(resource), headers);
}
