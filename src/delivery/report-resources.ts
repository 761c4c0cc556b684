/**
 * The FHIR R4 resources a signed opinion becomes in the referring physician's EHR:
 * - a DiagnosticReport following US Core DiagnosticReport for Report and Note Exchange
 *   (https://hl7.org/fhir/us/core/StructureDefinition-us-core-diagnosticreport-note.html): code LOINC
 *   11488-4 Consult note, the PDF as `presentedForm` (size, SHA-1), the specialist as a contained
 *   Practitioner (performer and resultsInterpreter), identifier `{REPORT_IDENTIFIER_SYSTEM}|{case}-v{n}`;
 * - where the EHR takes them, a DocumentReference (US Core clinical-note, 11488-4; `relatesTo`
 *   replaces the previous version's) and a Communication to the referring physician about the report.
 *
 * Status, per recipient ({@link statusAtRecipient}): a version is `amended` only in a chart that holds
 * an earlier version of the case's report; everywhere else, whatever its number, it is `final` and
 * its DocumentReference replaces nothing.
 *
 * Category: US Core's `us-core` category slice holds only Cardiology, Radiology and Pathology
 * (LP29708-2, LP29684-5, LP7839-6), none of which a second-opinion consult is; the slicing is open, so
 * the report carries the base R4 diagnostic service section `PHY` (Physician) from HL7 v2 table 0074
 * (https://hl7.org/fhir/R4/valueset-diagnostic-service-sections.html) instead of a wrong specialty.
 * @packageDocumentation
 */
import type { Attachment, Communication, DiagnosticReport, DocumentReference, HumanName, Practitioner, Reference } from 'fhir/r4';
import { NPI_SYSTEM } from '../cases/fhir-codes';
import type { StoredOpinion } from '../opinion/opinion-repository';
import type { SpecialistIdentity } from '../opinion/opinion-schema';
import { fhirText } from '../fhir/fhir-text';

/** Identifier system of delivered reports (value `{case id}-v{version}`). */
export const REPORT_IDENTIFIER_SYSTEM = 'https://second-opinion.example.org/fhir/opinion-report';
/** Identifier system of the Communication announcing a report (value `{case id}-v{version}`). */
export const REPORT_COMMUNICATION_SYSTEM = 'https://second-opinion.example.org/fhir/opinion-report-communication';
/** Identifier system of the program's specialists when they have no NPI (value = token subject). */
export const SPECIALIST_IDENTIFIER_SYSTEM = 'https://second-opinion.example.org/fhir/specialist';

/** LOINC 11488-4 Consult note (https://loinc.org/11488-4). */
export const LOINC_CONSULT_NOTE = { system: 'http://loinc.org', code: '11488-4', display: 'Consult note' } as const;
/** Profile of the delivered DiagnosticReport. */
export const US_CORE_DR_NOTE = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-note';
/** Profile of the delivered DocumentReference (https://hl7.org/fhir/us/core/StructureDefinition-us-core-documentreference.html). */
export const US_CORE_DOCREF = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference';

/**
 * `DiagnosticReport.status` of a delivered version (https://hl7.org/fhir/R4/valueset-diagnostic-report-status.html):
 * `final`, or `amended` when it changes a report already released into that chart.
 */
export type ReportStatus = 'final' | 'amended';

/** An earlier version's delivery to the same recipient, as far as the status of a later one depends on it. */
export interface EarlierDelivery {
  readonly version: number;
  /** The recipient's ids of what that delivery wrote there. */
  readonly remoteIds: { readonly DiagnosticReport?: string; readonly DocumentReference?: string };
}

/** How a version goes into one recipient's chart: its status there, and the DocumentReference it replaces there, if any. */
export interface StatusAtRecipient {
  readonly status: ReportStatus;
  /** The recipient's id of the latest earlier version's DocumentReference (for `relatesTo: replaces`); only when `amended`. */
  readonly previousDocumentId?: string;
  /** The recipient's id of the latest earlier version's DiagnosticReport (the one an `amended` report replaces there). */
  readonly previousReportId?: string;
}

/**
 * The status of a version at one recipient, decided by what that recipient's chart holds, not by
 * the version number: `amended` only when an earlier version's DiagnosticReport was written there
 * (https://hl7.org/fhir/R4/valueset-diagnostic-report-status.html: amended = "subsequently modified
 * after being final"); a recipient that never got an earlier version (added later, or its delivery
 * failed, was cancelled or superseded before writing) gets a `final` report replacing nothing
 * (`relatesTo` must point at a document there:
 * https://hl7.org/fhir/R4/documentreference-definitions.html#DocumentReference.relatesTo).
 * @param earlier the deliveries of earlier versions to this recipient (any order, any state)
 */
