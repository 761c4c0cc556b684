/**
 * `ETag` and `Last-Modified` of a resource response.
 *
 * @see https://hl7.org/fhir/R4/http.html#versioning
 */
import type { Resource } from '@medplum/fhirtypes';

export function versionHeaders(resource: Resource): Record<string, string> {
  const headers: Record<string, string> = {};
  if (resource.meta?.versionId) {
    headers.etag = `W/"${resource.meta.versionId}"`;
  }
  const lastUpdated = Date.parse(resource.meta?.lastUpdated ?? '');
  if (Number.isFinite(lastUpdated)) {
    headers['last-modified'] = new Date(lastUpdated).toUTCString();
  }
  return headers;
}
