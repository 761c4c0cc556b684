/**
 * A record one source withdrew as entered in error and another source still holds is flagged, not
 * hidden and not merged: the standing record carries the caution tag and its Composition line says
 * so (R4: entered-in-error "has been withdrawn following previous final release").
 */
import type { Condition, Observation, Quantity } from 'fhir/r4';
import { buildComposition } from '../../src/normalize/composition';
import { dedupe, DEDUPE_RULES, isWithdrawnElsewhere, WITHDRAWN_ELSEWHERE } from '../../src/normalize/dedupe/index';
import { findWithdrawnElsewhere } from '../../src/normalize/dedupe/withdrawn-elsewhere';
import type { NormalizedResource, SourceInfo } from '../../src/normalize/types';
import { nr, permutations } from '../support/dedupe-inputs';

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const SNOMED = 'http://snomed.info/sct';
const PATIENT = 'urn:uuid:00000000-0000-5000-8000-000000000000';
const VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';

const q = (value: number): Quantity => ({ value, unit: 'mmol/L', system: UCUM, code: 'mmol/L' });
const potassium = (value: number, extra: Partial<Observation> = {}): Observation => ({
  resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code: '2823-3', display: 'Potassium' }] }, subject: { reference: PATIENT },
  effectiveDateTime: '2026-05-02T07:40:00-06:00', valueQuantity: q(value), ...extra,
});
const asthma = (verification: string): Condition => ({
  resourceType: 'Condition', subject: { reference: PATIENT }, code: { coding: [{ system: SNOMED, code: '195967001', display: 'Asthma' }] }, onsetDateTime: '2024-03-01',
  verificationStatus: { coding: [{ system: VERIFICATION, code: verification }] },
});
const tagged = (rs: readonly NormalizedResource[]): string[] => rs.filter((r) => isWithdrawnElsewhere(r.resource)).map((r) => r.sourceId).sort();

describe('a record withdrawn at one source and standing at another', () => {
  it('tags the standing K 6.1 and merges nothing, in any order; the withdrawn record itself is untouched', () => {
    const withdrawn = nr('team-a', potassium(6.1, { status: 'entered-in-error' }));
    const standing = nr('team-b', potassium(6.1));
    for (const input of permutations([withdrawn, standing])) {
      const r = dedupe(input);
      expect(r.merges).toEqual([]);
      expect(tagged(r.resources)).toEqual(['team-b']);
      expect(r.resources.find((x) => x.sourceId === 'team-b')?.resource.meta?.tag).toEqual([WITHDRAWN_ELSEWHERE]);
      expect(r.resources.find((x) => x.sourceId === 'team-a')?.resource).toEqual(withdrawn.resource);
    }
    // The input is not changed (raw data stays as received).
    expect(standing.resource.meta).toBeUndefined();
  });

  it('says so on the line of the Composition', () => {
    const sources: SourceInfo[] = ['team-a', 'team-b'].map((id) => ({ sourceId: id, baseUrl: `https://${id}.example.org/fhir/`, name: id, origin: 'local-ehr', pullIds: ['p1'] }));
    const { resources, merges } = dedupe([nr('team-a', potassium(6.1, { status: 'entered-in-error' })), nr('team-b', potassium(6.1))]);
    const { entry } = buildComposition({ subject: PATIENT, resources, merges, options: { bundleId: 'b', timestamp: '2026-11-02T15:00:00Z' }, sources });
    const results = (entry.resource.section ?? []).find((s) => s.code?.coding?.[0]?.code === '30954-2');
    expect(results?.text?.div).toMatch(/Potassium.*\(team-b\)<\/i> <b>Caution: another source withdrew this record as entered in error.<\/b><\/li>/);
  });

  it('tags the survivor when two other sources hold the same result, and a Condition entered in error by its verification status', () => {
    const r = dedupe([nr('team-a', potassium(6.1, { status: 'entered-in-error' })), nr('team-b', potassium(6.1)), nr('team-c', potassium(6.1))]);
    expect(r.merges).toHaveLength(1);
    expect(r.resources.filter((x) => isWithdrawnElsewhere(x.resource)).map((x) => x.fullUrl)).toEqual([r.merges[0]?.survivor]);
    const conditions = dedupe([nr('team-a', asthma('entered-in-error')), nr('team-b', asthma('confirmed'))]);
    expect(tagged(conditions.resources)).toEqual(['team-b']);
  });

  it("leaves alone a source's own correction, another value, and a case with nothing withdrawn", () => {
    expect(tagged(dedupe([nr('team-a', potassium(6.1, { status: 'entered-in-error' })), nr('team-a', potassium(6.1))]).resources)).toEqual([]);
    expect(tagged(dedupe([nr('team-a', potassium(6.1, { status: 'entered-in-error' })), nr('team-b', potassium(4.0))]).resources)).toEqual([]);
    expect(findWithdrawnElsewhere([nr('team-a', potassium(6.1)), nr('team-b', potassium(6.1))], DEDUPE_RULES)).toEqual([]);
  });
});
