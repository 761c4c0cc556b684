/**
 * The summary Composition of a case bundle, shaped after the International Patient
 * Summary (IPS): document type LOINC 60591-5 "Patient summary Document", one section per
 * topic with a LOINC section code, generated XHTML narrative listing the entries, entry
 * references, and `emptyReason` when a section has no entries.
 *
 * Sections, in order (LOINC):
 * - 42349-1 Reason for referral — the family's reason and questions (intake, narrative only)
 * - 10164-2 History of present illness — the diagnosis and history as the family gave them
 * - 11450-4 Problems — Conditions not resolved (IPS Problems)
 * - 11348-0 Past illness — resolved / inactive / in remission Conditions (IPS History of Past Illness)
 * - 48765-2 Allergies and intolerances
 * - 10160-0 Medications (MedicationRequest, MedicationStatement)
 * - 11369-6 Immunizations
 * - 30954-2 Results — lab and other non-imaging Observations and DiagnosticReports (IPS Results)
 * - 8716-3 Vital signs
 * - 18748-4 Diagnostic imaging — ImagingStudies and imaging reports
 * - 47519-4 Procedures
 * - 46240-8 Encounters (history of hospitalizations and outpatient visits)
 * - 77599-9 Documents — DocumentReferences ("Additional documentation", as in the EU/EHDS IGs)
 * - 29762-2 Social history — only when there are social-history Observations
 * Empty sections say so in the narrative and carry emptyReason `unavailable` (list-empty-reason):
 * the sources were asked and sent none, which does not prove there are none (`nilknown`
 * would claim that). When no source was asked for a section's types because each EHR's token scope
 * did not grant them (`pull/not-granted.ts`), the section says "not requested" and carries `notasked`;
 * a source not asked is named beside the others' results.
 *
 * The lines themselves (one per entry) are written by the modules of `narrative/`: medications
 * (`medication-line.ts`), results and reports (`result-line.ts`), conditions (`condition-line.ts`),
 * events, allergies and imaging studies (`event-line.ts`).
 *
 * Author: the service as a Device ({@link serviceDevice}), included in the bundle.
 * @see https://hl7.org/fhir/uv/ips/StructureDefinition-Composition-uv-ips.html
 * @see https://hl7.org/fhir/R4/composition.html
 * @see https://terminology.hl7.org/CodeSystem-list-empty-reason.html
 * @packageDocumentation
 */
import type { CodeableConcept, Composition, CompositionSection, Device, DiagnosticReport, FhirResource, Narrative, Observation, Reference } from 'fhir/r4';
import { uuidV5 } from '../cases/fhir-ids';
import { FHIR_STRING_CONTROL, fhirText } from '../fhir/fhir-text';
import { UPLOAD_FLAG_SYSTEM } from '../uploads/origin';
import { SERVICE_VERSION } from '../version';
import { readableDateTime } from './readable-date';
import { ccText, codesOf, joinParts, type ResourceLookup } from './narrative/concept';
import { abatementText, conditionSection, contradictionText, isExcludedVerification, onsetText } from './narrative/condition-line';
import { describeOther, imagingStudyText, reactionText } from './narrative/event-line';
import { medicationParts } from './narrative/medication-line';
import { notGrantedBySource, scopeNote, type NotGranted } from './narrative/not-granted-note';
import { observationParts, reportParts } from './narrative/result-line';
import type { AssembledComposition, BundleEntryInput } from './bundle';
import { isWithdrawnElsewhere } from './dedupe/withdrawn-elsewhere';
import { NOTEWORTHY_SEVERITIES, type AssemblyOptions, type MergeRecord, type NormalizedResource, type SourceInfo } from './types';
import { XHTML_NAMESPACE } from './xhtml-allow-list';

export const LOINC = 'http://loinc.org';
const LIST_EMPTY_REASON = 'http://terminology.hl7.org/CodeSystem/list-empty-reason';

/** What the family told at intake (all optional: a section says so when a part is missing). */
export interface PatientStory {
  readonly diagnosis?: string;
  readonly history?: string;
  readonly reason?: string;
  readonly questions?: readonly string[];
}

/** Input of {@link buildComposition}. */
export interface CompositionInput {
  /** fullUrl of the case Patient. */
  readonly subject: string;
  /** The bundle's resources after de-duplication. */
  readonly resources: readonly NormalizedResource[];
  readonly options: AssemblyOptions;
  readonly story?: PatientStory;
  /** Sources (names shown in the narrative) and merges (a merged entry names every source). */
  readonly sources?: readonly SourceInfo[];
  readonly merges?: readonly MergeRecord[];
  readonly title?: string;
  /** Author; defaults to {@link serviceDevice}. */
  readonly author?: BundleEntryInput<Device>;
}

