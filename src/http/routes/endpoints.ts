import { z } from 'zod';
import {
  changeEndpoint,
  getEndpoint,
  getEndpointCircuit,
  getEndpoints,
  promoteNextKey,
  refreshCapabilities,
  registerEndpoint,
  removeEndpoint,
  requireEndpoint,
  resetEndpointCircuit,
  type EndpointServiceDeps,
} from '../../endpoints/endpoint-service';
import { CreateEndpointBody, UpdateEndpointBody } from '../../endpoints/endpoint-schema';
import { jwksOf } from '../../endpoints/client-jwks';
import { notFound } from '../problem';
import { defineRoute, type AnyRoute } from '../route';
import { refuseInsecureHttpInProduction, type InsecureHttpPolicy } from './insecure-http';
import { uuidParam } from './params';

const EndpointIdParams = z.object({ id: uuidParam('Endpoint id must be a UUID') });
type EndpointIdParams = z.infer<typeof EndpointIdParams>;
type NoQuery = Record<string, never>;

/** What the endpoint routes need: the service, and whether this is production (no `allowInsecureHttp` then). */
export type EndpointRouteDeps = EndpointServiceDeps & { readonly config: InsecureHttpPolicy };

/**
 * Registered FHIR endpoints (local care teams, referring EHRs). Secrets are write-only. In production
 * an endpoint cannot be registered, or changed, with `allowInsecureHttp` (400 naming it).
 */
