/**
 * Only the child's records enter the case: at a source whose answer also holds another patient's
 * records (a server ignoring the patient parameter, a parent's Patient brought by $everything), those
 * are left out with the reason, nothing points at them, and the accounting still balances. The
 * child's duplicate record in the EHR (linked from her Patient) is hers.
 */
import type { Observation, Patient } from 'fhir/r4';
import { normalize } from '../../src/normalize/normalize';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import type { RawInput } from '../../src/normalize/types';
import { loadManifest } from '../fixtures/helpers';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { JORGE, patientOf, readBundle } from '../support/synthea';
import { accountingProblems, danglingReferences, FETCHED_AT, rawFromBundle, sourceInfo } from './normalize-support';

const BASE = loadManifest().files['fixtures/care-team-a.json']?.fhirBase ?? '';
const CHILD = fixturePatientId('care-team-a');
const CASE_ID = '5a1f0c3e-2b4d-4e6f-8a9b-0c1d2e3f4a5b';

/** The child's records at care team A, and Jorge's (another child at the same EHR) as if the server had sent them too. */
function mixedRaw(): RawInput[] {
  return [...rawFromBundle(fixtureBundle('care-team-a'), 'team-a'), ...rawFromBundle(readBundle(JORGE), 'team-a')];
}

function run(raw: RawInput[], remotePatientId: string | null = CHILD) {
  return normalize({
    caseId: CASE_ID,
    intake: fixtureIntake(),
    sources: [sourceInfo('team-a', BASE, remotePatientId ? { remotePatientId } : {})],
    raw,
    mappings: loadTerminologyMappings(),
  });
}

it("leaves out every record about another patient at the source, with the reason, and keeps all of the child's", () => {
  const raw = mixedRaw();
  const jorgeId = patientOf(readBundle(JORGE)).id ?? '';
  const result = run(raw);
  const out = result.leftOut.filter((l) => l.reason.startsWith('about another patient'));
  expect(new Set(out.map((l) => l.reason))).toEqual(new Set([`about another patient at this source (Patient/${jorgeId}), not the case's child`]));
  // Jorge's Patient and every record whose subject or patient is Jorge (his Synthea file refers to him by urn:uuid).
  const aboutJorge = rawFromBundle(readBundle(JORGE), 'team-a').filter((r) => {
    const ref = (r.resource['subject'] ?? r.resource['patient']) as { reference?: string } | undefined;
    return r.resourceType === 'Patient' || ref?.reference === `urn:uuid:${jorgeId}`;
  });
  expect(out.map((l) => l.key).sort()).toEqual(aboutJorge.map((r) => `team-a|${r.resourceType}|${r.remoteId}`).sort());
  expect(out.length).toBeGreaterThan(100);
  // Nothing of the child's is lost: every resource of normalizing her records alone is there.
  const alone = run(rawFromBundle(fixtureBundle('care-team-a'), 'team-a'));
  const keys = new Set(result.resources.map((r) => r.key));
  expect(alone.resources.filter((r) => !keys.has(r.key)).map((r) => r.key)).toEqual([]);
  // No output resource points at Jorge; every raw input is accounted for; nothing dangles.
  expect(JSON.stringify(result.resources.map((r) => r.resource))).not.toContain(jorgeId);
  expect(accountingProblems(raw, result)).toEqual([]);
  expect(danglingReferences(result)).toEqual([]);
});

it('judges a clinical record by its subject or patient on the same server; other subjects and servers are not judged', () => {
  const obs = (id: string, subject: string): RawInput => {
    const resource: Observation = { resourceType: 'Observation', id, status: 'final', code: { text: 'Heart rate' }, subject: { reference: subject }, effectiveDateTime: '2025-01-01T10:00:00Z', valueQuantity: { value: 80, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' } };
    return { sourceId: 'team-a', resourceType: 'Observation', remoteId: id, versionId: '1', fetchedAt: FETCHED_AT, sha256: id, resource: resource as unknown as Record<string, unknown> };
  };
  const raw = [
    ...rawFromBundle(fixtureBundle('care-team-a'), 'team-a'),
    obs('other-relative', 'Patient/someone-else'),
    obs('other-absolute', `${BASE}/Patient/someone-else`),
    obs('child-absolute', `${BASE}/Patient/${CHILD}/_history/3`),
    obs('foreign-server', 'https://another-ehr.example.org/fhir/Patient/someone-else'),
    obs('group-subject', 'Group/ward-3'),
  ];
  const result = run(raw);
  const outIds = result.leftOut.filter((l) => l.reason.startsWith('about another patient')).map((l) => l.remoteId).sort();
  expect(outIds).toEqual(['other-absolute', 'other-relative']);
  expect(accountingProblems(raw, result)).toEqual([]);
});

it("keeps the child's duplicate record linked from her Patient, and judges nothing where the child is not known", () => {
  const duplicate: Patient = { resourceType: 'Patient', id: 'dup-1', name: [{ family: 'Duplicate' }] };
  const withLink = rawFromBundle(fixtureBundle('care-team-a'), 'team-a').map((r) =>
    r.resourceType === 'Patient' && r.remoteId === CHILD ? { ...r, resource: { ...r.resource, link: [{ other: { reference: 'Patient/dup-1' }, type: 'seealso' }] } } : r,
  );
  const raw = [...withLink, { sourceId: 'team-a', resourceType: 'Patient', remoteId: 'dup-1', versionId: '1', fetchedAt: FETCHED_AT, sha256: 'dup', resource: duplicate as unknown as Record<string, unknown> }];
  expect(run(raw).leftOut.filter((l) => l.reason.startsWith('about another patient'))).toEqual([]);
  // Two Patients and no remotePatientId: the child is not known at the server (warned), nothing is judged.
  const unknown = run(mixedRaw(), null);
  expect(unknown.leftOut.filter((l) => l.reason.startsWith('about another patient'))).toEqual([]);
  expect(unknown.warnings.map((w) => w.code)).toContain('child-patient-ambiguous');
});