/** Display name of the service. */
export const SERVICE_NAME = 'Second Opinion Bridge';

/** The service as a Device: author of the Composition, assembler in Provenance. Same id everywhere. */
export function serviceDevice(): BundleEntryInput<Device> {
  const id = uuidV5('assembly/device/second-opinion-bridge');
  return {
    fullUrl: `urn:uuid:${id}`,
    resource: {
      resourceType: 'Device',
      id,
      text: { status: 'generated', div: `<div xmlns="${XHTML_NAMESPACE}"><p>${SERVICE_NAME} ${escapeXml(SERVICE_VERSION)}: assembles second-opinion case records.</p></div>` },
      status: 'active',
      deviceName: [{ name: SERVICE_NAME, type: 'user-friendly-name' }],
      type: { text: 'Health record assembly software' },
      version: [{ value: SERVICE_VERSION }],
    },
  };
}

type SectionKey =
  | 'problems' | 'pastIllness' | 'allergies' | 'medications' | 'immunizations' | 'results' | 'vitals'
  | 'imaging' | 'procedures' | 'encounters' | 'documents' | 'social';

interface SectionSpecBase {
  readonly title: string;
  readonly code: string;
  readonly display: string;
  /** Shown only when it has entries. */
  readonly optional?: boolean;
}

/** A section listing entries of the record. */
interface ClinicalSectionSpec extends SectionSpecBase {
  readonly key: SectionKey;
}

/** A section of the record, or of what the family told at intake (`reason`, `history`: one member each, so that a test of the key narrows). */
type SectionSpec = ClinicalSectionSpec | (SectionSpecBase & { readonly key: 'reason' }) | (SectionSpecBase & { readonly key: 'history' });

/** Section codes, titles and LOINC displays, in document order. */
export const SECTIONS: readonly SectionSpec[] = [
  { key: 'reason', title: 'Reason for referral and questions', code: '42349-1', display: 'Reason for referral (narrative)' },
  { key: 'history', title: 'History of present illness', code: '10164-2', display: 'History of Present illness Narrative' },
  { key: 'problems', title: 'Problems', code: '11450-4', display: 'Problem list - Reported' },
  { key: 'pastIllness', title: 'Past illness', code: '11348-0', display: 'History of Past illness Narrative' },
  { key: 'allergies', title: 'Allergies and intolerances', code: '48765-2', display: 'Allergies and adverse reactions Document' },
  { key: 'medications', title: 'Medications', code: '10160-0', display: 'History of Medication use Narrative' },
  { key: 'immunizations', title: 'Immunizations', code: '11369-6', display: 'History of Immunization Narrative' },
  { key: 'results', title: 'Results', code: '30954-2', display: 'Relevant diagnostic tests/laboratory data Narrative' },
  { key: 'vitals', title: 'Vital signs', code: '8716-3', display: 'Vital signs' },
  { key: 'imaging', title: 'Diagnostic imaging', code: '18748-4', display: 'Diagnostic imaging study' },
  { key: 'procedures', title: 'Procedures', code: '47519-4', display: 'History of Procedures Document' },
  { key: 'encounters', title: 'Encounters', code: '46240-8', display: 'History of Hospitalizations+Outpatient visits Narrative' },
  { key: 'documents', title: 'Documents', code: '77599-9', display: 'Additional documentation' },
  { key: 'social', title: 'Social history', code: '29762-2', display: 'Social history Narrative', optional: true },
];

const IMAGING_CATEGORIES = new Set(['RAD', 'LP29684-5', 'imaging', 'RX', 'CT', 'MR', 'US', 'NMR', 'NMS', 'VUS', 'XRC']);

function isImagingReport(r: DiagnosticReport): boolean {
  return codesOf(r.category).some((c) => IMAGING_CATEGORIES.has(c)) || codesOf(r.code).includes('18748-4');
}

function observationSection(o: Observation): SectionKey | undefined {
  if (o.status === 'entered-in-error') return undefined;
  const cats = codesOf(o.category);
  if (cats.includes('vital-signs')) return 'vitals';
  if (cats.includes('social-history')) return 'social';
  if (cats.includes('imaging')) return 'imaging';
  return 'results';
}