export function endpointRoutes(deps: EndpointRouteDeps): AnyRoute[] {
  return [
    defineRoute<undefined, NoQuery, EndpointIdParams>({
      method: 'get',
      path: '/api/endpoints/:id/jwks',
      tag: 'endpoints',
      summary: "The public key (JWKS) this endpoint's EHR verifies our client assertions with, to paste into its client registration",
      roles: ['admin'],
      params: EndpointIdParams,
      responses: {
        200: { description: '`{keys}` (one key)' },
        404: { description: 'No such endpoint, or it uses no SMART Backend Services key' },
        409: { description: 'Its sealed key cannot be opened with this SECRETS_KEY, or makes no public key (`field: auth`: register its auth again)' },
      },
      handler: async ({ params }) => {
        const jwks = jwksOf([await requireEndpoint(deps.db, params.id)], deps.secrets);
        if (jwks.keys.length === 0) throw notFound(`A SMART Backend Services key of endpoint ${params.id} (its auth type uses none)`);
        return { status: 200, body: jwks };
      },
    }),
    defineRoute<CreateEndpointBody, NoQuery, NoQuery>({
      method: 'post',
      path: '/api/endpoints',
      tag: 'endpoints',
      summary: 'Register a FHIR R4 endpoint; its CapabilityStatement is read at once',
      roles: ['admin'],
      body: CreateEndpointBody,
      responses: {
        201: { description: 'Registered (capabilitiesError says if /metadata could not be read)' },
        400: { description: 'A field is invalid, the baseUrl is refused by the outbound policy, or allowInsecureHttp is set in production; the field is named' },
      },
      handler: async ({ body }) => {
        refuseInsecureHttpInProduction(deps.config, body);
        const endpoint = await registerEndpoint(deps, body);
        return { status: 201, body: endpoint, headers: { Location: `/api/endpoints/${endpoint.id}` } };
      },
    }),
    defineRoute<undefined, NoQuery, NoQuery>({
      method: 'get',
      path: '/api/endpoints',
      tag: 'endpoints',
      summary: 'List registered endpoints (no secrets)',
      roles: ['admin', 'case_manager'],
      responses: { 200: { description: 'Endpoints' } },
      handler: async () => ({ status: 200, body: { items: await getEndpoints(deps) } }),
    }),
    defineRoute<undefined, NoQuery, EndpointIdParams>({
      method: 'get',
      path: '/api/endpoints/:id',
      tag: 'endpoints',
      summary: 'One endpoint with what its server supports (no secrets)',
      roles: ['admin', 'case_manager'],
      params: EndpointIdParams,
      responses: { 200: { description: 'The endpoint' }, 404: { description: 'No such endpoint' } },
      handler: async ({ params }) => ({ status: 200, body: await getEndpoint(deps, params.id) }),
    }),
    defineRoute<UpdateEndpointBody, NoQuery, EndpointIdParams>({
      method: 'patch',
      path: '/api/endpoints/:id',
      tag: 'endpoints',
      summary: 'Change an endpoint; a new baseUrl or auth re-reads its capabilities and re-pins its SMART token endpoint (auth.tokenEndpoint)',
      roles: ['admin'],
      params: EndpointIdParams,
      body: UpdateEndpointBody,
      responses: {
        200: { description: 'The endpoint after the change' },
        400: {
          description:
            'A field is invalid, allowInsecureHttp is set in production, or a bearer endpoint is moved to another origin without auth (its token is not sent there: send the credentials again); the field is named',
        },
      },
      handler: async ({ params, body }) => {
        refuseInsecureHttpInProduction(deps.config, body);
        return { status: 200, body: await changeEndpoint(deps, params.id, body) };
      },
    }),
    defineRoute<undefined, NoQuery, EndpointIdParams>({
      method: 'delete',
      path: '/api/endpoints/:id',
      tag: 'endpoints',
      summary: 'Remove an endpoint (its secret is erased; pulled data keeps its history)',
      roles: ['admin'],
      params: EndpointIdParams,
      responses: { 204: { description: 'Removed' } },
      handler: async ({ params }) => {
        await removeEndpoint(deps, params.id);
        return { status: 204 };
      },
    }),
    defineRoute<undefined, NoQuery, EndpointIdParams>({
      method: 'post',
      path: '/api/endpoints/:id/capabilities',
      tag: 'endpoints',
      summary: "Read the endpoint's /metadata again now",
      roles: ['admin'],
      params: EndpointIdParams,
      responses: { 200: { description: 'The endpoint with fresh capabilities' } },
      handler: async ({ params }) => ({ status: 200, body: await refreshCapabilities(deps, params.id) }),
    }),
    defineRoute<undefined, NoQuery, EndpointIdParams>({
      method: 'post',
      path: '/api/endpoints/:id/keys/promote',
      tag: 'endpoints',
      summary:
        'SMART key rotation, second step: the next key (auth.nextPrivateKeyJwk, published in our JWKS beside the signing key) now signs, and the old key is no longer published; capabilities are read again with it',
      roles: ['admin'],
      params: EndpointIdParams,
      responses: {
        200: { description: 'The endpoint, signing with the promoted key (capabilitiesError says if the EHR refuses it)' },
        404: { description: 'No such endpoint' },
        409: { description: 'The endpoint has no next key (or does not use SMART Backend Services), or its sealed keys cannot be opened with this SECRETS_KEY (`field: auth`: register its auth again)' },
      },
      handler: async ({ params }) => ({ status: 200, body: await promoteNextKey(deps, params.id) }),
    }),
    defineRoute<undefined, NoQuery, EndpointIdParams>({
      method: 'get',
      path: '/api/endpoints/:id/circuit',
      tag: 'endpoints',
      summary: "The endpoint's circuit breaker: closed, open (paused until retryAt; its jobs wait) or half-open",
      roles: ['admin', 'case_manager'],
      params: EndpointIdParams,
      responses: { 200: { description: 'The circuit' }, 404: { description: 'No such endpoint' } },
      handler: async ({ params }) => ({ status: 200, body: await getEndpointCircuit(deps, params.id) }),
    }),
    defineRoute<undefined, NoQuery, EndpointIdParams>({
      method: 'post',
      path: '/api/endpoints/:id/circuit/reset',
      tag: 'endpoints',
      summary: "Close the endpoint's circuit now (the EHR works again): waiting jobs go on within seconds",
      roles: ['admin'],
      params: EndpointIdParams,
      responses: { 200: { description: 'The circuit, closed' }, 404: { description: 'No such endpoint' } },
      handler: async ({ params }) => ({ status: 200, body: await resetEndpointCircuit(deps, params.id) }),
    }),
  ] as unknown as AnyRoute[];
}