export function statusAtRecipient(earlier: readonly EarlierDelivery[]): StatusAtRecipient {
  const inChart = earlier.filter((d) => d.remoteIds.DiagnosticReport).sort((a, b) => a.version - b.version);
  if (inChart.length === 0) return { status: 'final' };
  // The newest note there (a recipient may have taken DocumentReferences for some versions only).
  const previousDocumentId = inChart.map((d) => d.remoteIds.DocumentReference).filter((id): id is string => Boolean(id)).pop();
  const previousReportId = inChart[inChart.length - 1]?.remoteIds.DiagnosticReport;
  return { status: 'amended', ...(previousDocumentId ? { previousDocumentId } : {}), ...(previousReportId ? { previousReportId } : {}) };
}

/** What a report version needs to become FHIR. */
export interface ReportFacts {
  readonly caseId: string;
  readonly version: number;
  /** Its status at this recipient ({@link statusAtRecipient}), not the version's number. */
  readonly status: ReportStatus;
  /** The recipient's id of the DiagnosticReport an `amended` one replaces there ({@link statusAtRecipient}). */
  readonly replacesReportId?: string;
  readonly content: StoredOpinion;
  readonly specialist: SpecialistIdentity;
  readonly signedAt: Date;
  readonly pdf: Uint8Array;
  readonly pdfSha1Base64: string;
  readonly title: string;
  /** The child's Patient id at the recipient. */
  readonly patientId: string;
  readonly programName: string;
}

/** `{case id}-v{version}`: the value of every identifier of one version. */
export const reportIdentifierValue = (caseId: string, version: number): string => `${caseId}-v${version}`;

/** Search parameter value for a conditional create / search of one version. */
export const reportIdentifierToken = (caseId: string, version: number, system = REPORT_IDENTIFIER_SYSTEM): string =>
  `${system}|${reportIdentifierValue(caseId, version)}`;

/**
 * Text as the content of an XHTML element (the narrative must be well-formed XML): a FHIR string
 * ({@link fhirText}), markup escaped, and the two characters XML 1.0 excludes beyond the controls
 * (U+FFFE, U+FFFF; https://www.w3.org/TR/xml/#charsets) and any unpaired surrogate as U+FFFD.
 */
