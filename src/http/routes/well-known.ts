import { serviceJwks } from '../../endpoints/client-jwks';
import type { EndpointServiceDeps } from '../../endpoints/endpoint-service';
import { defineRoute, type AnyRoute } from '../route';

type NoQuery = Record<string, never>;

/** Public routes other servers read (no token): our JWKS for the EHRs we authenticate to. */
export function wellKnownRoutes(deps: Pick<EndpointServiceDeps, 'db' | 'secrets'>): AnyRoute[] {
  return [
    defineRoute<undefined, NoQuery, NoQuery>({
      method: 'get',
      path: '/.well-known/jwks.json',
      tag: 'endpoints',
      summary: "Our public keys (JWKS) for the EHRs we call with SMART Backend Services: register this URL as the client's JWKS URL",
      roles: 'public',
      responses: { 200: { description: '`{keys}`: the public half of each SMART Backend Services key, with kid, alg, use sig' } },
      handler: async () => ({
        status: 200,
        body: await serviceJwks(deps.db, deps.secrets),
        headers: { 'Cache-Control': 'public, max-age=300' },
      }),
    }),
  ] as unknown as AnyRoute[];
}
