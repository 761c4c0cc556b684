/**
 * De-duplication never merges two records that state clinically different facts:
 * - an HbA1c on the NGSP/DCCT scale (%) and one on the IFCC scale (mmol/mol) are different
 *   measurements, although UCUM reduces both units to pure numbers (48 mmol/mol "=" 4.8 %);
 * - the same diagnosis or procedure on another body site (left ear vs right ear) is another
 *   fact, not a copy, and a merge must not union the two sites into one record.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CodeableConcept, Condition, Observation, Procedure, Quantity } from 'fhir/r4';
import { dedupe, dedupeConditions, dedupeObservations, dedupeProcedures } from '../../src/normalize/dedupe/index';
import { bodySiteState } from '../../src/normalize/dedupe/keys';
import { otherDimensionlessScale, sameQuantity } from '../../src/normalize/dedupe/quantity';
import { normalize } from '../../src/normalize/normalize';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import type { NormalizedResource, RawInput } from '../../src/normalize/types';
import { fixtureIntake } from '../support/fixture-child';
import { SHARED_DATA } from '../support/synthea';
import { sourceInfo } from './normalize-support';
import { B_LAB } from './units-support';
import { nr } from '../support/dedupe-inputs';

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const SNOMED = 'http://snomed.info/sct';
const PATIENT = 'urn:uuid:00000000-0000-5000-8000-000000000000';
const HL7_EXAMPLES = join(SHARED_DATA, 'fhir/hl7-r4-examples');

const q = (value: number, unit: string): Quantity => ({ value, unit, system: UCUM, code: unit });

describe('quantities on two dimensionless scales are not the same value', () => {
  it('does not take HbA1c 48 mmol/mol (IFCC, ≈ 6.5 %) for 4.8 % (NGSP, normal)', () => {
    expect(sameQuantity(q(4.8, '%'), q(48, 'mmol/mol'), ['4548-4'])).toBe(false);
    expect(sameQuantity(q(48, 'mmol/mol'), q(4.8, '%'), ['4548-4'])).toBe(false);
    expect(sameQuantity(q(0.5, '1'), q(50, '%'))).toBe(false);
  });

  it('still compares dimensionless values of one scale, and converts units that have a dimension', () => {
    expect(sameQuantity(q(8.6, '%'), q(8.6, '%'))).toBe(true);
    expect(sameQuantity(q(8.6, '%'), q(8.6, '%{HbA1c}'))).toBe(true);
    expect(sameQuantity(q(0.4, '{ratio}'), q(0.4, '1'))).toBe(true);
    expect(sameQuantity(q(1.2, 'g/dL'), q(12, 'g/L'))).toBe(true);
    expect([otherDimensionlessScale('%', 'mmol/mol'), otherDimensionlessScale('mg/g', '%'), otherDimensionlessScale('{ratio}', '1'), otherDimensionlessScale('g/dL', 'g/L')])
      .toEqual([true, true, false, false]);
  });

  it("keeps care team A's HbA1c 4.8 % and care team B's 48 mmol/mol of the same draw apart after normalization", () => {
    const at = '2026-04-14T08:00:00-06:00';
    const raw = (sourceId: string, id: string, resource: Observation): RawInput => ({
      sourceId, resourceType: 'Observation', remoteId: id, versionId: '1', fetchedAt: '2026-10-31T23:00:00Z', sha256: id,
      resource: resource as unknown as Record<string, unknown>,
    });
    const teamA: Observation = {
      resourceType: 'Observation', id: 'a1c-a', status: 'final', code: { coding: [{ system: LOINC, code: '4548-4' }] },
      subject: { reference: 'Patient/pa' }, effectiveDateTime: at, valueQuantity: q(4.8, '%'),
    };
    // B's local code: the normalizer appends LOINC 4548-4 and refuses to "convert" mmol/mol to % (another scale).
    const teamB: Observation = {
      resourceType: 'Observation', id: 'a1c-b', status: 'final', code: { coding: [{ system: B_LAB, code: 'HGBA1C' }] },
      subject: { reference: 'Patient/pb' }, effectiveDateTime: '2026-04-14T14:00:00Z', valueQuantity: q(48, 'mmol/mol'),
    };
    const normalized = normalize({
      caseId: 'case-hba1c-scales', intake: fixtureIntake(),
      sources: [sourceInfo('team-a', 'https://a.example.org/fhir', { remotePatientId: 'pa' }), sourceInfo('team-b', 'https://b.example.org/fhir', { remotePatientId: 'pb' })],
      raw: [raw('team-a', 'a1c-a', teamA), raw('team-b', 'a1c-b', teamB)],
      mappings: loadTerminologyMappings(),
    });
    const observations = normalized.resources.filter((r) => r.resource.resourceType === 'Observation');
    expect(observations).toHaveLength(2);
    const result = dedupe(normalized.resources);
    expect(result.merges).toEqual([]);
    const values = result.resources.flatMap((r) => (r.resource.resourceType === 'Observation' ? [`${r.resource.valueQuantity?.value} ${r.resource.valueQuantity?.code}`] : []));
    expect(values.sort()).toEqual(['4.8 %', '48 mmol/mol']);
    // B's value stays in mmol/mol (IFCC): the mapped 4548-4 (HbA1c in %, NGSP) would code it as what it
    // is not, so it is taken back, with a warning; B's own coding stays.
    const b = observations.find((r) => r.sourceId === 'team-b')?.resource as Observation | undefined;
    expect(b?.code.coding?.map((c) => `${c.system ?? ''}|${c.code ?? ''}`)).toEqual([`${B_LAB}|HGBA1C`]);
    expect(normalized.warnings.filter((w) => w.code === 'mapped-coding-withheld').map((w) => w.message)).toEqual([expect.stringContaining('4548-4')]);
  });

  it('still merges the same HbA1c reported on one scale by two sources', () => {
    const obs = (value: Quantity): Observation => ({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code: '4548-4' }] }, subject: { reference: PATIENT }, effectiveDateTime: '2026-04-14T08:00:00Z', valueQuantity: value });
    expect(dedupeObservations([nr('a', obs(q(8.6, '%'))), nr('b', obs(q(8.6, '%')))]).merges).toHaveLength(1);
  });
});

describe('records of different body sites are not merged', () => {
  const LEFT_EAR: CodeableConcept = { coding: [{ system: SNOMED, code: '49521004', display: 'Left external ear structure' }], text: 'Left Ear' };
  const RIGHT_EAR: CodeableConcept = { coding: [{ system: SNOMED, code: '25577004', display: 'Right ear structure' }], text: 'Right Ear' };
  /** The HL7 R4 Condition example (burn of the LEFT ear), read in place, as a care team's record. */
  const burn = (): Condition => JSON.parse(readFileSync(join(HL7_EXAMPLES, 'Condition-example.json'), 'utf8')) as Condition;
  const sitesOf = (r: NormalizedResource): string[] => ((r.resource as Condition | Procedure).bodySite ?? []).flatMap((b) => (b.coding ?? []).map((c) => c.display ?? ''));

  it('keeps a burn of the left ear (HL7 example) and a burn of the right ear, same onset, from two care teams apart', () => {
    const left = nr('team-a', { ...burn(), subject: { reference: PATIENT } });
    const right = nr('team-b', { ...burn(), subject: { reference: PATIENT }, bodySite: [RIGHT_EAR] });
    const r = dedupeConditions([left, right]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.map(sitesOf).sort()).toEqual([['Left external ear structure'], ['Right ear structure']]);
  });

  it('still merges the HL7 example recorded by two care teams on the same site, and one without a site', () => {
    const a = nr('team-a', { ...burn(), subject: { reference: PATIENT } });
    const b = nr('team-b', { ...burn(), subject: { reference: PATIENT } });
    const { bodySite: _none, ...noSite } = burn();
    const c = nr('team-c', { ...noSite, subject: { reference: PATIENT } });
    const r = dedupeConditions([a, b, c]);
    expect(r.merges).toHaveLength(1);
    expect(r.survivors.map(sitesOf)).toEqual([['Left external ear structure']]);
  });

  it('never joins left and right through a record without a site, in any input order', () => {
    const { bodySite: _none, ...noSite } = burn();
    const make = (): NormalizedResource[] => [
      nr('team-a', { ...burn(), subject: { reference: PATIENT } }),
      nr('team-b', { ...noSite, subject: { reference: PATIENT } }),
      nr('team-c', { ...burn(), subject: { reference: PATIENT }, bodySite: [RIGHT_EAR] }),
    ];
    for (const order of [[0, 1, 2], [1, 0, 2], [1, 2, 0], [2, 1, 0]]) {
      const items = make();
      const r = dedupeConditions(order.map((i) => items[i] as NormalizedResource));
      expect(r.survivors.map(sitesOf).every((sites) => sites.length <= 1)).toBe(true);
      expect(r.survivors).toHaveLength(2);
    }
  });

  it('keeps two EHRs\' bilateral tube insertions as one left and one right procedure, not two "left and right" ones', () => {
    const tubes = (site: CodeableConcept): Procedure => ({
      resourceType: 'Procedure', status: 'completed', subject: { reference: PATIENT },
      code: { coding: [{ system: SNOMED, code: '172591000', display: 'Myringotomy and insertion of tympanic ventilation tube' }] },
      performedDateTime: '2026-03-02T09:00:00-07:00', bodySite: [site],
    });
    const r = dedupeProcedures([nr('a', tubes(LEFT_EAR)), nr('a', tubes(RIGHT_EAR)), nr('b', tubes(RIGHT_EAR)), nr('b', tubes(LEFT_EAR))]);
    expect(r.merges).toHaveLength(2);
    expect(r.survivors.map(sitesOf).sort()).toEqual([['Left external ear structure'], ['Right ear structure']]);
  });

  it('keeps blood pressures taken on the left and on the right arm at the same instant apart', () => {
    const bp = (site: CodeableConcept): Observation => ({
      resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code: '8480-6' }] }, subject: { reference: PATIENT },
      effectiveDateTime: '2026-03-02T09:00:00-07:00', valueQuantity: q(104, 'mm[Hg]'), bodySite: site,
    });
    const leftArm: CodeableConcept = { coding: [{ system: SNOMED, code: '368208006', display: 'Left upper arm structure' }] };
    const rightArm: CodeableConcept = { coding: [{ system: SNOMED, code: '368209003', display: 'Right upper arm structure' }] };
    expect(dedupeObservations([nr('a', bp(leftArm)), nr('b', bp(rightArm))]).merges).toEqual([]);
    expect(dedupeObservations([nr('a', bp(leftArm)), nr('b', bp(leftArm))]).merges).toHaveLength(1);
  });

  it('reads a body site by its codings (order and text aside), else by its text; none when absent or malformed', () => {
    expect(bodySiteState([LEFT_EAR])).toBe(bodySiteState([{ coding: [{ system: SNOMED, code: '49521004' }] }]));
    expect(bodySiteState([LEFT_EAR, RIGHT_EAR])).toBe(bodySiteState([RIGHT_EAR, LEFT_EAR]));
    expect(bodySiteState([LEFT_EAR])).not.toBe(bodySiteState([RIGHT_EAR]));
    expect(bodySiteState([{ text: 'Left ear' }])).toBe(bodySiteState([{ text: ' left EAR ' }]));
    expect([bodySiteState(undefined), bodySiteState([]), bodySiteState('left' as unknown as CodeableConcept), bodySiteState([null as unknown as CodeableConcept])])
      .toEqual([undefined, undefined, undefined, undefined]);
  });
});

