import fs from 'node:fs';
import path from 'node:path';
import { MappingsError } from '../../src/cases/mappings-dir';
import { loadSpecialtyMatching, rankSpecialties, SNOMED_SYSTEM, type CaseDiagnosisCode } from '../../src/review/specialty-matching';
import { tempDir } from '../support/temp-dir';

const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';
const matching = loadSpecialtyMatching();
const code = (system: string, value: string, from: CaseDiagnosisCode['from'] = 'intake'): CaseDiagnosisCode => ({ system, code: value, from });

describe('mappings/specialty-matching.json', () => {
  it('loads, and every rule names a listed specialty', () => {
    const listed = new Set(matching.specialties.map((s) => s.code));
    expect(matching.rules.length).toBeGreaterThan(0);
    for (const rule of matching.rules) expect(listed.has(rule.specialty)).toBe(true);
  });

  it.each([
    ['an unknown specialty', { specialty: '2080P9999X', snomed: ['84757009'] }, /rules\.0\[specialty "2080P9999X"\]\.specialty: unknown specialty 2080P9999X/],
    ['a SNOMED CT code with a bad check digit', { specialty: '2084N0402X', snomed: ['84757008'] }, /rules\.0\[specialty "2084N0402X"\]\.snomed\.0: must be a SNOMED CT identifier/],
    ['a malformed ICD-10 prefix', { specialty: '2084N0402X', icd10: ['G-40'] }, /rules\.0\[specialty "2084N0402X"\]\.icd10\.0: must be an ICD-10 code/],
  ])('refuses %s, naming the place', (_what, rule, message) => {
    const dir = tempDir('matching');
    fs.writeFileSync(path.join(dir, 'specialty-matching.json'), JSON.stringify({ ...matching, rules: [rule] }));
    expect(() => loadSpecialtyMatching(dir)).toThrow(MappingsError);
    expect(() => loadSpecialtyMatching(dir)).toThrow(message);
  });
});

describe('rankSpecialties', () => {
  it('matches SNOMED CT exactly and ICD-10 by prefix, with or without the dot', () => {
    const neuro = matching.rules.find((r) => r.icd10.includes('G40'))?.specialty;
    expect(rankSpecialties(matching, [code(ICD10CM, 'G40.909')])[0]?.code).toBe(neuro);
    expect(rankSpecialties(matching, [code(ICD10CM, 'g40909')])[0]?.code).toBe(neuro);
    expect(rankSpecialties(matching, [code(SNOMED_SYSTEM, '84757009')])[0]?.code).toBe(neuro);
    expect(rankSpecialties(matching, [code('http://loinc.org', 'G40')])).toEqual([]);
  });

  it("puts the intake's specialty before one found only in the records, then more matches first", () => {
    const fixtureChild = [code(SNOMED_SYSTEM, '396331005', 'intake'), code(SNOMED_SYSTEM, '46635009', 'records'), code(ICD10CM, 'E10.10', 'records')];
    const ranked = rankSpecialties(matching, fixtureChild);
    const gi = matching.rules.find((r) => r.snomed.includes('396331005'))?.specialty;
    const endo = matching.rules.find((r) => r.snomed.includes('46635009'))?.specialty;
    expect(ranked.map((r) => [r.code, r.fromIntake, r.matchedCodes.length])).toEqual([
      [gi, true, 1],
      [endo, false, 2],
    ]);
  });
});
