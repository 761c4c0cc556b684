import fs from 'node:fs';
import path from 'node:path';
import { MappingsError } from '../../src/cases/mappings-dir';
import {
  applyTerminology,
  defaultTerminologyDir,
  isStandardSystem,
  isValidLoincCode,
  isValidSnomedCode,
  loadTerminologyMappings,
  MAPPED_CODING_EXTENSION,
  TerminologyTally,
} from '../../src/normalize/terminology';
import { collect, ROOT } from '../fixtures/helpers';
import { SHARED_DATA } from '../support/synthea';
import { tempDir } from '../support/temp-dir';

const B_LAB = 'http://care-team-b.example.org/fhir/CodeSystem/lab';
const mappings = loadTerminologyMappings();

function terminologyDirWith(files: Record<string, unknown>): string {
  const dir = tempDir('terminology');
  const real = defaultTerminologyDir();
  for (const f of fs.readdirSync(real)) fs.copyFileSync(path.join(real, f), path.join(dir, f));
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

describe('LOINC code check', () => {
  it('accepts LOINC terms with a correct mod-10 check digit and LOINC answer/part codes', () => {
    for (const code of ['2345-7', '4548-4', '14749-6', '31017-7', '718-7', '8302-2', 'LA6568-5', 'LP29684-5']) expect(isValidLoincCode(code)).toBe(true);
  });

  it('rejects OpenMRS concept ids, wrong check digits and other shapes', () => {
    for (const code of ['5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '2345-6', '2345', '12345678-9', 'GLU', '']) expect(isValidLoincCode(code)).toBe(false);
  });

  it('accepts every LOINC and SNOMED CT code of the fixtures and of the real data, except Synthea-HIV OpenMRS ids', () => {
    const files = [
      path.join(ROOT, 'fixtures/care-team-a.json'),
      path.join(ROOT, 'fixtures/care-team-b.json'),
      ...['synthea-smart', 'synthea-hiv', 'inferno-uscore'].flatMap((d) =>
        fs.readdirSync(path.join(SHARED_DATA, 'fhir', d)).map((f) => path.join(SHARED_DATA, 'fhir', d, f))),
    ];
    const invalid = new Set<string>();
    const invalidSnomed = new Set<string>();
    let checked = 0;
    let snomed = 0;
    for (const file of files) {
      const json: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
      for (const { value } of collect(json, 'coding')) {
        for (const c of value as { system?: string; code?: string }[]) {
          if (c.system === 'http://snomed.info/sct' && c.code) {
            snomed++;
            if (!isValidSnomedCode(c.code)) invalidSnomed.add(c.code);
          }
          if (c.system !== 'http://loinc.org' || !c.code) continue;
          checked++;
          if (!isValidLoincCode(c.code)) invalid.add(c.code);
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
    expect([...invalid].filter((c) => !/^\d+A+$/.test(c))).toEqual([]);
    expect(invalid.size).toBeGreaterThan(10);
    expect(snomed).toBeGreaterThan(500);
    // Synthea-HIV puts OpenMRS ids under SNOMED CT as well, and Synthea (smart) codes one Procedure
    // with the LOINC code 34552-0 under SNOMED CT: both are flagged.
    expect([...invalidSnomed].filter((c) => !/^\d+A+$/.test(c))).toEqual(['34552-0']);
    expect(invalidSnomed.size).toBeGreaterThan(10);
  });
});

describe('SNOMED CT identifier check', () => {
  it('accepts SCTIDs with a correct Verhoeff check digit', () => {
    for (const code of ['46635009', '396331005', '87522002', '34713006', '54840006', '237836003', '302866003', '410620009', '54150009', '420422005', '111088007', '900000000000003001']) {
      expect(isValidSnomedCode(code)).toBe(true);
    }
  });

  it('rejects OpenMRS ids, wrong check digits, leading zeros and short codes', () => {
    for (const code of ['112141AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '46635008', '046635009', '12345', '']) expect(isValidSnomedCode(code)).toBe(false);
  });
});

describe('loading the rule data', () => {
  it('loads the shipped tables once (same object on the second call)', () => {
    expect(loadTerminologyMappings()).toBe(mappings);
    expect(mappings.conceptMaps.map((m) => m.file)).toEqual(['conceptmap-care-team-b-lab.json', 'conceptmap-icd10cm-to-snomed.json', 'conceptmap-loinc-growth-vitals.json']);
    expect(mappings.targets.get(`${B_LAB}|GLU`)?.[0]).toMatchObject({ system: 'http://loinc.org', code: '2345-7' });
    expect(mappings.quantityRules.get(`${B_LAB}|GLU`)).toMatchObject({ unit: 'mg/dL', molecularWeight: 180.156, decimals: 0 });
    expect(mappings.ucumAliases.get('K/uL')).toBe('10*3/uL');
  });

  it('knows standard systems and HL7 prefixes', () => {
    expect(isStandardSystem(mappings, 'http://snomed.info/sct')).toBe(true);
    expect(isStandardSystem(mappings, 'http://terminology.hl7.org/CodeSystem/observation-category')).toBe(true);
    expect(isStandardSystem(mappings, 'http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category')).toBe(true);
    expect(isStandardSystem(mappings, B_LAB)).toBe(false);
  });

  it.each([
    ['a bad LOINC target', { 'conceptmap-x.json': { resourceType: 'ConceptMap', url: 'https://x.example.org/cm', version: '1', name: 'X', title: 'x', status: 'active', group: [{ source: 'urn:x', target: 'http://loinc.org', element: [{ code: 'a', target: [{ code: '1234-5', display: 'x', equivalence: 'equivalent' }] }] }] } }, /1234-5 is not a LOINC code/],
    ['a target system that is not a mapping target', { 'conceptmap-x.json': { resourceType: 'ConceptMap', url: 'https://x.example.org/cm', version: '1', name: 'X', title: 'x', status: 'active', group: [{ source: 'urn:x', target: 'urn:other', element: [{ code: 'a', target: [{ code: 'b', display: 'x', equivalence: 'equivalent' }] }] }] } }, /group\.0\[source "urn:x"\]\.target/],
    ['a non-UCUM quantity unit', { 'conceptmap-x.json': { resourceType: 'ConceptMap', url: 'https://x.example.org/cm', version: '1', name: 'X', title: 'x', status: 'active', group: [{ source: 'urn:x', target: 'http://loinc.org', element: [{ code: 'a', target: [{ code: '2345-7', display: 'x', equivalence: 'equivalent' }], quantity: { unit: 'mg/dl/x/' } }] }] } }, /not UCUM/],
    ['a code mapped twice', { 'conceptmap-zz.json': { resourceType: 'ConceptMap', url: 'https://x.example.org/cm', version: '1', name: 'X', title: 'x', status: 'active', group: [{ source: B_LAB, target: 'http://loinc.org', element: [{ code: 'GLU', target: [{ code: '2345-7', display: 'x', equivalence: 'equivalent' }] }] }] } }, /also mapped in conceptmap-care-team-b-lab.json/],
    ['an unknown member', { 'systems.json': { standard: [{ system: 'x', name: 'x' }], standardPrefixes: [], extra: 1 } }, /extra/],
    ['a non-UCUM alias', { 'ucum-units.json': { aliases: [{ unit: 'K/uL', ucum: 'thousands' }] } }, /not UCUM/],
    ['invalid JSON', { 'systems.json': '{ nope' }, /not valid JSON/],
  ])('refuses %s with a MappingsError naming the file', (_label, files, message) => {
    const dir = terminologyDirWith(files);
    expect(() => loadTerminologyMappings(dir)).toThrow(MappingsError);
    expect(() => loadTerminologyMappings(dir)).toThrow(message);
  });
});

describe('applyTerminology', () => {
  function run(resource: Record<string, unknown>, sourceId = 'b') {
    const tally = new TerminologyTally(mappings);
    const warnings: string[] = [];
    applyTerminology(resource, sourceId, tally, (code, message) => void warnings.push(`${code}: ${message}`));
    return { resource, tally, warnings };
  }

  it('appends the mapped coding beside the original, marked userSelected=false with the ConceptMap', () => {
    const { resource, tally } = run({ resourceType: 'Observation', code: { coding: [{ system: B_LAB, code: 'HGBA1C', display: 'Hemoglobin A1C' }] } });
    expect((resource['code'] as { coding: unknown[] }).coding).toEqual([
      { system: B_LAB, code: 'HGBA1C', display: 'Hemoglobin A1C' },
      {
        extension: [{ url: MAPPED_CODING_EXTENSION, valueCanonical: 'https://second-opinion.example.org/fhir/ConceptMap/care-team-b-lab-to-loinc|1.0.0' }],
        system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', userSelected: false,
      },
    ]);
    expect(tally.mappedCodings).toBe(1);
    expect(tally.unmappedCodes()).toEqual([]);
  });

  it('does not append a coding the concept already has', () => {
    const { resource, tally } = run({ resourceType: 'Observation', code: { coding: [{ system: B_LAB, code: 'TSH' }, { system: 'http://loinc.org', code: '3016-3' }] } });
    expect((resource['code'] as { coding: unknown[] }).coding).toHaveLength(2);
    expect(tally.mappedCodings).toBe(0);
    expect(tally.unmappedCodes()).toEqual([]);
  });

  it('maps ICD-10-CM conditions to SNOMED CT, including "wider" targets', () => {
    const { resource } = run({ resourceType: 'Condition', code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'E10.9' }] } });
    expect((resource['code'] as { coding: { system?: string; code?: string }[] }).coding.map((c) => `${c.system}|${c.code}`)).toEqual([
      'http://hl7.org/fhir/sid/icd-10-cm|E10.9', 'http://snomed.info/sct|46635009',
    ]);
  });

  it('works on vaccineCode, medicationCodeableConcept, valueCodeableConcept, category lists and components', () => {
    const local = (code: string) => ({ coding: [{ system: B_LAB, code }] });
    const { tally } = run({
      resourceType: 'Observation', category: [local('NA')], valueCodeableConcept: local('K'), vaccineCode: local('CL'),
      medicationCodeableConcept: local('CO2'), component: [{ code: local('BUN'), valueCodeableConcept: local('CREAT') }],
    });
    expect(tally.mappedCodings).toBe(6);
  });

  it('counts unmapped local codes per source, type, system and code; leaves standard systems alone', () => {
    const tally = new TerminologyTally(mappings);
    const dr = () => ({ resourceType: 'DiagnosticReport', code: { coding: [{ system: B_LAB, code: 'CELIAC-SCR' }, { system: 'http://www.ama-assn.org/go/cpt', code: '86364' }] } });
    applyTerminology(dr(), 'b', tally, () => undefined);
    applyTerminology(dr(), 'b', tally, () => undefined);
    expect(tally.unmappedCodes()).toEqual([{ sourceId: 'b', resourceType: 'DiagnosticReport', system: B_LAB, code: 'CELIAC-SCR', count: 2 }]);
  });

  it('flags non-LOINC codes under the LOINC system (Synthea-HIV) without fixing them', () => {
    const code = { coding: [{ system: 'http://loinc.org', code: '5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', display: 'Weight' }] };
    const { resource, tally, warnings } = run({ resourceType: 'Observation', code: structuredClone(code) }, 'hiv');
    expect(resource['code']).toEqual(code);
    expect(tally.unmappedCodes()).toEqual([{ sourceId: 'hiv', resourceType: 'Observation', system: 'http://loinc.org', code: '5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', count: 1 }]);
    expect(warnings).toEqual([expect.stringMatching(/^invalid-loinc-code: code "5089A+" under http:\/\/loinc.org is not a LOINC code/)]);
    const snomed = run({ resourceType: 'Condition', code: { coding: [{ system: 'http://snomed.info/sct', code: '112141AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }] } }, 'hiv');
    expect(snomed.warnings).toEqual([expect.stringMatching(/^invalid-snomed-code: /)]);
  });
});