const escapeXhtml = (s: string): string =>
  fhirText(s)
    .replace(/[\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');

/**
 * Name parts as FHIR strings, blank ones left out: a FHIR string is never empty, nor is a list
 * (https://hl7.org/fhir/R4/json.html#primitive, https://hl7.org/fhir/R4/formats.html#wire), so a
 * directory name with no given name has no `given` at all, not `[]`.
 */
const nameParts = (values: readonly string[] | undefined): string[] => (values ?? []).map(fhirText).filter((v) => v.trim() !== '');

/** The specialist's name as a FHIR HumanName: the display text, and the parts where the directory has them. */
function humanNameOf(s: SpecialistIdentity): HumanName {
  const parts = s.humanName;
  if (!parts) return { text: fhirText(s.name) };
  const [given, prefix, suffix] = [nameParts(parts.given), nameParts(parts.prefix), nameParts(parts.suffix)];
  return {
    text: fhirText(s.name),
    family: fhirText(parts.family),
    ...(given.length > 0 ? { given } : {}),
    ...(prefix.length > 0 ? { prefix } : {}),
    ...(suffix.length > 0 ? { suffix } : {}),
  };
}

function specialistPractitioner(s: SpecialistIdentity): Practitioner {
  return {
    resourceType: 'Practitioner',
    id: 'specialist',
    identifier: [s.npi ? { system: NPI_SYSTEM, value: s.npi } : { system: SPECIALIST_IDENTIFIER_SYSTEM, value: s.sub }],
    // US Core Practitioner requires name.family: given in parts where the specialist directory has them.
    name: [humanNameOf(s)],
  };
}

function pdfAttachment(f: ReportFacts): Attachment {
  return {
    contentType: 'application/pdf',
    language: 'en-US',
    data: Buffer.from(f.pdf).toString('base64'),
    size: f.pdf.length,
    hash: f.pdfSha1Base64,
    title: fhirText(f.title),
    creation: f.signedAt.toISOString(),
  };
}

/**
 * The conclusion: the summary as a FHIR string ({@link fhirText}), cut at 4,000 UTF-16 units (the PDF
 * holds everything), never inside a surrogate pair: half an emoji is not a FHIR string (a sequence
 * of Unicode characters) and a PostgreSQL-backed server refuses it.
 */
export function conclusion(content: Pick<StoredOpinion, 'summary'>): string {
  const summary = fhirText(content.summary);
  if (summary.length <= 4000) return summary;
  let end = 3999;
  const last = summary.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${summary.slice(0, end)}…`;
}

/**
 * The R4 core extension by which a report names the report it replaces
 * (https://hl7.org/fhir/R4/extension-diagnosticreport-replaces.html). R4 has no status that marks a
 * DiagnosticReport superseded, and each version is its own resource (its own identifier, written
 * exactly once): without it the chart holds a `final` and an `amended` consult report side by side
 * with nothing saying which replaced which.
 */
export const DIAGNOSTIC_REPORT_REPLACES = 'http://hl7.org/fhir/StructureDefinition/diagnosticReport-replaces';

/**
 * The DiagnosticReport of one version (US Core DiagnosticReport Note); an `amended` one names the
 * report it replaces at the recipient ({@link DIAGNOSTIC_REPORT_REPLACES}) when known. A `final` one
 * replaces nothing there.
 */
export function buildDiagnosticReport(f: ReportFacts): DiagnosticReport {
  const specialistRef: Reference = { reference: '#specialist', display: fhirText(f.specialist.name) };
  const replaced = f.status === 'amended' ? f.replacesReportId : undefined;
  return {
    resourceType: 'DiagnosticReport',
    meta: { profile: [US_CORE_DR_NOTE] },
    ...(replaced ? { extension: [{ url: DIAGNOSTIC_REPORT_REPLACES, valueReference: { reference: `DiagnosticReport/${replaced}` } }] } : {}),
    language: 'en-US',
    text: {
      status: 'generated',
      div: `<div xmlns="http://www.w3.org/1999/xhtml"><p><b>${escapeXhtml(f.title)}</b></p><p>${escapeXhtml(conclusion(f.content))}</p><p>Signed by ${escapeXhtml(f.specialist.name)}. The full report is attached as PDF.</p></div>`,
    },
    contained: [specialistPractitioner(f.specialist)],
    identifier: [{ system: REPORT_IDENTIFIER_SYSTEM, value: reportIdentifierValue(f.caseId, f.version) }],
    status: f.status,
    category: [
      {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'PHY', display: 'Physician' }],
        text: 'Second opinion consult',
      },
    ],
    code: { coding: [{ ...LOINC_CONSULT_NOTE }], text: 'Second opinion consult note' },
    subject: { reference: `Patient/${f.patientId}` },
    effectiveDateTime: f.signedAt.toISOString(),
    issued: f.signedAt.toISOString(),
    performer: [specialistRef],
    resultsInterpreter: [specialistRef],
    conclusion: conclusion(f.content),
    presentedForm: [pdfAttachment(f)],
  };
}

/**
 * The DocumentReference of one version (US Core clinical note); an `amended` one `replaces` the
 * previous version's when known. A `final` one replaces nothing, whatever `previousDocumentId` says
 * (https://hl7.org/fhir/R4/documentreference-definitions.html#DocumentReference.relatesTo).
 */
export function buildDocumentReference(f: ReportFacts, reportReference: string, previousDocumentId?: string): DocumentReference {
  const replaced = f.status === 'amended' ? previousDocumentId : undefined;
  return {
    resourceType: 'DocumentReference',
    meta: { profile: [US_CORE_DOCREF] },
    contained: [specialistPractitioner(f.specialist)],
    masterIdentifier: { system: REPORT_IDENTIFIER_SYSTEM, value: reportIdentifierValue(f.caseId, f.version) },
    identifier: [{ system: REPORT_IDENTIFIER_SYSTEM, value: reportIdentifierValue(f.caseId, f.version) }],
    status: 'current',
    docStatus: f.status === 'amended' ? 'amended' : 'final',
    type: { coding: [{ ...LOINC_CONSULT_NOTE }], text: 'Second opinion consult note' },
    category: [
      { coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category', code: 'clinical-note', display: 'Clinical Note' }] },
    ],
    subject: { reference: `Patient/${f.patientId}` },
    date: f.signedAt.toISOString(),
    author: [{ reference: '#specialist', display: fhirText(f.specialist.name) }],
    description: fhirText(f.title),
    ...(replaced ? { relatesTo: [{ code: 'replaces' as const, target: { reference: `DocumentReference/${replaced}` } }] } : {}),
    content: [
      {
        attachment: pdfAttachment(f),
        format: { system: 'http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode', code: 'urn:ihe:iti:xds:2017:mimeTypeSufficient', display: 'mimeType Sufficient' },
      },
    ],
    context: { related: [{ reference: reportReference }] },
  };
}

/** The Communication telling the referring physician the report is in their EHR. */
export function buildCommunication(f: ReportFacts, reportReference: string, recipient: Reference): Communication {
  const what = f.status === 'amended' ? `An amended second opinion report (version ${f.version})` : 'The second opinion report';
  return {
    resourceType: 'Communication',
    identifier: [{ system: REPORT_COMMUNICATION_SYSTEM, value: reportIdentifierValue(f.caseId, f.version) }],
    status: 'completed',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/communication-category', code: 'notification', display: 'Notification' }] }],
    priority: 'routine',
    subject: { reference: `Patient/${f.patientId}` },
    topic: { text: 'Second opinion report available' },
    about: [{ reference: reportReference }],
    sent: new Date().toISOString(),
    recipient: [recipient],
    sender: { display: f.programName },
    payload: [
      { contentString: fhirText(`${what} from the ${f.programName} is available for your patient, signed by ${f.specialist.name}.`) },
      { contentReference: { reference: reportReference, display: fhirText(f.title) } },
    ],
  };
}
