import type { EndpointServiceDeps } from '../../endpoints/endpoint-service';
import type { PullServiceDeps } from '../../pull/pull-service';
import type { SourceServiceDeps } from '../../pull/source-service';
import { pullProgresses } from '../../pull/pull-progress';
import { listPulls } from '../../pull/pull-repository';
import { getSources } from '../../pull/source-service';
import type { AnyRoute } from '../route';
import type { AssembleDeps } from '../../assembly/assemble';
import { accessLogRoutes } from './access-log';
import { bundleRoutes } from './bundle';
import { caseRoutes } from './cases';
import { endpointRoutes } from './endpoints';
import { pullRoutes } from './pulls';
import { uploadRoutes, type UploadRouteDeps } from './uploads';
import type { OpinionServiceDeps } from '../../opinion/opinion-service';
import type { DeliveryServiceDeps } from '../../delivery/delivery-service';
import type { WebhookServiceDeps } from '../../notify/webhook-service';
import { deliveryRoutes } from './deliveries';
import { notificationRoutes } from './notifications';
import { opinionRoutes } from './opinion';
import { transferRoutes } from './transfer';
import { billingRoutes } from './billing';
import { reviewRoutes } from './review';
import { specialistRoutes } from './specialists';
import { wellKnownRoutes } from './well-known';
import { caseReviewExtras } from '../../review/case-review-extras';
import { bundleVersionView, latestBundleVersion } from '../../assembly/bundle-versions';
import { outdatedRecords } from '../../assembly/source-changes';

export type ApiDeps = PullServiceDeps & EndpointServiceDeps & SourceServiceDeps & AssembleDeps & UploadRouteDeps & OpinionServiceDeps & DeliveryServiceDeps & WebhookServiceDeps;

/** The case's current record: its latest bundle version (null before the first assembly). */
async function currentRecords(deps: Pick<ApiDeps, 'db'>, caseId: string) {
  const [latest, outdated] = await Promise.all([latestBundleVersion(deps.db, caseId), outdatedRecords(deps.db, caseId)]);
  if (!latest) return null;
  return {
    ...bundleVersionView(caseId, latest),
    versions: `/api/cases/${caseId}/bundle/versions`,
    // Source changes this version does not show yet: it is not served as the current record until assembled again.
    ...(outdated ? { outdatedBy: outdated.changes } : {}),
  };
}

/** The public routes other servers read (no token), besides health, metrics and OpenAPI. */
export function publicRoutes(deps: ApiDeps): AnyRoute[] {
  return wellKnownRoutes(deps);
}

/** Every /api route of the service. */
export function apiRoutes(deps: ApiDeps): AnyRoute[] {
  const extras = async (caseId: string) => ({
    sources: await getSources(deps, caseId),
    pulls: await pullProgresses(deps.db, caseId, await listPulls(deps.db, caseId)),
    ...(await caseReviewExtras(deps, caseId)),
    records: await currentRecords(deps, caseId),
  });
  return [
    ...caseRoutes(deps, extras),
    ...endpointRoutes(deps),
    ...pullRoutes(deps),
    ...bundleRoutes(deps),
    ...uploadRoutes(deps),
    ...opinionRoutes(deps),
    ...deliveryRoutes(deps),
    // A webhook URL is looked up at registration by this process's outbound resolver (a test's
    // FhirClientDeps.resolve; dns.lookup otherwise), like an endpoint's base URL. Read when a request
    // uses it: the route table is also built without its deps (the route-table auth tests).
    ...notificationRoutes({
      ...deps,
      get webhookResolve() {
        return deps.webhookResolve ?? deps.clients.urlGuard(false).resolve;
      },
    }),
    ...transferRoutes(deps),
    ...billingRoutes(deps),
    ...specialistRoutes(deps),
    ...reviewRoutes(deps),
    ...accessLogRoutes(deps),
  ];
}
