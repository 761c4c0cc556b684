/**
 * Stable identifiers of a case's FHIR resources.
 *
 * Each resource id is a name-based UUID (RFC 9562 version 5, SHA-1) of the case id
 * and resource type under a program namespace, so building the FHIR face twice
 * gives the same ids, different resource types never share an id, and the ids
 * can be used as `urn:uuid:` Bundle fullUrls.
 * @see https://www.rfc-editor.org/rfc/rfc9562#name-uuid-version-5
 * @see https://hl7.org/fhir/R4/datatypes.html#id
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';

/** Namespace UUID of Second Opinion Bridge case resources (random, fixed forever). */
export const CASE_RESOURCE_NAMESPACE = '6f1c2b8e-4a57-4d2e-9b0a-3f5e7c9d1a24';

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

/** RFC 9562 version-5 UUID of `name` in `namespace`. */
export function uuidV5(name: string, namespace: string = CASE_RESOURCE_NAMESPACE): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(namespace)) {
    throw new RangeError('namespace must be a UUID');
  }
  const hash = createHash('sha1').update(uuidBytes(namespace)).update(name, 'utf8').digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Resource types of a case's FHIR face. */
export type CaseResourceType = 'Patient' | 'RelatedPerson' | 'Consent' | 'ServiceRequest';

/** Ids of a case's FHIR resources. */
export type CaseFhirIds = Readonly<Record<CaseResourceType, string>>;

/** The stable resource ids of case `caseId`. */
export function caseFhirIds(caseId: string): CaseFhirIds {
  if (caseId.trim() === '') throw new RangeError('caseId must not be empty');
  return {
    Patient: uuidV5(`${caseId}/Patient`),
    RelatedPerson: uuidV5(`${caseId}/RelatedPerson`),
    Consent: uuidV5(`${caseId}/Consent`),
    ServiceRequest: uuidV5(`${caseId}/ServiceRequest`),
  };
}
