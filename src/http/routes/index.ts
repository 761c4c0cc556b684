import type { EndpointServiceDeps } from '../../endpoints/endpoint-service';
import type { PullServiceDeps } from '../../pull/pull-service';
import type { SourceServiceDeps } from '../../pull/source-service';
import { pullProgresses } from '../../pull/pull-progress';
import { listPulls } from '../../pull/pull-repository';
import { getSources } from '../../pull/source-service';
import type { AnyRoute } from '../route';
import type { AssembleDeps } from '../../assembly/assemble';
import { bundleRoutes } from './bundle';
import { caseRoutes } from './cases';
import { endpointRoutes } from './endpoints';
import { pullRoutes } from './pulls';

export type ApiDeps = PullServiceDeps & EndpointServiceDeps & SourceServiceDeps & AssembleDeps;

/** Every /api route of the service. */
export function apiRoutes(deps: ApiDeps): AnyRoute[] {
  const extras = async (caseId: string) => ({
    sources: await getSources(deps, caseId),
    pulls: await pullProgresses(deps.db, caseId, await listPulls(deps.db, caseId)),
  });
  return [...caseRoutes(deps, extras), ...endpointRoutes(deps), ...pullRoutes(deps), ...bundleRoutes(deps)];
}
