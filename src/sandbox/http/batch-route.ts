/**
 * `POST [base]` with a batch or transaction Bundle. SMART scopes are checked for every entry
 * before anything is written; one entry the token may not perform refuses the whole request (403).
 *
 * @see https://hl7.org/fhir/R4/http.html#transaction
 */
import type { Bundle } from '@medplum/fhirtypes';
import { processBatchOrTransaction } from '../operations/transaction';
import { insufficientScope, type AccessPolicy } from '../smart/bearer-auth';
import { requiredPermission } from './medplum-routes';
import type { RouteContext } from './route-context';
import type { SandboxRequest } from './sandbox-request';
import { fhirJsonResponse, outcomeResponse, simpleOutcome, type SandboxResponse } from './sandbox-response';

export async function handleBatch(ctx: RouteContext, req: SandboxRequest, policy: AccessPolicy): Promise<SandboxResponse> {
  let bundle: Bundle;
  try {
    bundle = JSON.parse(req.body.toString('utf8')) as Bundle;
  } catch {
    return outcomeResponse(400, simpleOutcome('error', 'structure', 'Request body is not valid JSON'));
  }
  for (const entry of bundle.entry ?? []) {
    const method = entry.request?.method ?? '';
    const url = (entry.request?.url ?? '').replace(/^\//, '');
    const required = requiredPermission(ctx, method, url);
    if (required && !policy.allows(required.resourceType, required.permission)) {
      return insufficientScope(required.resourceType, required.permission);
    }
  }
  const result = await processBatchOrTransaction(bundle, ctx.repo, ctx.router);
  if (!result.ok) {
    return outcomeResponse(result.status, result.outcome);
  }
  return fhirJsonResponse(200, JSON.stringify(result.response));
}