/** The section a resource is listed in, if any (supporting resources are in none). */
export function sectionOf(r: FhirResource): SectionKey | undefined {
  switch (r.resourceType) {
    case 'Condition': return conditionSection(r);
    case 'AllergyIntolerance': return isExcludedVerification(codesOf(r.verificationStatus)) ? undefined : 'allergies';
    case 'MedicationRequest': case 'MedicationStatement': return r.status === 'entered-in-error' ? undefined : 'medications';
    case 'Immunization': return r.status === 'entered-in-error' ? undefined : 'immunizations';
    case 'Observation': return observationSection(r);
    case 'DiagnosticReport': return r.status === 'entered-in-error' ? undefined : isImagingReport(r) ? 'imaging' : 'results';
    case 'ImagingStudy': return r.status === 'entered-in-error' ? undefined : 'imaging';
    case 'Procedure': return r.status === 'entered-in-error' ? undefined : 'procedures';
    case 'Encounter': return r.status === 'entered-in-error' ? undefined : 'encounters';
    case 'DocumentReference': return r.status === 'entered-in-error' ? undefined : 'documents';
    default: return undefined;
  }
}

const div = (inner: string): string => `<div xmlns="${XHTML_NAMESPACE}">${inner}</div>`;

function emptyReason(): CodeableConcept {
  return { coding: [{ system: LIST_EMPTY_REASON, code: 'unavailable', display: 'Unavailable' }] };
}

/** emptyReason of a section no source was asked for: its EHR's token scope did not grant the types. */
function notAskedReason(): CodeableConcept {
  return { coding: [{ system: LIST_EMPTY_REASON, code: 'notasked', display: 'Not Asked' }] };
}

/** The resource types a section lists (what a source must have been asked for to fill it). */
const SECTION_TYPES: Readonly<Record<SectionKey, readonly string[]>> = {
  problems: ['Condition'], pastIllness: ['Condition'], allergies: ['AllergyIntolerance'], medications: ['MedicationRequest', 'MedicationStatement'],
  immunizations: ['Immunization'], results: ['Observation', 'DiagnosticReport'], vitals: ['Observation'], imaging: ['ImagingStudy', 'DiagnosticReport'],
  procedures: ['Procedure'], encounters: ['Encounter'], documents: ['DocumentReference'], social: ['Observation'],
};

/**
 * A narrative: `generated` when it is made from the structured data alone, `additional` when it says
 * more than the data holds (the family's own words, notes about what an EHR did not grant or said).
 * @see https://hl7.org/fhir/R4/narrative.html#Narrative.status
 */
function narrative(xhtml: string, saysMore: boolean): Narrative {
  return { status: saysMore ? 'additional' : 'generated', div: xhtml };
}

function storySection(spec: SectionSpec, story: PatientStory | undefined): CompositionSection {
  const parts: string[] = [];
  if (spec.key === 'reason') {
    if (story?.reason) parts.push(`<p>${escapeXml(story.reason)}</p>`);
    const qs = story?.questions ?? [];
    if (qs.length > 0) parts.push(`<p>The family's questions:</p><ol>${qs.map((q) => `<li>${escapeXml(q)}</li>`).join('')}</ol>`);
  } else {
    if (story?.diagnosis) parts.push(`<p>Diagnosis as given by the family: ${escapeXml(story.diagnosis)}</p>`);
    if (story?.history) parts.push(`<p>${escapeXml(story.history)}</p>`);
  }
  const base = { title: spec.title, code: { coding: [{ system: LOINC, code: spec.code, display: spec.display }] } };
  if (parts.length === 0) return { ...base, text: narrative(div('<p>Not provided at intake.</p>'), false), emptyReason: emptyReason() };
  // The family's words: in no resource of the bundle.
  return { ...base, text: narrative(div(parts.join('')), true) };
}

/** Said after the line of a record another source withdrew as entered in error (`dedupe/withdrawn-elsewhere.ts`). */
const WITHDRAWN_CAUTION = 'Caution: another source withdrew this record as entered in error.';

