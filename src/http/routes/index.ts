import type { EndpointServiceDeps } from '../../endpoints/endpoint-service';
import type { PullServiceDeps } from '../../pull/pull-service';
import type { SourceServiceDeps } from '../../pull/source-service';
import type { AnyRoute } from '../route';
import { caseRoutes } from './cases';
import { endpointRoutes } from './endpoints';
import { pullRoutes } from './pulls';

export type ApiDeps = PullServiceDeps & EndpointServiceDeps & SourceServiceDeps;

/** Every /api route of the service. */
export function apiRoutes(deps: ApiDeps): AnyRoute[] {
  return [...caseRoutes(deps), ...endpointRoutes(deps), ...pullRoutes(deps)];
}
