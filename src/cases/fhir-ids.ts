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
import { uuidBytes, uuidV5 as uuidV5In } from '../util/uuid-v5';

/** Namespace UUID of Second Opinion Bridge case resources (random, fixed forever). */
export const CASE_RESOURCE_NAMESPACE = '6f1c2b8e-4a57-4d2e-9b0a-3f5e7c9d1a24';

/** The bytes of each name space used (a handful of constants), parsed once. */
const namespaceBytes = new Map<string, Buffer>();

/**
 * RFC 9562 version-5 UUID of `name` in `namespace` (`src/util/uuid-v5.ts`); a RangeError when
 * `namespace` is not a UUID.
 */
export function uuidV5(name: string, namespace: string = CASE_RESOURCE_NAMESPACE): string {
  let bytes = namespaceBytes.get(namespace);
  if (bytes === undefined) {
    bytes = uuidBytes(namespace);
    namespaceBytes.set(namespace, bytes);
  }
  return uuidV5In(name, bytes);
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