/** Source names of a resource: its own source, and the sources of the duplicates merged into it. */
function sourceNamer(input: CompositionInput): (r: NormalizedResource) => string[] {
  const names = new Map((input.sources ?? []).map((s) => [s.sourceId, s.name]));
  const mergedFrom = new Map<string, string[]>();
  for (const m of input.merges ?? []) mergedFrom.set(m.survivor, m.mergedKeys.map((k) => k.slice(0, k.lastIndexOf('|', k.lastIndexOf('|') - 1))));
  const order = (input.sources ?? []).map((s) => s.sourceId);
  const namesOf = (ids: ReadonlySet<string>): string[] => order.filter((id) => ids.has(id)).map((id) => names.get(id)).filter((n): n is string => n !== undefined);
  // Most resources merged nothing: one shared answer per source.
  const single = new Map(order.map((id) => [id, namesOf(new Set([id]))]));
  return (r) => {
    const merged = mergedFrom.get(r.fullUrl);
    if (!merged) return single.get(r.sourceId) ?? [];
    return namesOf(new Set([r.sourceId, ...merged]));
  };
}

/**
 * A clinical section: one line per entry, newest first. Sources whose EHR's token scope did not grant
 * the section's types are named after the lines ("Not requested from X: not granted by its EHR's token
 * scope."); an empty section says "None found" only of the sources that were asked, and when none
 * was, says so with emptyReason `notasked` instead of `unavailable`.
 */
function clinicalSection(
  spec: ClinicalSectionSpec, members: readonly NormalizedResource[], input: CompositionInput,
  namer: (r: NormalizedResource) => string[], byUrl: ReadonlyMap<string, FhirResource>, notGranted: readonly NotGranted[],
): CompositionSection | undefined {
  const base = { title: spec.title, code: { coding: [{ system: LOINC, code: spec.code, display: spec.display }] } };
  if (members.length === 0 && spec.optional) return undefined;
  const note = notGranted.length > 0 ? scopeNote(SECTION_TYPES[spec.key], notGranted) : undefined;
  const notes = note ? note.sentences.map((t) => `<p>${escapeXml(t)}</p>`).join('') : '';
  if (members.length === 0) {
    const from = (input.sources ?? []).filter((s) => !note?.notAsked.has(s.sourceId)).map((s) => s.name);
    if (note && from.length === 0) return { ...base, text: narrative(div(notes), true), emptyReason: notAskedReason() };
    const where = from.length > 0 ? ` in the records received from ${from.map(escapeXml).join(', ')}` : ' in the records received';
    return { ...base, text: narrative(div(`<p>None found${where}.</p>${notes}`), notes !== ''), emptyReason: emptyReason() };
  }
  // Newest first, then by fullUrl; each key computed once (not once per comparison).
  const keyed = members.map((r) => ({ r, key: sortKey(r.resource) }));
  keyed.sort((a, b) => (a.key > b.key ? -1 : a.key < b.key ? 1 : a.r.fullUrl < b.r.fullUrl ? -1 : a.r.fullUrl > b.r.fullUrl ? 1 : 0));
  const sorted = keyed.map((k) => k.r);
  const items = sorted.map((r) => {
    const names = namer(r);
    const from = names.length > 0 ? ` <i>(${names.map(escapeXml).join('; ')})</i>` : '';
    const caution = isWithdrawnElsewhere(r.resource) ? ` <b>${WITHDRAWN_CAUTION}</b>` : '';
    return `<li>${describeResource(r.resource, byUrl)}${from}${caution}</li>`;
  });
  const entry: Reference[] = sorted.map((r) => ({ reference: r.fullUrl }));
  return { ...base, text: narrative(div(`<ul>${items.join('')}</ul>${notes}`), notes !== ''), entry };
}

// ---- narrative ----------------------------------------------------------------------

