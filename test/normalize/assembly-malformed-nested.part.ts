/**
 * One malformed resource never stops the assembly of a case (audited defect: an
 * AllergyIntolerance `reaction` without `manifestation` threw in the Composition's narrative).
 *
 * For each clinical type, resources with ONE required nested element missing (R4 min 1 inside a
 * backbone element or an Annotation), sent by both care teams so de-duplication merges them too:
 * - the full path (normalize → dedupe → Provenance → Composition → document Bundle) succeeds, every
 *   raw input is accounted for (an entry, merged into one, or left out with a reason), and the bundle
 *   validates with zero errors;
 * - the steps after normalize, given such a resource directly (as if it had passed the structure
 *   checks), do not throw: the resource is listed and described with what it has.
 * @see https://hl7.org/fhir/R4/conformance-rules.html#cardinality
 */
import type { Bundle, BundleEntry, Composition, FhirResource, ImagingStudy, ImagingStudySeries } from 'fhir/r4';
import { unresolvedReferences } from '../../src/normalize/bundle';
import { describe as describeResource, sectionOf } from '../../src/normalize/composition';
import { dedupeImagingStudies } from '../../src/normalize/dedupe/index';
import { normalize } from '../../src/normalize/normalize';
import { checkStructure } from '../../src/normalize/structure';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import type { NormalizedResource, NormalizeResult, RawInput } from '../../src/normalize/types';
import { bundleValidationErrors } from '../support/fhir-validation';
import { fixtureIntake } from '../support/fixture-child';
import { assemble, CASE_ID, fakeNormalize, SOURCE_A, SOURCE_B } from './assembly-support';
import { rawFromBundle } from './normalize-support';

const SNOMED = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const CHILD = 'child';
const subject = { reference: `Patient/${CHILD}` };

/** One resource of each clinical type, valid, each with the nested elements the cases below remove. */
const WELL_FORMED: readonly FhirResource[] = [
  {
    resourceType: 'AllergyIntolerance', id: 'al', patient: subject,
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] }, code: { coding: [{ system: SNOMED, code: '91935009', display: 'Peanut allergy' }] },
    reaction: [{ manifestation: [{ text: 'Hives' }], severity: 'moderate' }],
  },
  { resourceType: 'Condition', id: 'co', subject, code: { coding: [{ system: SNOMED, code: '195967001', display: 'Asthma' }] }, onsetDateTime: '2024-05-01', note: [{ text: 'Since age 3' }] },
  {
    resourceType: 'Encounter', id: 'en', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' }, subject,
    period: { start: '2026-03-02T09:00:00Z', end: '2026-03-02T10:00:00Z' },
    statusHistory: [{ status: 'finished', period: { start: '2026-03-02T09:00:00Z' } }],
    classHistory: [{ class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, period: { start: '2026-03-02T09:00:00Z' } }],
    diagnosis: [{ condition: { display: 'Asthma' } }], location: [{ location: { display: 'Clinic 3' } }],
  },
  {
    resourceType: 'Observation', id: 'ob', status: 'final', code: { coding: [{ system: LOINC, code: '85354-9', display: 'Blood pressure panel' }] }, subject,
    effectiveDateTime: '2026-03-02T09:20:00Z',
    component: [{ code: { coding: [{ system: LOINC, code: '8480-6', display: 'Systolic blood pressure' }] }, valueQuantity: { value: 110, unit: 'mm[Hg]', system: UCUM, code: 'mm[Hg]' } }],
  },
  {
    resourceType: 'DiagnosticReport', id: 'dr', status: 'final', code: { text: 'Chest X-ray report' }, subject, identifier: [{ system: 'https://lab.example.org/acc', value: 'ACC1' }],
    media: [{ link: { display: 'Frontal view' } }],
  },
  {
    resourceType: 'DocumentReference', id: 'doc', status: 'current', subject, type: { text: 'Clinic note' },
    content: [{ attachment: { contentType: 'text/plain', data: Buffer.from('clinic note').toString('base64') } }],
    relatesTo: [{ code: 'appends', target: { display: 'Earlier note' } }],
  },
  {
    resourceType: 'ImagingStudy', id: 'im', status: 'available', subject, identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:2.25.1' }],
    series: [{
      uid: '2.25.2', modality: { system: DCM, code: 'DX' }, performer: [{ actor: { display: 'Technologist' } }],
      instance: [{ uid: '2.25.3', sopClass: { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.1' } }],
    }],
  },
  {
    resourceType: 'Immunization', id: 'iz', status: 'completed', vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '20' }] }, patient: subject,
    occurrenceDateTime: '2025-01-10', performer: [{ actor: { display: 'Nurse' } }], protocolApplied: [{ doseNumberPositiveInt: 1 }],
  },
  {
    resourceType: 'Procedure', id: 'pr', status: 'completed', subject, code: { coding: [{ system: SNOMED, code: '80146002', display: 'Appendectomy' }] }, performedDateTime: '2025-06-01',
    performer: [{ actor: { display: 'Surgeon' } }], focalDevice: [{ manipulated: { display: 'Drain' } }],
  },
  {
    resourceType: 'MedicationRequest', id: 'mr', status: 'active', intent: 'order', subject, authoredOn: '2026-03-02',
    medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '197361' }] }, substitution: { allowedBoolean: false },
  },
  { resourceType: 'MedicationStatement', id: 'ms', status: 'active', subject, medicationCodeableConcept: { text: 'Vitamin D' }, note: [{ text: 'Taken daily' }] },
  { resourceType: 'Medication', id: 'me', code: { text: 'Amoxicillin' }, ingredient: [{ itemCodeableConcept: { text: 'amoxicillin' } }] },
];