describe('equivalents are moles times the charge, per analyte', () => {
  const CALCIUM = ['17861-6'];
  const SODIUM = ['2951-2'];
  const MAGNESIUM = ['19123-9'];

  it('does not take calcium 5 mEq/L for 5 mmol/L (Ca²⁺: 1 mmol = 2 mEq), and matches it with 2.5 mmol/L and 10 mg/dL', () => {
    expect(sameQuantity(q(5, 'meq/L'), q(5, 'mmol/L'), CALCIUM)).toBe(false);
    expect(sameQuantity(q(5, 'meq/L'), q(2.5, 'mmol/L'), CALCIUM)).toBe(true);
    expect(sameQuantity(q(2.5, 'mmol/L'), q(5, 'meq/L'), CALCIUM)).toBe(true);
    expect(sameQuantity(q(5, 'meq/L'), q(10, 'mg/dL'), CALCIUM)).toBe(true);
    expect(sameQuantity(q(1.6, 'meq/L'), q(0.8, 'mmol/L'), MAGNESIUM)).toBe(true);
    expect(sameQuantity(q(1.6, 'meq/L'), q(1.6, 'mmol/L'), MAGNESIUM)).toBe(false);
  });

  it('matches sodium 140 mEq/L with 140 mmol/L (monovalent), and never equates equivalents with moles of an analyte whose charge it does not know', () => {
    expect(sameQuantity(q(140, 'meq/L'), q(140, 'mmol/L'), SODIUM)).toBe(true);
    expect(sameQuantity(q(140, 'meq/L'), q(141, 'mmol/L'), SODIUM)).toBe(false);
    expect(sameQuantity(q(140, 'meq/L'), q(140, 'meq/L'))).toBe(true);
    expect(sameQuantity(q(0.14, 'eq/L'), q(140, 'meq/L'))).toBe(true);
    expect(sameQuantity(q(140, 'meq/L'), q(140, 'mmol/L'))).toBe(false);
  });
});
