/**
 * Normalization of the fixture child's records at her two care teams (one case, two sources).
 */
import type { Coding, Condition, Immunization, Medication, MedicationRequest, Observation, Patient, Quantity } from 'fhir/r4';
import { casePatientFullUrl } from '../../src/normalize/case-patient';
import { importedFullUrl } from '../../src/normalize/ids';
import { normalize, type NormalizeInput } from '../../src/normalize/normalize';
import { ORIGIN_SYSTEM } from '../../src/normalize/origin';
import { collectReferences } from '../../src/normalize/references';
import { loadTerminologyMappings, MAPPED_CODING_EXTENSION } from '../../src/normalize/terminology';
import type { NormalizedResource, NormalizeResult, RawInput } from '../../src/normalize/types';
import { convertUcum, ORIGINAL_QUANTITY_EXTENSION, roundConverted } from '../../src/normalize/units';
import { loadManifest } from '../fixtures/helpers';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { accountingProblems, danglingReferences, rawFromBundle, sourceInfo, validationErrors } from './normalize-support';

const manifest = loadManifest();
const A_BASE = manifest.files['fixtures/care-team-a.json']?.fhirBase ?? '';
const B_BASE = manifest.files['fixtures/care-team-b.json']?.fhirBase ?? '';
const CASE_ID = '7d4c8e1a-0b5f-4c2e-9a61-3f2d1e0c9b8a';

function fixtureInput(extraRaw: RawInput[] = []): NormalizeInput {
  return {
    caseId: CASE_ID,
    intake: fixtureIntake(),
    sources: [
      sourceInfo('team-a', A_BASE, { name: "Big Sky Children's Hospital", remotePatientId: fixturePatientId('care-team-a') }),
      sourceInfo('team-b', B_BASE, { name: 'Gallatin Valley Clinic', remotePatientId: fixturePatientId('care-team-b') }),
    ],
    raw: [...rawFromBundle(fixtureBundle('care-team-a'), 'team-a'), ...rawFromBundle(fixtureBundle('care-team-b'), 'team-b'), ...extraRaw],
    mappings: loadTerminologyMappings(),
  };
}

const input = fixtureInput();
const result = normalize(input);

/** The output resource for a manifest reference (`Type/id`) of a team. */
function byRef(r: NormalizeResult, team: 'a' | 'b', ref: string): NormalizedResource {
  const [type = '', id = ''] = ref.split('/');
  const fullUrl = importedFullUrl(team === 'a' ? A_BASE : B_BASE, type, id);
  const found = r.resources.find((x) => x.fullUrl === fullUrl);
  if (!found) throw new Error(`no output for ${team} ${ref}`);
  return found;
}

const codings = (concept: { coding?: Coding[] } | undefined): string[] => (concept?.coding ?? []).map((c) => `${c.system ?? ''}|${c.code ?? ''}`);

/** Whether two quantities state the same value once the molar one is converted by team B's GLU rule (UCUM, rule's molecular weight and decimals). */
function sameByGluRule(b: Quantity | undefined, a: Quantity | undefined): boolean {
  const rule = loadTerminologyMappings().quantityRules.get('http://care-team-b.example.org/fhir/CodeSystem/lab|GLU');
  if (b?.value === undefined || !b.code || !a?.code || !rule) return false;
  if (b.code === a.code) return b.value === a.value;
  const converted = convertUcum(b.value, b.code, a.code, rule.molecularWeight);
  return 'value' in converted && roundConverted(converted.value, rule.decimals) === a.value;
}