/** One required nested element to remove: `path` from the resource root to the element's holder, then the element. */
interface Case {
  readonly resourceType: string;
  readonly path: readonly string[];
  readonly element: string;
}

const CASES: readonly Case[] = [
  { resourceType: 'AllergyIntolerance', path: ['reaction'], element: 'manifestation' },
  { resourceType: 'Condition', path: ['note'], element: 'text' },
  { resourceType: 'Encounter', path: ['statusHistory'], element: 'status' },
  { resourceType: 'Encounter', path: ['classHistory'], element: 'class' },
  { resourceType: 'Encounter', path: ['diagnosis'], element: 'condition' },
  { resourceType: 'Encounter', path: ['location'], element: 'location' },
  { resourceType: 'Observation', path: ['component'], element: 'code' },
  { resourceType: 'DiagnosticReport', path: ['media'], element: 'link' },
  { resourceType: 'DocumentReference', path: ['content'], element: 'attachment' },
  { resourceType: 'DocumentReference', path: ['relatesTo'], element: 'target' },
  { resourceType: 'ImagingStudy', path: ['series'], element: 'uid' },
  { resourceType: 'ImagingStudy', path: ['series'], element: 'modality' },
  { resourceType: 'ImagingStudy', path: ['series', 'instance'], element: 'uid' },
  { resourceType: 'ImagingStudy', path: ['series', 'performer'], element: 'actor' },
  { resourceType: 'Immunization', path: ['performer'], element: 'actor' },
  { resourceType: 'Immunization', path: ['protocolApplied'], element: 'doseNumberPositiveInt' },
  { resourceType: 'Procedure', path: ['performer'], element: 'actor' },
  { resourceType: 'Procedure', path: ['focalDevice'], element: 'manipulated' },
  { resourceType: 'MedicationRequest', path: ['substitution'], element: 'allowedBoolean' },
  { resourceType: 'MedicationStatement', path: ['note'], element: 'text' },
  { resourceType: 'Medication', path: ['ingredient'], element: 'itemCodeableConcept' },
];

type Json = { [key: string]: unknown };

/** The objects at `path` under `holder` (arrays flattened). */
function at(holder: unknown, path: readonly string[]): Json[] {
  if (Array.isArray(holder)) return holder.flatMap((h) => at(h, path));
  if (typeof holder !== 'object' || holder === null) return [];
  const [head, ...rest] = path;
  return head === undefined ? [holder as Json] : at((holder as Json)[head], rest);
}

/** A copy of the well-formed resource of the case's type without the case's element. */
function malformed(c: Case): FhirResource {
  const base = WELL_FORMED.find((r) => r.resourceType === c.resourceType);
  if (!base) throw new Error(`no well-formed ${c.resourceType}`);
  const copy = JSON.parse(JSON.stringify(base)) as FhirResource;
  for (const holder of at(copy, c.path)) delete holder[c.element];
  return copy;
}

const label = (c: Case): string => `${c.resourceType}.${[...c.path, c.element].join('.')}`;

