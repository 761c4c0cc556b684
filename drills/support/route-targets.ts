import { randomUUID } from 'node:crypto';
import type { AnyRoute } from '../../src/http/route';
import { fixtureIntake } from './fixtures';

/** Real ids of things the drill created, for path parameters. */
export interface RealIds {
  readonly caseId: string;
  readonly endpointId: string;
  readonly sourceId: string;
  readonly pullId: string;
  readonly baseUrl: string;
}

/**
 * The concrete URL of a route: `:id` is the case under `/api/cases`, the endpoint under
 * `/api/endpoints`; `:sourceId` and `:pullId` are real too. Parameters of routes the drill does not
 * know get a random UUID (a 404 is an answer that names the problem too).
 */
export function concretePath(route: Pick<AnyRoute, 'path'>, ids: RealIds): string {
  return route.path.replace(/:([A-Za-z_]+)/g, (_m, name: string) => {
    if (name === 'id') return route.path.startsWith('/api/endpoints') ? ids.endpointId : ids.caseId;
    if (name === 'sourceId') return ids.sourceId;
    if (name === 'pullId') return ids.pullId;
    return randomUUID();
  });
}

/** A valid body per route (by `METHOD path`) to mutate into near-valid ones; undefined when the drill has none. */
export function validSample(route: Pick<AnyRoute, 'method' | 'path'>, ids: RealIds): unknown {
  const samples: Record<string, unknown> = {
    'POST /api/cases': fixtureIntake(),
    'POST /api/cases/:id/transitions': { to: 'collecting_records', reason: 'drill' },
    'POST /api/endpoints': { name: 'drill', baseUrl: ids.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 10, maxConcurrency: 2 },
    'PATCH /api/endpoints/:id': { name: 'drill renamed', maxConcurrency: 3 },
    'POST /api/cases/:id/sources': { endpointId: ids.endpointId, patient: { identifier: { system: 'urn:drill', value: 'p1' } } },
    'POST /api/cases/:id/sources/:sourceId/patient': { patientId: 'p1' },
    'POST /api/cases/:id/pulls': { since: '2026-01-01T00:00:00Z', types: ['Condition'] },
    'POST /api/cases/:id/bundle/rebuild': { disabledRules: [] },
  };
  return samples[`${route.method.toUpperCase()} ${route.path}`];
}
