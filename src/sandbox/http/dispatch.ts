/**
 * Routes a request under the FHIR base to its handler.
 *
 * Open (no token): `GET /metadata`, `GET /.well-known/smart-configuration`, `POST /auth/token`,
 * `GET /_sandbox/redirect?to=<url>` (a 302, for redirect-following tests).
 * Protected (bearer token when auth is `smart`): everything else.
 */
import { getStatus, normalizeOperationOutcome } from '@medplum/core';
import { getResourceTypes } from '../fhir-definitions';
import { ALLOW_ALL, authenticate, type AccessPolicy } from '../smart/bearer-auth';
import { smartConfiguration } from '../smart/smart-configuration';
import { handleTokenRequest } from '../smart/token-endpoint';
import { handleBatch } from './batch-route';
import { isFhirJsonBody, readRawBinary, wantsFhirJson, writeRawBinary } from './binary-routes';
import { handleWithMedplum } from './medplum-routes';
import type { RouteContext } from './route-context';
import type { SandboxRequest } from './sandbox-request';
import { fhirJsonResponse, jsonResponse, outcomeResponse, simpleOutcome, type SandboxResponse } from './sandbox-response';
import { everything, pageByToken, searchType } from './search-routes';

let resourceTypes: ReadonlySet<string> | undefined;

export async function dispatch(ctx: RouteContext, req: SandboxRequest): Promise<SandboxResponse> {
  try {
    return await route(ctx, req);
  } catch (err) {
    const outcome = normalizeOperationOutcome(err);
    return outcomeResponse(getStatus(outcome), outcome);
  }
}

async function route(ctx: RouteContext, req: SandboxRequest): Promise<SandboxResponse> {
  const path = req.path;
  if (path === undefined) {
    return notFound(`Not a FHIR endpoint; the base is ${ctx.baseUrl}`);
  }
  if (path === '/metadata' && req.method === 'GET') {
    return fhirJsonResponse(200, ctx.capabilityJson());
  }
  if (path === '/.well-known/smart-configuration' && req.method === 'GET') {
    return ctx.auth === 'smart' ? jsonResponse(200, smartConfiguration(ctx.tokenUrl)) : notFound('This server runs without authorization');
  }
  if (path === '/auth/token') {
    return ctx.auth === 'smart' ? handleTokenRequest(req, ctx.tokenEndpoint) : notFound('This server runs without authorization');
  }
  if (path === '/_sandbox/redirect' && req.method === 'GET') {
    const location = req.query.get('to') ?? ctx.baseUrl;
    return { status: 302, headers: { location, 'content-length': '0' }, body: '' };
  }
  let policy: AccessPolicy = ALLOW_ALL;
  if (ctx.auth === 'smart') {
    const auth = authenticate(req, ctx.tokenEndpoint.tokens);
    if (!auth.ok) {
      return auth.response;
    }
    policy = auth.policy;
  }
  return routeFhir(ctx, req, path, policy);
}

async function routeFhir(ctx: RouteContext, req: SandboxRequest, path: string, policy: AccessPolicy): Promise<SandboxResponse> {
  const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
  const method = req.method;
  if (segments.length === 0) {
    if (method === 'GET' && req.query.has('_getpages')) {
      return pageByToken(ctx, policy, req.query);
    }
    if (method === 'POST') {
      return handleBatch(ctx, req, policy);
    }
    return outcomeResponse(400, simpleOutcome('error', 'not-supported', 'System-level search is not supported; search a resource type'));
  }
  const [resourceType, id, operation] = segments;
  resourceTypes ??= new Set(getResourceTypes());
  if (!resourceTypes.has(resourceType)) {
    return notFound(`Unknown resource type ${resourceType}`);
  }
  if (segments.length === 1 && method === 'GET') {
    return searchType(ctx, req, resourceType, policy, req.query);
  }
  if (segments.length === 2 && id === '_search' && method === 'POST') {
    const params = new URLSearchParams(req.body.toString('utf8'));
    req.query.forEach((value, key) => params.append(key, value));
    return searchType(ctx, req, resourceType, policy, params);
  }
  if (resourceType === 'Patient' && segments.length === 3 && operation === '$everything' && method === 'GET') {
    return everything(ctx, id, policy, req.query);
  }
  if (resourceType === 'Binary') {
    if (segments.length === 2 && method === 'GET' && !wantsFhirJson(req)) {
      return readRawBinary(ctx, id, policy);
    }
    if (segments.length <= 2 && (method === 'POST' || method === 'PUT') && !isFhirJsonBody(req) && (method === 'POST') === (segments.length === 1)) {
      return writeRawBinary(ctx, req, id, policy);
    }
  }
  return handleWithMedplum(ctx, req, policy);
}

function notFound(text: string): SandboxResponse {
  return outcomeResponse(404, simpleOutcome('error', 'not-found', text));
}