/** The child's Patient and the resources, as two sources' raw inputs (both sent the same). */
function rawOf(...resources: FhirResource[]): RawInput[] {
  const child: FhirResource = { resourceType: 'Patient', id: CHILD, name: [{ family: 'Fixture', given: ['Child'] }] };
  const bundle: Bundle = { resourceType: 'Bundle', type: 'collection', entry: [child, ...resources].map((resource) => ({ resource })) };
  return [...rawFromBundle(bundle, SOURCE_A.sourceId), ...rawFromBundle(bundle, SOURCE_B.sourceId)];
}

const sources = [SOURCE_A, SOURCE_B].map((s) => ({ ...s, remotePatientId: CHILD }));
const mappings = loadTerminologyMappings();

/** normalize → dedupe → Provenance → Composition → document Bundle, as test/normalize assembles. */
function assembleRaw(raw: RawInput[]): { normalized: NormalizeResult; bundle: Bundle; mergedKeys: Set<string>; entryKeys: Set<string> } {
  const normalized = normalize({ caseId: CASE_ID, intake: fixtureIntake(), sources, raw, mappings });
  const { bundle, deduped } = assemble(normalized.resources, undefined, sources);
  const urls = new Set((bundle.entry ?? []).map((e: BundleEntry) => e.fullUrl));
  const entryKeys = new Set(deduped.resources.filter((r) => urls.has(r.fullUrl)).map((r) => r.key));
  const mergedKeys = new Set(deduped.merges.filter((m) => urls.has(m.survivor)).flatMap((m) => m.mergedKeys));
  return { normalized, bundle, mergedKeys, entryKeys };
}

describe('the full assembly path over resources missing one required nested element', () => {
  it('assembles the well-formed resources into a valid bundle (the baseline of the cases below)', () => {
    const raw = rawOf(...WELL_FORMED);
    const { normalized, bundle } = assembleRaw(raw);
    expect(normalized.leftOut).toEqual([]);
    expect(bundleValidationErrors(bundle)).toEqual([]);
  });

  it.each(CASES.map((c) => [label(c), c] as const))('%s: succeeds, accounts for every input, validates', (_name, c) => {
    const raw = rawOf(malformed(c));
    const { normalized, bundle, mergedKeys, entryKeys } = assembleRaw(raw);
    const leftOut = new Map(normalized.leftOut.map((l) => [l.key, l.reason]));
    for (const r of raw) {
      const key = `${r.sourceId}|${r.resourceType}|${r.remoteId}`;
      const where = entryKeys.has(key) ? 'entry' : mergedKeys.has(key) ? 'merged' : leftOut.has(key) ? 'left out' : 'lost';
      expect({ key, where }).not.toEqual({ key, where: 'lost' });
      if (where === 'left out') expect(leftOut.get(key)).toMatch(/^structure: .*lacks required/);
    }
    expect(unresolvedReferences(bundle)).toEqual([]);
    expect(bundleValidationErrors(bundle)).toEqual([]);
  });
});