describe('fixture case: two care teams', () => {
  it('accounts for every raw input: all 385 become resources, none left out', () => {
    expect(accountingProblems(input.raw, result)).toEqual([]);
    expect(input.raw).toHaveLength(385);
    expect(result.leftOut).toEqual([]);
    expect(result.resources).toHaveLength(386); // + the case Patient
  });

  it('resolves every reference inside the bundle; the only warnings are the glucose results kept in mmol/L', () => {
    expect(danglingReferences(result)).toEqual([]);
    // Team B codes its glucose with the molar LOINC 14749-6 as well: converting it to mg/dL would
    // contradict that coding, so it is kept as reported, with a warning (units.ts, conversionRefusal).
    const glucose = result.resources
      .filter((r) => r.sourceId === 'team-b' && r.resource.resourceType === 'Observation' && codings((r.resource as Observation).code).includes('http://loinc.org|14749-6'))
      .map((r) => r.key);
    expect(glucose).toHaveLength(3);
    // And the mapping's mass LOINC 2345-7 is not added beside that value (kept for matching only).
    expect(result.warnings.map((w) => [w.key, w.code])).toEqual(glucose.sort().flatMap((key) => [[key, 'mapped-coding-withheld'], [key, 'unit-conversion-refused']]));
    for (const w of result.warnings.filter((x) => x.code === 'unit-conversion-refused')) expect(w.message).toMatch(/^mmol\/L → mg\/dL refused: .*http:\/\/loinc.org\|14749-6/);
    for (const w of result.warnings.filter((x) => x.code === 'mapped-coding-withheld')) expect(w.message).toMatch(/^mapped coding http:\/\/loinc.org\|2345-7 not added/);
  });

  it('gives every resource its deterministic urn:uuid (id = uuid of fullUrl), all distinct', () => {
    const urls = new Set(result.resources.map((r) => r.fullUrl));
    expect(urls.size).toBe(result.resources.length);
    for (const r of result.resources) expect(r.fullUrl).toBe(`urn:uuid:${r.resource.id ?? ''}`);
  });

  it('puts the case Patient first, then sorts by (resourceType, fullUrl)', () => {
    expect(result.resources[0]?.fullUrl).toBe(casePatientFullUrl(CASE_ID));
    const rest = result.resources.slice(1).map((r) => `${r.resource.resourceType} ${r.fullUrl}`);
    expect(rest).toEqual([...rest].sort());
  });

  it('points every reference to the child at the case Patient, which links to both source Patients', () => {
    const caseUrl = casePatientFullUrl(CASE_ID);
    const sourcePatients = result.resources.filter((r) => r.resource.resourceType === 'Patient' && r.sourceId !== 'case');
    expect(sourcePatients.map((r) => r.sourceId).sort()).toEqual(['team-a', 'team-b']);
    const sourceUrls = new Set(sourcePatients.map((r) => r.fullUrl));
    const refs = result.resources.flatMap((r) => collectReferences(r.resource));
    expect(refs.filter((ref) => sourceUrls.has(ref))).toEqual([...sourceUrls].sort()); // only the case Patient's links
    expect(refs.filter((ref) => ref === caseUrl).length).toBeGreaterThan(300);
    const links = (result.casePatient.link ?? []).map((l) => l.other.reference);
    expect(links).toEqual([...sourceUrls].sort());
    expect(result.casePatient.name?.[0]?.given).toEqual(['Nora', 'Elise']);
    // the source Patients stay as they were recorded (team B only knows "Nora")
    expect((byRef(result, 'b', 'Patient/196963321484449').resource as Patient).name?.[0]?.given).toEqual(['Nora']);
  });

  it('marks origin: meta.source = the team base URL, origin tag local-ehr, versionId dropped, lastUpdated kept', () => {
    const obs = byRef(result, 'a', 'Observation/esDXZNDBImnI2VPmWQdV0').resource;
    expect(obs.meta?.source).toBe(A_BASE);
    expect(obs.meta?.tag).toEqual([{ system: ORIGIN_SYSTEM, code: 'local-ehr', display: 'Local care team EHR' }]);
    expect(obs.meta?.versionId).toBeUndefined();
    expect(obs.meta?.lastUpdated).toBeDefined();
    expect(byRef(result, 'b', 'Observation/174098350504674').resource.meta?.source).toBe(B_BASE);
  });

  it("appends LOINC to each of team B's local lab codes (never replacing them)", () => {
    const localRows = manifest.teamBLocalLabCodes;
    let checked = 0;
    for (const r of result.resources.filter((x) => x.sourceId === 'team-b' && x.resource.resourceType === 'Observation')) {
      const code = (r.resource as Observation).code;
      const local = code.coding?.find((c) => c.system === localRows[0]?.system);
      if (!local) continue;
      const row = localRows.find((x) => x.code === local.code);
      expect(row).toBeDefined();
      const mapped = `http://loinc.org|${row?.loinc ?? ''}`;
      // Glucose kept in mmol/L beside the source's molar 14749-6: the mass LOINC is kept for matching only (it would miscode the value).
      if (codings(code).includes('http://loinc.org|14749-6')) expect(r.matchCodings?.map((c) => `${c.system}|${c.code}`)).toEqual([mapped]);
      else expect(codings(code)).toContain(mapped);
      expect(code.coding?.[0]).toBe(local); // original first, unchanged
      checked++;
    }
    expect(checked).toBe(25);
    const hba1c = byRef(result, 'b', 'Observation/188406105114922').resource as Observation;
    expect(hba1c.code.coding?.[1]).toEqual({
      extension: [{ url: MAPPED_CODING_EXTENSION, valueCanonical: 'https://second-opinion.example.org/fhir/ConceptMap/care-team-b-lab-to-loinc|1.0.0' }],
      system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', userSelected: false,
    });
    expect(result.mappedCodings).toBeGreaterThan(0);
  });

  it('reports the one local code with no mapping (CELIAC-SCR) as unmapped', () => {
    expect(result.unmappedCodes).toEqual([
      { sourceId: 'team-b', resourceType: 'DiagnosticReport', system: 'http://care-team-b.example.org/fhir/CodeSystem/lab', code: 'CELIAC-SCR', count: 1 },
    ]);
  });

  it("keeps team B's glucose in mmol/L beside its molar LOINC 14749-6 (no mass value under a molar code), equal to team A's mg/dL value by UCUM", () => {
    const a = byRef(result, 'a', 'Observation/esDXZNDBImnI2VPmWQdV0').resource as Observation;
    const b = byRef(result, 'b', 'Observation/174098350504674').resource as Observation;
    expect(b.valueQuantity).toEqual({ value: 10.1, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' });
    expect(b.referenceRange?.[0]?.low?.code).toBe('mmol/L');
    // Coded as sent (local GLU and the molar 14749-6); the mapped mass LOINC 2345-7 would contradict
    // the value, so it is withheld from the resource and kept only to match team A's result.
    expect(codings(b.code)).toEqual(['http://care-team-b.example.org/fhir/CodeSystem/lab|GLU', 'http://loinc.org|14749-6']);
    expect(byRef(result, 'b', 'Observation/174098350504674').matchCodings).toEqual([{ system: 'http://loinc.org', code: '2345-7' }]);
    expect(a.valueQuantity).toEqual({ value: 182, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' });
    expect(sameByGluRule(b.valueQuantity, a.valueQuantity)).toBe(true);
  });

  it("still converts what a rule allows: team B's ferritin ng/ml → ng/mL, the original kept in an extension", () => {
    const ferritin = result.resources.filter((r) => r.sourceId === 'team-b' && r.resource.resourceType === 'Observation' && codings((r.resource as Observation).code).includes('http://loinc.org|2276-4'));
    expect(ferritin.length).toBeGreaterThan(0);
    for (const r of ferritin) {
      const { extension, ...value } = (r.resource as Observation).valueQuantity ?? {};
      expect(value).toMatchObject({ unit: 'ng/mL', system: 'http://unitsofmeasure.org', code: 'ng/mL' });
      expect(extension).toEqual([{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: { value: value.value, unit: 'ng/ml' } }]);
    }
  });

  it('makes each "duplicate" pair of the manifest comparable: shared standard code (and value for labs)', () => {
    for (const dup of manifest.overlaps.duplicates) {
      const a = byRef(result, 'a', dup.a).resource;
      const b = byRef(result, 'b', dup.b).resource;
      if (dup.resourceType === 'Condition') {
        const shared = codings((a as Condition).code).filter((c) => codings((b as Condition).code).includes(c));
        expect(shared).toContain(`http://snomed.info/sct|${String(dup.evidence['snomed'])}`);
      } else if (dup.resourceType === 'Observation') {
        // Team B's codings as matched: those in the resource and those kept for matching only (glucose in mmol/L).
        const matchB = [...codings((b as Observation).code), ...(byRef(result, 'b', dup.b).matchCodings ?? []).map((c) => `${c.system}|${c.code}`)];
        const shared = codings((a as Observation).code).filter((c) => matchB.includes(c));
        expect(shared).toContain(`http://loinc.org|${String(dup.evidence['loinc'])}`);
        expect(sameByGluRule((b as Observation).valueQuantity, (a as Observation).valueQuantity)).toBe(true);
      } else if (dup.resourceType === 'Immunization') {
        expect(codings((b as Immunization).vaccineCode)).toEqual(codings((a as Immunization).vaccineCode));
      }
    }
  });

  it('validates with @medplum/core validateResource: zero errors for every resource', () => {
    expect(result.resources.flatMap((r) => validationErrors(r.resource))).toEqual([]);
  });

  it('is deterministic: twice, and with the inputs in another order, the result is deeply equal', () => {
    expect(normalize(fixtureInput())).toEqual(result);
    const shuffled: NormalizeInput = { ...input, raw: [...input.raw].reverse(), sources: [...input.sources].reverse() };
    expect(normalize(shuffled)).toEqual(result);
  });

  it('gives the same result when the caller hands the raw objects over (consumeRaw: rewritten in place)', () => {
    const owned = fixtureInput();
    const consumed = normalize({ ...owned, consumeRaw: true });
    expect(consumed).toEqual(result);
    const glucose = owned.raw.find((r) => r.remoteId === '174098350504674');
    expect(consumed.resources.some((r) => r.resource === (glucose?.resource as unknown))).toBe(true);
  });

  it('never changes the raw inputs', () => {
    const again = fixtureInput();
    const before = JSON.stringify(again.raw);
    normalize(again);
    expect(JSON.stringify(again.raw)).toBe(before);
  });
});

describe('fixture case: versions, bad resources, unknown sources', () => {
  const [firstA] = rawFromBundle(fixtureBundle('care-team-a'), 'team-a').filter((r) => r.remoteId === 'esDXZNDBImnI2VPmWQdV0');
  if (!firstA) throw new Error('fixture glucose missing');
  const older: RawInput = {
    ...firstA, versionId: 'old', sha256: 'old',
    resource: { ...firstA.resource, meta: { lastUpdated: '2020-01-01T00:00:00Z' }, valueQuantity: { value: 1, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' } },
  };
  const broken: RawInput = { ...firstA, remoteId: 'broken-1', versionId: '1', resource: { resourceType: 'Observation', id: 'broken-1', code: { text: 'no status' } } };
  const pointing: RawInput = {
    ...firstA, remoteId: 'pointing-1', versionId: '1',
    resource: { resourceType: 'Observation', id: 'pointing-1', status: 'final', code: { text: 'x' }, hasMember: [{ reference: 'Observation/broken-1' }] },
  };
  const stranger: RawInput = { ...firstA, sourceId: 'team-x' };
  const extra = [older, broken, pointing, stranger];
  const input2 = fixtureInput(extra);
  const r2 = normalize(input2);

  it('keeps the latest version, and accounts for every extra input as a LeftOut', () => {
    expect(accountingProblems(input2.raw, r2)).toEqual([]);
    expect(r2.leftOut.map((l) => [l.key, l.versionId, l.reason])).toEqual([
      ['team-a|Observation|broken-1', '1', 'structure: Observation lacks required Observation.status'],
      ['team-a|Observation|esDXZNDBImnI2VPmWQdV0', 'old', expect.stringMatching(/^superseded by version /)],
      ['team-x|Observation|esDXZNDBImnI2VPmWQdV0', firstA.versionId, 'source team-x is not a source of this case'],
    ]);
    expect((byRef(r2, 'a', 'Observation/esDXZNDBImnI2VPmWQdV0').resource as Observation).valueQuantity?.value).toBe(182);
  });

  it('leaves out what was pulled for another patient than the source\'s, and keeps what was pulled for it', () => {
    const forOther: RawInput = { ...firstA, remoteId: 'other-child-1', versionId: '1', resource: { ...firstA.resource, id: 'other-child-1' }, pulledForPatient: 'other-child' };
    const forChild: RawInput = {
      ...firstA, remoteId: 'same-child-1', versionId: '1', resource: { ...firstA.resource, id: 'same-child-1' }, pulledForPatient: fixturePatientId('care-team-a'),
    };
    const withPatients = fixtureInput([forOther, forChild]);
    const r = normalize(withPatients);
    expect(accountingProblems(withPatients.raw, r)).toEqual([]);
    expect(r.leftOut.filter((l) => l.remoteId.endsWith('-child-1')).map((l) => [l.remoteId, l.reason])).toEqual([
      ['other-child-1', `pulled for patient other-child at this source, which is no longer the case's patient there (now ${fixturePatientId('care-team-a')})`],
    ]);
    expect(r.resources.some((x) => x.key === 'team-a|Observation|same-child-1')).toBe(true);
  });

  it('keeps a shared resource pulled for the previous patient while the child\'s records point at it (https://hl7.org/fhir/R4/compartmentdefinition-patient.html), and leaves out the rest of that pull', () => {
    const shared = (resourceType: string, remoteId: string, resource: Record<string, unknown>, pulledForPatient = 'other-child'): RawInput => ({
      ...firstA, resourceType, remoteId, versionId: '1', resource: { resourceType, id: remoteId, ...resource }, pulledForPatient,
    });
    const child = { reference: `Patient/${fixturePatientId('care-team-a')}` };
    const medication = shared('Medication', 'shared-med', { code: { text: 'glucagon' }, manufacturer: { reference: 'Organization/shared-maker' } });
    const maker = shared('Organization', 'shared-maker', { name: 'Maker Inc' });
    const othersDoctor = shared('Practitioner', 'others-doctor', { name: [{ family: 'Doe' }] });
    const othersOrder = shared('MedicationRequest', 'others-order', {
      status: 'active', intent: 'order', subject: child, medicationReference: { reference: 'Medication/shared-med' }, requester: { reference: 'Practitioner/others-doctor' },
    });
    const childsOrder = shared('MedicationRequest', 'childs-order', {
      status: 'active', intent: 'order', subject: child, medicationReference: { reference: 'Medication/shared-med' },
    }, fixturePatientId('care-team-a'));
    const reason = `pulled for patient other-child at this source, which is no longer the case's patient there (now ${fixturePatientId('care-team-a')})`;
    const leftOutOfPull = (r: NormalizeResult): string[][] => r.leftOut.filter((l) => /^(shared|others|childs)-/.test(l.remoteId)).map((l) => [l.resourceType, l.remoteId, l.reason]);

    const withChildsOrder = fixtureInput([medication, maker, othersDoctor, othersOrder, childsOrder]);
    const r = normalize(withChildsOrder);
    expect(accountingProblems(withChildsOrder.raw, r)).toEqual([]);
    expect(danglingReferences(r)).toEqual([]);
    // The previous patient's order (Patient compartment) and the doctor only it named are left out…
    expect(leftOutOfPull(r)).toEqual([['MedicationRequest', 'others-order', reason], ['Practitioner', 'others-doctor', reason]]);
    // …the Medication the child's order names stays, and so does its manufacturer, which it names.
    const med = byRef(r, 'a', 'Medication/shared-med');
    expect((byRef(r, 'a', 'MedicationRequest/childs-order').resource as MedicationRequest).medicationReference?.reference).toBe(med.fullUrl);
    expect((med.resource as Medication).manufacturer?.reference).toBe(byRef(r, 'a', 'Organization/shared-maker').fullUrl);

    // Nothing of the child's names them: the whole previous pull is left out, as before.
    const withoutChildsOrder = fixtureInput([medication, maker, othersDoctor, othersOrder]);
    const r2 = normalize(withoutChildsOrder);
    expect(accountingProblems(withoutChildsOrder.raw, r2)).toEqual([]);
    expect(leftOutOfPull(r2)).toEqual([
      ['MedicationRequest', 'others-order', reason], ['Medication', 'shared-med', reason], ['Organization', 'shared-maker', reason], ['Practitioner', 'others-doctor', reason],
    ]);
    // A shared resource the source's current patient's pull brought is kept whether or not anything points at it (unchanged).
    const current = fixtureInput([shared('Organization', 'unreferenced-org', { name: 'Lab' }, fixturePatientId('care-team-a'))]);
    expect(normalize(current).resources.some((x) => x.key === 'team-a|Organization|unreferenced-org')).toBe(true);
  });

  it('drops a reference to a left-out resource, with a warning, so nothing dangles', () => {
    expect(danglingReferences(r2)).toEqual([]);
    const p = byRef(r2, 'a', 'Observation/pointing-1').resource as Observation;
    expect(p.hasMember).toEqual([{ type: 'Observation' }]);
    expect(r2.warnings.filter((w) => w.code !== 'unit-conversion-refused' && w.code !== 'mapped-coding-withheld')).toEqual([expect.objectContaining({ key: 'team-a|Observation|pointing-1', code: 'unresolved-reference' })]);
  });

  it('leaves out a resource that is not JSON-sane, and prunes references to it', () => {
    const cyclic: Record<string, unknown> = { resourceType: 'Observation', id: 'cyclic-1', status: 'final', code: { text: 'x' } };
    cyclic['extension'] = [{ url: 'http://example.org/x', valueString: 'x', self: cyclic }];
    const withCycle = fixtureInput([
      { ...firstA, remoteId: 'cyclic-1', versionId: '1', resource: cyclic },
      { ...pointing, resource: { ...pointing.resource, hasMember: [{ reference: 'Observation/cyclic-1', display: 'loop' }] } },
    ]);
    const r3 = normalize(withCycle);
    expect(accountingProblems(withCycle.raw, r3)).toEqual([]);
    expect(r3.leftOut).toEqual([expect.objectContaining({ remoteId: 'cyclic-1', reason: expect.stringMatching(/^structure: nested deeper than 64/) as unknown as string })]);
    expect(danglingReferences(r3)).toEqual([]);
    expect((byRef(r3, 'a', 'Observation/pointing-1').resource as Observation).hasMember).toEqual([{ display: 'loop' }]);
  });
});
