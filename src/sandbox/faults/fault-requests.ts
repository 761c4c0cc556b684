/**
 * Faults expressed as a change of the request before it is handled (the server then answers it
 * for real): a search parameter it ignores (`ignore-parameter`), a conditional create it does not
 * evaluate (`ignore-if-none-exist`).
 */
import { withoutParameter, type SandboxRequest } from '../http/sandbox-request';
import type { FaultAction } from './fault-types';

/** The request as the server handles it under `action` (unchanged for every other fault). */
export function faultedRequest(request: SandboxRequest, action: FaultAction | undefined): SandboxRequest {
  if (action?.kind === 'ignore-parameter') {
    return withoutParameter(request, action.name);
  }
  if (action?.kind === 'ignore-if-none-exist') {
    return withoutIfNoneExist(request);
  }
  return request;
}

/**
 * The request as a server that does not evaluate conditional creates handles it
 * (https://hl7.org/fhir/R4/http.html#ccreate): no `If-None-Exist` header, and no
 * `Bundle.entry.request.ifNoneExist` in a batch or transaction Bundle (https://hl7.org/fhir/R4/http.html#trules).
 */
export function withoutIfNoneExist(request: SandboxRequest): SandboxRequest {
  const headers = { ...request.headers };
  delete headers['if-none-exist'];
  return { ...request, headers, body: withoutEntryConditions(request.body) };
}

/** A Bundle as this fault sees it. */
interface ConditionalBundle {
  readonly resourceType?: unknown;
  readonly entry?: { request?: { ifNoneExist?: unknown } }[];
}

/** The body with every entry's `ifNoneExist` removed when it is a Bundle; any other body unchanged. */
function withoutEntryConditions(body: Buffer): Buffer {
  const bundle = bundleIn(body);
  if (!bundle?.entry?.some((entry) => entry.request?.ifNoneExist !== undefined)) {
    return body;
  }
  for (const entry of bundle.entry) {
    if (entry.request) {
      delete entry.request.ifNoneExist;
    }
  }
  return Buffer.from(JSON.stringify(bundle), 'utf8');
}

function bundleIn(body: Buffer): ConditionalBundle | undefined {
  if (body.length === 0) {
    return undefined;
  }
  try {
    const parsed = JSON.parse(body.toString('utf8')) as ConditionalBundle | null;
    return parsed?.resourceType === 'Bundle' && Array.isArray(parsed.entry) ? parsed : undefined;
  } catch {
    return undefined;
  }
}
