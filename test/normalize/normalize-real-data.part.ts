/**
 * Normalization of every real patient bundle in shared/data (read in place): each bundle's entries
 * are the raw resources of one source.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, Observation } from 'fhir/r4';
import { casePatientFullUrl } from '../../src/normalize/case-patient';
import { normalize, type NormalizeInput } from '../../src/normalize/normalize';
import { collectReferences } from '../../src/normalize/references';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import { intakeFor, patientOf, readBundle, SHARED_DATA } from '../support/synthea';
import { accountingProblems, countReferences, danglingReferences, rawFromBundle, sourceInfo, validationErrors } from './normalize-support';

const PATIENT_BUNDLES = ['synthea-smart', 'synthea-hiv', 'inferno-uscore'].flatMap((dir) =>
  fs.readdirSync(path.join(SHARED_DATA, 'fhir', dir))
    .filter((f) => f.endsWith('.json') && !f.startsWith('hospitalInformation') && !f.startsWith('practitionerInformation'))
    .sort()
    .map((f) => `fhir/${dir}/${f}`));

const HIV_REFERENCE_DATA = ['fhir/synthea-hiv/hospitalInformation1633536936158.json', 'fhir/synthea-hiv/practitionerInformation1633536936158.json'];
const CASE_ID = 'real-data-case';
const UNRESOLVED = new Set(['unresolved-reference', 'ambiguous-reference']);

function inputFor(file: string, extra: Bundle[] = []): NormalizeInput {
  const bundle = readBundle(file);
  const base = `https://ehr.example.org/${path.basename(path.dirname(file))}/fhir`;
  return {
    caseId: CASE_ID,
    intake: intakeFor(patientOf(bundle)),
    sources: [sourceInfo('src-1', base, { name: path.basename(file, '.json') })],
    raw: [bundle, ...extra].flatMap((b) => rawFromBundle(b, 'src-1')),
    mappings: loadTerminologyMappings(),
  };
}

it('finds the 12 patient bundles', () => {
  expect(PATIENT_BUNDLES).toHaveLength(12);
});

describe.each(PATIENT_BUNDLES)('%s', (file) => {
  const input = inputFor(file);
  const result = normalize(input);

  it('accounts for every raw input (resource or left out)', () => {
    expect(accountingProblems(input.raw, result)).toEqual([]);
    expect(result.leftOut).toEqual([]);
  });

  it('leaves no reference dangling: each resolves inside the output or was dropped with a warning', () => {
    expect(danglingReferences(result)).toEqual([]);
    const before = countReferences(input.raw.map((r) => r.resource));
    const after = countReferences(result.resources.slice(1).map((r) => r.resource));
    const dropped = result.warnings.filter((w) => UNRESOLVED.has(w.code)).length;
    expect(before - after).toBe(dropped);
  });

  it('points the subject of every clinical resource at the case Patient', () => {
    const caseUrl = casePatientFullUrl(CASE_ID);
    for (const r of result.resources) {
      const subject = (r.resource as { subject?: { reference?: string } }).subject?.reference;
      if (subject && subject.startsWith('urn:uuid:') && (r.resource.resourceType === 'Observation' || r.resource.resourceType === 'Condition')) {
        expect(subject).toBe(caseUrl);
      }
    }
    expect(result.casePatient.link).toHaveLength(1);
  });

  it('validates with @medplum/core: zero errors', () => {
    expect(result.resources.flatMap((r) => validationErrors(r.resource))).toEqual([]);
  });

  it('is deterministic, and the same when normalizing in place (consumeRaw)', () => {
    expect(normalize(inputFor(file))).toEqual(result);
    expect(normalize({ ...inputFor(file), consumeRaw: true })).toEqual(result);
  });
});

describe('Synthea-HIV specifics', () => {
  const file = PATIENT_BUNDLES.find((f) => f.includes('Alva958')) ?? '';

  it('flags the OpenMRS concept ids under the LOINC and SNOMED CT systems as unmapped and warns, without changing them', () => {
    const input = inputFor(file);
    const result = normalize(input);
    const openmrs = result.unmappedCodes.filter((u) => u.system === 'http://loinc.org');
    expect(openmrs.length).toBeGreaterThan(10);
    for (const u of openmrs) expect(u.code).toMatch(/^\d+A+$/);
    const flagged = result.warnings.filter((w) => w.code === 'invalid-loinc-code' || w.code === 'invalid-snomed-code');
    const coded = (r: Record<string, unknown>): string => JSON.stringify([r['code'], r['valueCodeableConcept'], r['category'], r['component']]);
    expect(new Set(flagged.map((w) => w.key)).size).toBe(input.raw.filter((r) => /"\d+A{8,}"/.test(coded(r.resource))).length);
    // OpenMRS ids sit under SNOMED CT too, e.g. Condition "Tuberculosis" 112141AAAA…
    expect(result.unmappedCodes).toContainEqual(expect.objectContaining({ resourceType: 'Condition', system: 'http://snomed.info/sct', code: '112141AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }));
    const weight = result.resources.find((r) => JSON.stringify(r.resource).includes('5089AAAA'))?.resource as Observation;
    expect(weight.code.coding).toEqual([{ system: 'http://loinc.org', code: '5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', display: 'Weight' }]);
  });

  it('without the reference data, conditional references become logical references (identifier) with warnings', () => {
    const result = normalize(inputFor(file));
    const unresolved = result.warnings.filter((w) => w.code === 'unresolved-reference' && w.message.includes('?identifier='));
    expect(unresolved.length).toBeGreaterThan(400);
    const encounter = result.resources.find((r) => r.resource.resourceType === 'Encounter')?.resource as { serviceProvider?: unknown };
    expect(encounter.serviceProvider).toEqual(expect.objectContaining({ type: 'Organization', identifier: expect.objectContaining({ system: 'https://github.com/synthetichealth/synthea' }) }));
  });

  it('with the reference data in the same source, conditional references resolve to the Organization, Location and Practitioner', () => {
    const input = inputFor(file, HIV_REFERENCE_DATA.map(readBundle));
    const result = normalize(input);
    expect(accountingProblems(input.raw, result)).toEqual([]);
    expect(danglingReferences(result)).toEqual([]);
    expect(result.warnings.filter((w) => UNRESOLVED.has(w.code))).toEqual([]);
    const fullUrls = new Set(result.resources.map((r) => r.fullUrl));
    const conditional = input.raw.flatMap((r) => collectReferences(r.resource)).filter((ref) => ref.includes('?identifier='));
    expect(conditional.length).toBeGreaterThan(400);
    const out = result.resources.flatMap((r) => collectReferences(r.resource));
    expect(out.every((ref) => ref.startsWith('#') || fullUrls.has(ref))).toBe(true);
  });
});

describe('Inferno US Core specifics', () => {
  it('resolves urn:uuid references through the bundle fullUrl when the id differs (Patient "85")', () => {
    const input = inputFor(PATIENT_BUNDLES.find((f) => f.includes('uscore_bundle_patient_85')) ?? '');
    const patientRaw = input.raw.find((r) => r.resourceType === 'Patient');
    expect(patientRaw?.remoteId).toBe('85');
    expect(patientRaw?.fullUrl).toMatch(/^urn:uuid:/);
    const result = normalize(input);
    expect(result.warnings.filter((w) => UNRESOLVED.has(w.code))).toEqual([]);
  });
});

describe('validator false positives (HL7 R4 examples)', () => {
  it('Medplum rejects base64 with line breaks, which FHIR allows: the only error of Binary-example after normalization', () => {
    const binary = JSON.parse(fs.readFileSync(path.join(SHARED_DATA, 'fhir/hl7-r4-examples/Binary-example.json'), 'utf8')) as Record<string, unknown>;
    const result = normalize({
      caseId: CASE_ID,
      intake: inputFor(PATIENT_BUNDLES[0] ?? '').intake,
      sources: [sourceInfo('hl7', 'http://hl7.org/fhir')],
      raw: rawFromBundle({ resourceType: 'Bundle', type: 'collection', entry: [{ resource: binary as never }] }, 'hl7'),
      mappings: loadTerminologyMappings(),
    });
    const out = result.resources.find((r) => r.resource.resourceType === 'Binary');
    expect(/\s/.test(String((out?.resource as { data?: string }).data))).toBe(true); // line-wrapped base64: legal FHIR
    const errors = validationErrors(out?.resource);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => /Binary data/.test(e) || /base64/i.test(e))).toBe(true);
  });
});
