/**
 * Another patient's records are left out whatever form their `subject` takes: a `urn:uuid:` reference
 * to a sibling's Patient pulled at the same source (search results carry no `Bundle.entry.fullUrl`:
 * `urn:uuid:X` means the source's resource whose id is X, as references.ts reads it), a logical
 * reference (identifier only, https://hl7.org/fhir/R4/references.html#logical) naming an identifier
 * the child does not carry, and a contained Patient (https://hl7.org/fhir/R4/references.html#contained)
 * that clearly is not the child. The child's own records in those forms stay; what cannot be placed
 * stays with a warning. The accounting balances throughout.
 */
import type { Observation, Patient } from 'fhir/r4';
import { normalize } from '../../src/normalize/normalize';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import type { NormalizeResult, RawInput } from '../../src/normalize/types';
import { loadManifest } from '../fixtures/helpers';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { accountingProblems, danglingReferences, FETCHED_AT, rawFromBundle, sourceInfo } from './normalize-support';

const BASE = loadManifest().files['fixtures/care-team-a.json']?.fhirBase ?? '';
const CHILD = fixturePatientId('care-team-a');
const CASE_ID = '5a1f0c3e-2b4d-4e6f-8a9b-0c1d2e3f4a5b';
/** The child's Patient at care team A: Nora Elise Halvorsen, born 2017-04-22, this MRN. */
const MRN_SYSTEM = 'http://care-team-a.example.org/fhir/sid/mrn';
const CHILD_MRN = 'BSC00417722';

/** The child's records at care team A as a search returns them: no `Bundle.entry.fullUrl`. */
function childRaw(): RawInput[] {
  return rawFromBundle(fixtureBundle('care-team-a'), 'team-a').map(({ fullUrl: _fullUrl, ...r }) => r);
}

function rawOf(resource: { resourceType: string; id?: string }): RawInput {
  const id = resource.id ?? '';
  return { sourceId: 'team-a', resourceType: resource.resourceType, remoteId: id, versionId: '1', fetchedAt: FETCHED_AT, sha256: id, resource: resource as unknown as Record<string, unknown> };
}

/** The child's brother at the same EHR (same family name, another first name, MRN and birth date). */
const sibling: Patient = {
  resourceType: 'Patient',
  id: 'sib',
  identifier: [{ system: MRN_SYSTEM, value: 'BSC00999999' }],
  name: [{ family: 'Halvorsen', given: ['Erik'] }],
  gender: 'male',
  birthDate: '2014-02-11',
};

