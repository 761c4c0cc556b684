import type { CaseServiceDeps } from '../../cases/case-service';
import type { AnyRoute } from '../route';
import { caseRoutes } from './cases';

/** Every /api route of the service. */
export function apiRoutes(deps: CaseServiceDeps): AnyRoute[] {
  return [...caseRoutes(deps)];
}
