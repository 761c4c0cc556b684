/**
 * Only the child's records enter the case. A source's answer can hold another person's: a server
 * that ignores a search parameter it does not support returns every patient's results (lenient
 * handling, https://hl7.org/fhir/R4/search.html#errors), `$everything` and `_include` bring referenced
 * Patients (a parent, a sibling). A record about another patient in a child's second-opinion record is
 * a privacy breach and a clinical hazard, so normalization leaves it out, with the reason.
 *
 * At a server where the child is known (`remotePatientId`, or its only Patient), a resource is about
 * another patient when
 * - it is a Patient that is neither the child nor linked from the child's Patient as the same person
 *   (`Patient.link`: "another patient resource that concerns the same actual person",
 *   https://hl7.org/fhir/R4/patient-definitions.html#Patient.link — an EHR's duplicate record of the
 *   child stays), or
 * - its `subject` or `patient` (the patient compartment's link for the clinical resources pulled,
 *   https://hl7.org/fhir/R4/compartmentdefinition-patient.html) is a literal reference to such a
 *   Patient on the same server,
 * or a `urn:uuid:` reference to such a Patient that came in the same Bundle. References that cannot
 * be placed (another server, conditional) and subjects that are not Patients (a Group, a Device) are
 * not judged.
 * @packageDocumentation
 */
import { parseReference } from './references';
import { isRecord } from '../util/is-record';

/** The child at one server: `Patient/<id>` of the child and of the records linked as the same person. */
export interface ChildAtServer {
  readonly baseUrl: string;
  readonly patientIds: ReadonlySet<string>;
  /** `Bundle.entry.fullUrl` → `Patient/<id>` of the Patients that came in a Bundle (`urn:uuid:` references). */
  readonly patientsByUrl: ReadonlyMap<string, string>;
}

/** A raw resource as normalization sees it. */
interface ScopedResource {
  readonly resourceType: string;
  readonly remoteId: string;
  readonly resource: Readonly<Record<string, unknown>>;
  /** The `Bundle.entry.fullUrl` it came under, if any. */
  readonly sourceFullUrl?: string | undefined;
}

const SUBJECT_FIELDS = ['subject', 'patient'] as const;

/**
 * `Patient/<id>` a reference points at on this server: a literal one to a Patient, or the `urn:uuid:`
 * fullUrl of a Patient that came in the same Bundle.
 */
function patientOf(reference: unknown, baseUrl: string, patientsByUrl: ReadonlyMap<string, string>): string | undefined {
  if (!isRecord(reference) || typeof reference.reference !== 'string') return undefined;
  const parsed = parseReference(reference.reference, baseUrl);
  if (parsed.kind === 'urn') return patientsByUrl.get(reference.reference);
  return parsed.kind === 'literal' && parsed.resourceType === 'Patient' ? `Patient/${parsed.id}` : undefined;
}

/**
 * The child's Patient ids at a server, with the Patients the child's own Patient records link to
 * (`Patient.link.other`, any link type: all concern the same person).
 * @param childIds - `Patient/<id>` of the child at this server (empty: the child is not known there)
 */
export function childAtServer(baseUrl: string, childIds: ReadonlySet<string>, items: readonly ScopedResource[]): ChildAtServer {
  const ids = new Set(childIds);
  const patientsByUrl = new Map<string, string>();
  for (const item of items) if (item.resourceType === 'Patient' && item.sourceFullUrl) patientsByUrl.set(item.sourceFullUrl, `Patient/${item.remoteId}`);
  for (const item of items) {
    if (item.resourceType !== 'Patient' || !childIds.has(`Patient/${item.remoteId}`)) continue;
    const links = item.resource['link'];
    if (!Array.isArray(links)) continue;
    for (const link of links) {
      const other = isRecord(link) ? patientOf(link['other'], baseUrl, patientsByUrl) : undefined;
      if (other) ids.add(other);
    }
  }
  return { baseUrl, patientIds: ids, patientsByUrl };
}

/**
 * `Patient/<id>` of the other patient a resource is about, or undefined when it is the child's (or
 * cannot be judged, or the child is not known at the server).
 */
export function otherPatientOf(item: ScopedResource, child: ChildAtServer): string | undefined {
  return otherPatientAmong(item.resourceType, item.remoteId, SUBJECT_FIELDS.map((f) => item.resource[f]), child);
}

/**
 * The same judgement from the resource's type, id and its `subject`/`patient` Reference values
 * (as the page scan reads them, without the rest of the resource).
 */
export function otherPatientAmong(resourceType: string, remoteId: string, subjects: readonly unknown[], child: ChildAtServer): string | undefined {
  if (child.patientIds.size === 0) return undefined;
  if (resourceType === 'Patient') {
    const self = `Patient/${remoteId}`;
    return child.patientIds.has(self) ? undefined : self;
  }
  for (const subject of subjects) {
    const patient = patientOf(subject, child.baseUrl, child.patientsByUrl);
    if (patient !== undefined && !child.patientIds.has(patient)) return patient;
  }
  return undefined;
}