describe('after normalize, a resource missing a required nested element is described with what it has', () => {
  it.each(CASES.map((c) => [label(c), c] as const))('%s', (_name, c) => {
    const resource = malformed(c);
    const normalized = fakeNormalize([{ info: SOURCE_A, resources: [resource] }, { info: SOURCE_B, resources: [resource] }]);
    const { bundle, deduped } = assemble(normalized);
    const composition = bundle.entry?.[0]?.resource as Composition;
    const listed = new Set(composition.section?.flatMap((s) => s.entry ?? []).map((e) => e.reference));
    const ofType = deduped.resources.filter((r) => r.resource.resourceType === c.resourceType);
    // At least one to describe (else the loop below would check nothing).
    expect(ofType.length).toBeGreaterThan(0);
    for (const r of ofType) {
      expect(describeResource(r.resource, new Map())).not.toBe('');
      if (c.resourceType !== 'Medication') expect(listed.has(r.fullUrl)).toBe(true);
    }
  });

  it('lists the reaction of an allergy even when one of its reactions has no manifestation', () => {
    const allergy = malformed(CASES[0] as Case);
    if (allergy.resourceType !== 'AllergyIntolerance') throw new Error('not an allergy');
    allergy.reaction = [...(allergy.reaction ?? []), { manifestation: [{ text: 'Wheezing' }] }];
    // The reaction without its manifestation still says how severe it was.
    expect(describeResource(allergy, new Map())).toBe('Peanut allergy — moderate reaction, Wheezing');
  });

  it('assembles two Encounters without the class R4 requires (de-duplicated, described) without throwing', () => {
    const encounter = JSON.parse(JSON.stringify(WELL_FORMED.find((r) => r.resourceType === 'Encounter'))) as Json;
    delete encounter['class'];
    const resource = encounter as unknown as FhirResource;
    const { bundle, deduped } = assemble(fakeNormalize([{ info: SOURCE_A, resources: [resource] }, { info: SOURCE_B, resources: [resource] }]));
    expect(deduped.resources.filter((r) => r.resource.resourceType === 'Encounter')).toHaveLength(2);
    expect(JSON.stringify(bundle.entry?.[0]?.resource)).toContain('2026-03-02 09:00 (UTC)');
  });

  it('describes a Condition whose coding is not a list (malformed) by its text, and places it by what it can read', () => {
    const condition = { resourceType: 'Condition', id: 'co', subject, code: { text: 'Asthma', coding: { code: 'x' } }, clinicalStatus: { coding: 'active' } } as unknown as FhirResource;
    expect(describeResource(condition, new Map())).toBe('Asthma');
    expect(sectionOf(condition)).toBe('problems');
  });

  it('describes an Encounter whose class is missing by its other elements', () => {
    const encounter = { ...(WELL_FORMED.find((r) => r.resourceType === 'Encounter') as FhirResource) } as Json;
    delete encounter['class'];
    expect(describeResource(encounter as unknown as FhirResource, new Map())).toBe('2026-03-02 09:00 (UTC)');
  });
});

describe('structure checks of required nested elements', () => {
  const raw = (resource: FhirResource): RawInput => rawOf(resource)[1] as RawInput;

  it.each(CASES.map((c) => [label(c), c] as const))('%s: left out with the element named', (_name, c) => {
    expect(checkStructure(raw(malformed(c)))).toBe(`structure: ${c.resourceType} lacks required ${[c.resourceType, ...c.path, c.element.replace(/(PositiveInt|String|Boolean|CodeableConcept|Reference)$/, '[x]')].join('.')}`);
  });

  it('passes the well-formed resources, and a backbone element that is absent', () => {
    for (const r of WELL_FORMED) expect(checkStructure(raw(r))).toBeUndefined();
    const bare: FhirResource = { resourceType: 'AllergyIntolerance', id: 'al', patient: subject };
    expect(checkStructure(raw(bare))).toBeUndefined();
  });

  it('leaves out a backbone element that is not an object', () => {
    const odd = { resourceType: 'AllergyIntolerance', id: 'al', patient: subject, reaction: ['hives'] } as unknown as FhirResource;
    expect(checkStructure(raw(odd))).toBe('structure: AllergyIntolerance lacks required AllergyIntolerance.reaction.manifestation');
  });
});

describe('de-duplication of a study whose series lack their uid', () => {
  const study = (sourceId: string, series: ImagingStudySeries[]): NormalizedResource => ({
    key: `${sourceId}|ImagingStudy|im`, fullUrl: `urn:uuid:00000000-0000-5000-8000-00000000000${sourceId === 'a' ? 1 : 2}`, sourceId, origin: 'local-ehr',
    resource: { resourceType: 'ImagingStudy', id: 'im', status: 'available', subject, identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:2.25.1' }], series },
  });
  const dx = { system: DCM, code: 'DX' };
  const ct = { system: DCM, code: 'CT' };

  it('never joins two different series because neither has a uid', () => {
    const r = dedupeImagingStudies([study('a', [{ modality: dx, endpoint: [{ reference: 'urn:uuid:e-a' }] } as ImagingStudySeries]), study('b', [{ modality: ct } as ImagingStudySeries])]);
    expect(r.merges).toHaveLength(1);
    const series = (r.survivors[0]?.resource as ImagingStudy).series ?? [];
    expect(series.map((x) => x.modality.code).sort()).toEqual(['CT', 'DX']);
    expect(series.find((x) => x.modality.code === 'CT')?.endpoint).toBeUndefined();
  });

  it('keeps one of two equal series without uid', () => {
    const r = dedupeImagingStudies([study('a', [{ modality: dx } as ImagingStudySeries]), study('b', [{ modality: dx } as ImagingStudySeries])]);
    expect((r.survivors[0]?.resource as ImagingStudy).series).toHaveLength(1);
  });
});