const XML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** What needs more than a plain copy: markup, or a control character FHIR text cannot carry ({@link FHIR_STRING_CONTROL}). */
const XML_SPECIAL = new RegExp(`[&<>"']|${FHIR_STRING_CONTROL.source}`);
const XML_SPECIALS = /[&<>"']/g;

/**
 * Text escaped for XHTML element content and attribute values; a control character XML cannot hold
 * (a record's display text, an intake stored before they were refused) made FHIR text ({@link fhirText}).
 */
export function escapeXml(text: string): string {
  // Most narrative lines have nothing to escape: test once rather than run a replace.
  return XML_SPECIAL.test(text) ? fhirText(text).replace(XML_SPECIALS, (c) => XML_ESCAPES[c] ?? c) : text;
}

/** The date a resource is about (for sorting and display). */
function dateOf(r: FhirResource): string | undefined {
  switch (r.resourceType) {
    case 'Condition': return r.onsetDateTime ?? r.onsetPeriod?.start ?? r.recordedDate;
    case 'AllergyIntolerance': return r.onsetDateTime ?? r.recordedDate;
    case 'MedicationRequest': return r.authoredOn;
    case 'MedicationStatement': return r.effectiveDateTime ?? r.effectivePeriod?.start ?? r.dateAsserted;
    case 'Immunization': return r.occurrenceDateTime ?? r.recorded;
    case 'Observation': return r.effectiveDateTime ?? r.effectiveInstant ?? r.effectivePeriod?.start ?? r.issued;
    case 'DiagnosticReport': return r.effectiveDateTime ?? r.effectivePeriod?.start ?? r.issued;
    case 'ImagingStudy': return r.started;
    case 'Procedure': return r.performedDateTime ?? r.performedPeriod?.start;
    case 'Encounter': return r.period?.start;
    case 'DocumentReference': return r.date ?? r.context?.period?.start;
    default: return undefined;
  }
}

/** Sort key: the resource's date as a UTC ISO string (date-only values at midnight UTC). */
function sortKey(r: FhirResource): string {
  const d = dateOf(r);
  if (!d) return '';
  const ms = d.length > 10 ? Date.parse(d) : Number.NaN;
  return Number.isNaN(ms) ? d : new Date(ms).toISOString();
}

/**
 * What a resource says, in one line (plain text; escape before use): the line the section narrative
 * shows for it. `byUrl` resolves a MedicationRequest's Medication reference, a DiagnosticReport's
 * results and an Observation's subject (the child's birth date picks an age-specific reference range).
 */
export function describe(r: FhirResource, byUrl: ResourceLookup): string {
  // First, so that no one reads the rest of the line as the child's.
  const parts: (string | undefined)[] = [identityMismatchText(r)];
  switch (r.resourceType) {
    case 'Condition':
      parts.push(ccText(r.code), onsetText(r), abatementText(r), ccText(r.clinicalStatus), contradictionText(r), unlessUsual(r.verificationStatus, 'confirmed'));
      break;
    case 'AllergyIntolerance':
      parts.push(ccText(r.code), r.criticality ? `criticality ${r.criticality}` : undefined, reactionText(r.reaction),
        unlessUsual(r.clinicalStatus, 'active'), unlessUsual(r.verificationStatus, 'confirmed'));
      break;
    case 'MedicationRequest': case 'MedicationStatement':
      parts.push(readableDateTime(dateOf(r)), ...medicationParts(r, byUrl));
      break;
    case 'Observation': {
      const when = dateOf(r);
      parts.push(readableDateTime(when), ...observationParts(r, when, byUrl));
      break;
    }
    case 'DiagnosticReport':
      parts.push(readableDateTime(dateOf(r)), ...reportParts(r, byUrl));
      break;
    case 'ImagingStudy':
      parts.push(readableDateTime(dateOf(r)), imagingStudyText(r),
        r.numberOfSeries !== undefined ? `${r.numberOfSeries} series, ${r.numberOfInstances ?? '?'} images` : undefined);
      break;
    default:
      parts.push(readableDateTime(dateOf(r)), describeOther(r));
  }
  return joinParts(parts) || r.resourceType;
}

/**
 * What a line says first for a resource tagged `identity-mismatch` by family uploads
 * (`uploads/origin.ts`: an ImagingStudy whose DICOM files name a patient other than the case's,
 * `imaging/identity.ts` — a sibling's CD, say) in `meta.tag`: that its
 * files name another patient and must be checked before use; or `sop-instance-uid-conflict`:
 * files that claim one SOP Instance UID with different content. Only that: the other patient's name or
 * identifiers are never written (the case manager sees them in the upload's review). Uploads tag only
 * ImagingStudies so today; a DocumentReference so tagged would read the same, as "files".
 * @see https://hl7.org/fhir/R4/resource.html#Meta (meta.tag)
 * @see https://hl7.org/fhir/R4/imagingstudy.html
 */
function identityMismatchText(r: FhirResource): string | undefined {
  // Runs for every line of the record: nothing allocated for the (nearly all) resources without tags.
  const tags = r.meta?.tag;
  if (!Array.isArray(tags) || tags.length === 0) return undefined;
  const flagged = (code: string): boolean => tags.some((t) => t?.system === UPLOAD_FLAG_SYSTEM && t.code === code);
  const what = r.resourceType === 'ImagingStudy' ? 'images' : 'files';
  const cautions: string[] = [];
  if (flagged('identity-mismatch')) cautions.push(`these ${what} name a patient other than the case patient`);
  // Two files claim to be one image with different content (an original and a corrected re-export):
  // both are listed, and the reader must not take either for the one the study means.
  if (flagged('sop-instance-uid-conflict')) cautions.push(`two or more of these ${what} claim the same image identity with different content`);
  return cautions.length === 0 ? undefined : `CAUTION: ${cautions.join('; ')}; check them before use`;
}

/**
 * A status the line must say because it is not the usual one (a provisional diagnosis, a resolved or
 * unconfirmed allergy): the specialist must not read it as the usual. None when absent or usual.
 * Dedupe keeps records of different status apart, so two lines may differ only by this.
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.verificationStatus
 * @see https://hl7.org/fhir/R4/allergyintolerance-definitions.html#AllergyIntolerance.clinicalStatus
 */
function unlessUsual(status: CodeableConcept | undefined, usual: string): string | undefined {
  const codes = codesOf(status);
  if (codes.length === 0 || codes.includes(usual)) return undefined;
  return ccText(status);
}

/** One narrative line for a resource, escaped XHTML. */
function describeResource(r: FhirResource, byUrl: ResourceLookup): string {
  return escapeXml(describe(r, byUrl));
}

/** Messages of one source shown in the narrative (the completeness report lists all). */
const MAX_NOTES_PER_SOURCE = 5;

/**
 * What a source's EHR said about the records it sent (its searchset OperationOutcomes: results cut to
 * a period, records withheld…), one paragraph per message: the specialist must know the record from
 * that source may be incomplete. Escaped XHTML; empty when no source said anything noteworthy.
 */
function serverNotes(sources: readonly SourceInfo[]): string {
  return sources
    .flatMap((s) => {
      const noteworthy = (s.serverMessages ?? []).filter((m) => NOTEWORTHY_SEVERITIES.has(m.severity));
      const shown = noteworthy.slice(0, MAX_NOTES_PER_SOURCE).map((m) => `<p>About the records from ${escapeXml(s.name)}, its EHR said: ${escapeXml(m.text)} (${escapeXml(m.severity)}).</p>`);
      const more = noteworthy.length - shown.length;
      if (more > 0) shown.push(`<p>${escapeXml(s.name)}'s EHR said ${more} more such thing${more === 1 ? '' : 's'}: see the completeness report.</p>`);
      return shown;
    })
    .join('');
}

/** The summary Composition and its author Device. Pure: same input, same output. */
export function buildComposition(input: CompositionInput): AssembledComposition {
  const author = input.author ?? serviceDevice();
  const grouped = new Map<SectionKey, NormalizedResource[]>();
  for (const r of input.resources) {
    const key = sectionOf(r.resource);
    if (!key) continue;
    const list = grouped.get(key);
    if (list) list.push(r);
    else grouped.set(key, [r]);
  }
  const namer = sourceNamer(input);
  const byUrl = new Map<string, FhirResource>();
  for (const r of input.resources) byUrl.set(r.fullUrl, r.resource);
  const notGranted = notGrantedBySource(input.sources ?? []);
  const section: CompositionSection[] = [];
  for (const spec of SECTIONS) {
    if (spec.key === 'reason' || spec.key === 'history') section.push(storySection(spec, input.story));
    else {
      const s = clinicalSection(spec, grouped.get(spec.key) ?? [], input, namer, byUrl, notGranted);
      if (s) section.push(s);
    }
  }
  const id = uuidV5(`assembly/composition/${input.subject}`);
  const title = input.title ?? 'Second opinion case summary';
  const sourceNames = (input.sources ?? []).map((s) => escapeXml(s.name));
  const said = serverNotes(input.sources ?? []);
  const composition: Composition = {
    resourceType: 'Composition',
    id,
    // What the EHRs said about their records is in no resource of the bundle.
    text: narrative(div(`<p>${escapeXml(title)}: records ${sourceNames.length > 0 ? `from ${sourceNames.join(', ')} ` : ''}assembled by ${SERVICE_NAME}.</p>${said}`), said !== ''),
    status: 'final',
    type: { coding: [{ system: LOINC, code: '60591-5', display: 'Patient summary Document' }] },
    subject: { reference: input.subject },
    date: input.options.timestamp,
    author: [{ reference: author.fullUrl, display: SERVICE_NAME }],
    title,
    section,
  };
  return { entry: { fullUrl: `urn:uuid:${id}`, resource: composition }, supporting: [author] };
}
