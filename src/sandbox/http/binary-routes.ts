/**
 * Binary in its native form: `GET [base]/Binary/{id}` answers the raw bytes with the Binary's
 * `contentType` unless the client asked for FHIR JSON; `POST [base]/Binary` and
 * `PUT [base]/Binary/{id}` with a non-FHIR Content-Type store the raw body.
 *
 * "When a read request is made for the binary resource that doesn't explicitly specify the FHIR
 * content types application/fhir+xml or application/fhir+json, then the content should be returned
 * using the content type stated in the resource." (https://hl7.org/fhir/R4/binary.html#rest)
 */
import type { Binary } from '@medplum/fhirtypes';
import type { AccessPolicy } from '../smart/bearer-auth';
import { insufficientScope } from '../smart/bearer-auth';
import type { RouteContext } from './route-context';
import { headerValue, type SandboxRequest } from './sandbox-request';
import { fhirJsonResponse, outcomeResponse, simpleOutcome, type SandboxResponse } from './sandbox-response';
import { versionHeaders } from './version-headers';

const FHIR_JSON_TYPES = /application\/(fhir\+)?json/i;

/** True when the request asks for the FHIR representation (JSON) rather than the native content. */
export function wantsFhirJson(req: SandboxRequest): boolean {
  const format = req.query.get('_format');
  if (format) {
    return format === 'json' || FHIR_JSON_TYPES.test(format);
  }
  return FHIR_JSON_TYPES.test(headerValue(req.headers, 'accept') ?? '');
}

/** True when a request body is FHIR JSON (or has no declared type). */
export function isFhirJsonBody(req: SandboxRequest): boolean {
  const contentType = headerValue(req.headers, 'content-type');
  return !contentType || FHIR_JSON_TYPES.test(contentType);
}

/** `GET Binary/{id}` with a non-FHIR Accept: the bytes, with the Binary's content type. */
export function readRawBinary(ctx: RouteContext, id: string, policy: AccessPolicy): SandboxResponse {
  if (!policy.allows('Binary', 'r')) {
    return insufficientScope('Binary', 'r');
  }
  const binary = ctx.repo.getStored('Binary', id) as Binary | undefined;
  if (!binary) {
    return outcomeResponse(404, simpleOutcome('error', 'not-found', `Binary/${id} not found`));
  }
  return {
    status: 200,
    headers: { 'content-type': binary.contentType || 'application/octet-stream', ...versionHeaders(binary) },
    body: Buffer.from(binary.data ?? '', 'base64'),
  };
}

/** `POST Binary` or `PUT Binary/{id}` with a raw (non-FHIR) body. */
export async function writeRawBinary(ctx: RouteContext, req: SandboxRequest, id: string | undefined, policy: AccessPolicy): Promise<SandboxResponse> {
  const permission = id ? 'u' : 'c';
  if (!policy.allows('Binary', permission)) {
    return insufficientScope('Binary', permission);
  }
  const binary: Binary = {
    resourceType: 'Binary',
    contentType: headerValue(req.headers, 'content-type') ?? 'application/octet-stream',
    data: req.body.toString('base64'),
  };
  const created = !id || !ctx.repo.getStored('Binary', id);
  const stored = id ? await ctx.repo.updateResource({ ...binary, id }) : await ctx.repo.createResource(binary);
  const headers = { ...versionHeaders(stored), location: `${ctx.baseUrl}/Binary/${stored.id}/_history/${stored.meta?.versionId}` };
  return fhirJsonResponse(created ? 201 : 200, ctx.wire.toJson(stored), headers);
}
