/**
 * What the line of an allergy, an Immunization, a Procedure, an Encounter, a DocumentReference or an
 * ImagingStudy says besides its date — with every status that changes how it reads: a vaccine not given
 * or given as a subpotent dose, a cancelled or planned visit, a superseded document, a reaction's severity.
 * @see https://hl7.org/fhir/R4/encounter-definitions.html#Encounter.status
 * @see https://hl7.org/fhir/R4/documentreference-definitions.html#DocumentReference.status
 * @see https://hl7.org/fhir/R4/immunization-definitions.html#Immunization.isSubpotent
 * @packageDocumentation
 */
import type { AllergyIntolerance, CodeableConcept, Coding, FhirResource, ImagingStudy } from 'fhir/r4';
import { ccText, codingText, isObject, joinParts, listOf } from './concept';

/**
 * An event's status when it is not the usual one (`completed`; `finished` for an Encounter): an
 * Immunization or Procedure `not-done`, with its reason — "not done (parent refused)" —, a procedure
 * `stopped`, an encounter `cancelled` or `planned`: without it a vaccine not given reads as given, a
 * cancelled admission as one that happened.
 * @see https://hl7.org/fhir/R4/procedure-definitions.html#Procedure.status
 */
function eventStatus(status: string | undefined, reason: CodeableConcept | undefined, usual = 'completed'): string | undefined {
  if (typeof status !== 'string' || status === usual) return undefined;
  const said = status === 'not-done' ? 'not done' : status;
  const why = ccText(reason);
  return why ? `${said} (${why})` : said;
}

/**
 * The reactions of an allergy: each one's manifestations and severity ("Anaphylaxis (severe)"); a
 * reaction without the manifestation R4 requires (1..*) shows its severity alone.
 * @see https://hl7.org/fhir/R4/allergyintolerance-definitions.html#AllergyIntolerance.reaction.severity
 */
export function reactionText(reactions: AllergyIntolerance['reaction']): string | undefined {
  const out: string[] = [];
  for (const x of listOf(reactions)) {
    if (!isObject(x)) continue;
    const what = listOf(x.manifestation).map((m) => ccText(m)).filter(Boolean).join(', ');
    const severity = typeof x.severity === 'string' ? x.severity : undefined;
    if (what && severity) out.push(`${what} (${severity})`);
    else if (what) out.push(what);
    else if (severity) out.push(`${severity} reaction`);
  }
  return out.join(', ') || undefined;
}

/** Distinct texts of codings, in order of first appearance. */
function distinct(codings: readonly (Coding | undefined)[]): string[] {
  const out: string[] = [];
  for (const c of codings) {
    const t = codingText(c);
    if (t !== undefined && !out.includes(t)) out.push(t);
  }
  return out;
}

/**
 * What an ImagingStudy is: its description, else its procedure, else the modalities and body sites of
 * its series ("MR of Brain"); none when it says none of these.
 * @see https://hl7.org/fhir/R4/imagingstudy-definitions.html#ImagingStudy.series.modality
 */
export function imagingStudyText(r: ImagingStudy): string | undefined {
  if (r.description) return r.description;
  const procedure = ccText(listOf(r.procedureCode)[0]);
  if (procedure) return procedure;
  const series = listOf(r.series).filter((s) => isObject(s));
  const modalities = distinct(series.length > 0 ? series.map((s) => s.modality) : listOf(r.modality));
  const sites = distinct(series.map((s) => s.bodySite));
  if (modalities.length === 0 && sites.length === 0) return undefined;
  if (sites.length === 0) return modalities.join(', ');
  return modalities.length === 0 ? sites.join(', ') : `${modalities.join(', ')} of ${sites.join(', ')}`;
}

/** What an Immunization, Procedure, Encounter or DocumentReference says besides its date (empty when nothing). */
export function describeOther(r: FhirResource): string | undefined {
  switch (r.resourceType) {
    case 'Immunization':
      return joinParts([ccText(r.vaccineCode), eventStatus(r.status, r.statusReason), r.isSubpotent === true ? 'subpotent dose' : undefined]);
    case 'Procedure': return joinParts([ccText(r.code), eventStatus(r.status, r.statusReason)]);
    case 'Encounter':
      return joinParts([joinParts([ccText(listOf(r.type)[0]) ?? codingText(r.class), r.serviceProvider?.display], ', '), eventStatus(r.status, undefined, 'finished')]);
    case 'DocumentReference':
      return joinParts([
        joinParts([ccText(r.type), r.description], ': '),
        r.status === 'superseded' ? 'superseded' : undefined,
        typeof r.docStatus === 'string' && r.docStatus !== 'final' ? r.docStatus : undefined,
      ]);
    default: return undefined;
  }
}