function obs(id: string, subject: Observation['subject'], contained?: Observation['contained']): RawInput {
  const resource: Observation = {
    resourceType: 'Observation',
    id,
    ...(contained ? { contained } : {}),
    status: 'final',
    code: { text: 'Heart rate' },
    ...(subject ? { subject } : {}),
    effectiveDateTime: '2025-01-01T10:00:00Z',
    valueQuantity: { value: 80, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
  };
  return rawOf(resource);
}

function run(raw: RawInput[]): NormalizeResult {
  return normalize({
    caseId: CASE_ID,
    intake: fixtureIntake(),
    sources: [sourceInfo('team-a', BASE, { remotePatientId: CHILD })],
    raw,
    mappings: loadTerminologyMappings(),
  });
}

/** Left out as about another patient: remote id → reason. */
function aboutOthers(result: NormalizeResult): Record<string, string> {
  return Object.fromEntries(result.leftOut.filter((l) => l.reason.startsWith('about another patient')).map((l) => [l.remoteId, l.reason]));
}

const keptIds = (result: NormalizeResult): string[] => result.resources.map((r) => r.key.split('|')[2] ?? '');

function expectBalanced(raw: RawInput[], result: NormalizeResult): void {
  expect(accountingProblems(raw, result)).toEqual([]);
  expect(danglingReferences(result)).toEqual([]);
}

it("leaves out a sibling's record whose subject is urn:uuid:<the sibling's Patient id>, pulled without fullUrls", () => {
  // The patient compartment's element for a Coverage is its beneficiary; a performer is not whom a record is about.
  const coverage = rawOf({ resourceType: 'Coverage', id: 'sib-coverage', status: 'active', beneficiary: { reference: 'urn:uuid:sib' }, payor: [{ display: 'Insurer' }] } as { resourceType: string; id: string });
  const performedBySibling = { ...obs('child-hr', { reference: `urn:uuid:${CHILD}` }) };
  (performedBySibling.resource as { performer?: unknown })['performer'] = [{ reference: 'urn:uuid:sib' }];
  const raw = [...childRaw(), rawOf(sibling), obs('sib-hr', { reference: 'urn:uuid:sib' }), obs('sib-hr-oid', { reference: 'urn:oid:sib' }), coverage, performedBySibling];
  const result = run(raw);
  expect(aboutOthers(result)).toEqual({
    sib: "about another patient at this source (Patient/sib), not the case's child",
    'sib-hr': "about another patient at this source (Patient/sib), not the case's child",
    'sib-hr-oid': "about another patient at this source (Patient/sib), not the case's child",
    'sib-coverage': "about another patient at this source (Patient/sib), not the case's child",
  });
  expect(keptIds(result)).not.toContain('sib-hr');
  expect(keptIds(result)).toContain('child-hr');
  // No record kept has a subject the bundle left out ("Not included in the case records").
  const subjects = result.resources.map((r) => (r.resource as { subject?: { display?: string } }).subject?.display);
  expect(subjects).not.toContain('Not included in the case records');
  expectBalanced(raw, result);
});

it('leaves out a record whose logical subject names an identifier the child does not carry at the source', () => {
  const raw = [
    ...childRaw(),
    rawOf(sibling),
    // An MRN of this source's MRN system that is not the child's (the other patient was not pulled).
    obs('other-mrn', { identifier: { system: MRN_SYSTEM, value: 'OTHER-MRN' }, display: 'Someone Else' }),
    // The sibling's MRN, as a logical reference and as a conditional one.
    obs('sib-mrn', { type: 'Patient', identifier: { system: MRN_SYSTEM, value: 'BSC00999999' } }),
    obs('sib-conditional', { reference: `Patient?identifier=${encodeURIComponent(MRN_SYSTEM)}|BSC00999999` }),
    // An identifier of a system the child has none of: cannot be placed, kept with a warning.
    obs('unknown-system', { identifier: { system: 'urn:oid:2.16.840.1.113883.4.1', value: '123-45-6789' } }),
    // A logical Group subject is not a patient.
    obs('group', { type: 'Group', identifier: { system: MRN_SYSTEM, value: 'WARD-3' } }),
  ];
  const result = run(raw);
  expect(aboutOthers(result)).toEqual({
    sib: "about another patient at this source (Patient/sib), not the case's child",
    'other-mrn': `about another patient at this source (a patient with another ${MRN_SYSTEM} identifier), not the case's child`,
    'sib-mrn': "about another patient at this source (Patient/sib), not the case's child",
    'sib-conditional': "about another patient at this source (Patient/sib), not the case's child",
  });
  expect(keptIds(result)).toEqual(expect.arrayContaining(['unknown-system', 'group']));
  expect(result.warnings.filter((w) => w.code === 'subject-not-placed').map((w) => w.key)).toEqual(['team-a|Observation|unknown-system']);
  expectBalanced(raw, result);
});

it('leaves out a record whose subject is a contained Patient that clearly is not the child', () => {
  const contained = (id: string, patient: Omit<Patient, 'resourceType'>): RawInput => obs(id, { reference: '#p' }, [{ resourceType: 'Patient', ...patient, id: 'p' }]);
  const raw = [
    ...childRaw(),
    // Another MRN of the source's MRN system.
    contained('by-mrn', { identifier: [{ system: MRN_SYSTEM, value: 'OTHER-MRN' }], name: [{ family: 'Halvorsen', given: ['Erik'] }] }),
    // No identifier: another first name and birth date (a sibling), or no name in common at all.
    contained('by-sibling-name', { name: [{ family: 'Halvorsen', given: ['Erik'] }], birthDate: '2014-02-11' }),
    contained('by-stranger-name', { name: [{ family: 'Okafor', given: ['Chidi'] }] }),
    // The child, contained: by MRN, by name and birth date.
    contained('child-by-mrn', { identifier: [{ system: MRN_SYSTEM, value: CHILD_MRN }] }),
    contained('child-by-name', { name: [{ family: 'HALVORSEN', given: ['Nora'] }], birthDate: '2017-04-22' }),
    // Not clearly another (kept, warned): same family, another first name, no birth date; another MRN but the child's name.
    contained('unclear', { name: [{ family: 'Halvorsen', given: ['Erik'] }] }),
    contained('conflicting', { identifier: [{ system: MRN_SYSTEM, value: 'OTHER-MRN' }], name: [{ family: 'Halvorsen', given: ['Nora', 'Elise'] }] }),
  ];
  const result = run(raw);
  expect(aboutOthers(result)).toEqual({
    'by-mrn': `about another patient at this source (contained Patient #p: a patient with another ${MRN_SYSTEM} identifier), not the case's child`,
    'by-sibling-name': "about another patient at this source (contained Patient #p: another first name and birth date than the child's), not the case's child",
    'by-stranger-name': "about another patient at this source (contained Patient #p: another name than the child's), not the case's child",
  });
  expect(keptIds(result)).toEqual(expect.arrayContaining(['child-by-mrn', 'child-by-name', 'unclear', 'conflicting']));
  expect(result.warnings.filter((w) => w.code === 'subject-not-placed').map((w) => w.key)).toEqual(['team-a|Observation|conflicting', 'team-a|Observation|unclear']);
  // The report names no other patient's identifier value or name.
  expect(JSON.stringify([result.leftOut, result.warnings])).not.toMatch(/OTHER-MRN|Erik|Okafor/);
  expectBalanced(raw, result);
});

it("keeps the child's own records whose subject is urn:uuid:<her id>, her identifier, or a conditional reference to it", () => {
  // Her duplicate record at the EHR, linked from her Patient by urn:uuid: hers too.
  const duplicate: Patient = { resourceType: 'Patient', id: 'dup-1', identifier: [{ system: MRN_SYSTEM, value: 'BSC00417799' }] };
  const linked = childRaw().map((r) =>
    r.resourceType === 'Patient' && r.remoteId === CHILD ? { ...r, resource: { ...r.resource, link: [{ other: { reference: 'urn:uuid:dup-1' }, type: 'seealso' }] } } : r,
  );
  const raw = [
    ...linked,
    rawOf(sibling),
    rawOf(duplicate),
    obs('own-dup-urn', { reference: 'urn:uuid:dup-1' }),
    obs('own-dup-identifier', { identifier: { system: MRN_SYSTEM, value: 'BSC00417799' } }),
    obs('own-urn', { reference: `urn:uuid:${CHILD}` }),
    obs('own-identifier', { identifier: { system: MRN_SYSTEM, value: CHILD_MRN } }),
    obs('own-identifier-no-system', { identifier: { value: CHILD_MRN } }),
    obs('own-conditional', { reference: `Patient?identifier=${MRN_SYSTEM}|${CHILD_MRN}` }),
  ];
  const result = run(raw);
  expect(aboutOthers(result)).toEqual({ sib: "about another patient at this source (Patient/sib), not the case's child" });
  const kept = new Map(result.resources.map((r) => [r.key.split('|')[2] ?? '', r.resource]));
  const subjectOf = (id: string): unknown => (kept.get(id) as Observation | undefined)?.subject;
  const casePatient = { reference: result.resources[0]?.fullUrl };
  expect(subjectOf('own-urn')).toEqual(casePatient);
  expect(subjectOf('own-conditional')).toEqual(casePatient);
  expect(subjectOf('own-identifier')).toEqual({ identifier: { system: MRN_SYSTEM, value: CHILD_MRN } });
  expect(subjectOf('own-identifier-no-system')).toEqual({ identifier: { value: CHILD_MRN } });
  expect(keptIds(result)).toEqual(expect.arrayContaining(['dup-1', 'own-dup-urn', 'own-dup-identifier']));
  expect(result.warnings.filter((w) => w.code === 'subject-not-placed')).toEqual([]);
  expectBalanced(raw, result);
});
