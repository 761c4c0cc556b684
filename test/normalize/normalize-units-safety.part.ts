/**
 * Unit conversions that UCUM can compute but that would change what a result means are refused
 * (value kept as reported, warning `unit-conversion-refused`), and one-letter unit texts are not
 * taken for the UCUM unit of that letter.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MappingsError } from '../../src/cases/mappings-dir';
import { defaultTerminologyDir, loadTerminologyMappings, MAPPED_CODING_EXTENSION } from '../../src/normalize/terminology';
import { changesKind, isDimensionlessSwap, ORIGINAL_QUANTITY_EXTENSION, UCUM_SYSTEM } from '../../src/normalize/units';
import { B_LAB, q, run } from './units-support';
import { tempDir } from '../support/temp-dir';

const LOINC = 'http://loinc.org';

/** The LOINC coding terminology appends for B's GLU row (as after applyTerminology). */
const MAPPED_2345_7 = {
  extension: [{ url: MAPPED_CODING_EXTENSION, valueCanonical: 'https://second-opinion.example.org/fhir/ConceptMap/care-team-b-lab-to-loinc|1.0.0' }],
  system: LOINC, code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma', userSelected: false,
};

describe('fix 1: no conversion between different dimensionless units (another scale, not another unit)', () => {
  it('keeps HbA1c 48 mmol/mol (IFCC) as reported instead of "converting" it to 4.8 % (NGSP would be ~6.5 %)', () => {
    const { observation, converted, warnings } = run({
      resourceType: 'Observation',
      code: { coding: [{ system: B_LAB, code: 'HGBA1C' }] },
      valueQuantity: q(48, 'mmol/mol'),
      referenceRange: [{ high: q(42, 'mmol/mol') }],
    });
    expect(converted).toBe(0);
    expect(observation['valueQuantity']).toEqual(q(48, 'mmol/mol'));
    expect(observation['referenceRange']).toEqual([{ high: q(42, 'mmol/mol') }]);
    // one warning for the Observation: value and range share the reason
    expect(warnings).toEqual([expect.stringMatching(/^unit-conversion-refused: mmol\/mol → % refused: mmol\/mol and % are both dimensionless .*different measurement scales.*; kept as reported$/)]);
  });

  it('tells dimensionless swaps (%, 1, {ratio}, mmol/mol, L/L) from conversions within one kind', () => {
    for (const [from, to] of [['mmol/mol', '%'], ['%', 'mmol/mol'], ['1', '%'], ['{ratio}', '1'], ['L/L', '%'], ['mg/g', '%']]) expect([from, to, isDimensionlessSwap(from ?? '', to ?? '')]).toEqual([from, to, true]);
    for (const [from, to] of [['%', '%'], ['mmol', 'umol'], ['g/L', 'mg/dL'], ['mmol/L', 'mg/dL'], ['10*9/L', '10*3/uL']]) expect([from, to, isDimensionlessSwap(from ?? '', to ?? '')]).toEqual([from, to, false]);
  });

  it('converts only from the units a rule lists (`from`): same-kind g/L glucose, or any unit for a rule listing none, is kept', () => {
    const glucose = run({ resourceType: 'Observation', code: { coding: [{ system: B_LAB, code: 'GLU' }] }, valueQuantity: q(1.82, 'g/L') });
    expect(glucose.converted).toBe(0);
    expect(glucose.observation['valueQuantity']).toEqual(q(1.82, 'g/L'));
    expect(glucose.warnings).toEqual(['unit-conversion-refused: g/L → mg/dL refused: the rule converts only from mmol/L; kept as reported']);
    const cholesterol = run({ resourceType: 'Observation', code: { coding: [{ system: B_LAB, code: 'CHOL' }] }, valueQuantity: q(1.5, 'g/L') });
    expect(cholesterol.observation['valueQuantity']).toEqual(q(1.5, 'g/L'));
    expect(cholesterol.warnings).toEqual(['unit-conversion-refused: g/L → mg/dL refused: the rule lists no unit to convert from; kept as reported']);
  });

  it.each([
    ['a dimensionless source unit of another scale', { unit: '%', from: ['mmol/mol'] }, /"mmol\/mol" and "%" are different dimensionless scales/],
    ['a source unit that does not convert', { unit: 'mg/dL', from: ['mL'] }, /"mL" does not convert to "mg\/dL"/],
    ['a molar source unit without a molecular weight', { unit: 'mg/dL', from: ['mmol/L'] }, /"mmol\/L" does not convert to "mg\/dL"/],
    ['a non-UCUM source unit', { unit: 'mg/dL', from: ['mg/dl/x/'] }, /"mg\/dl\/x\/" is not UCUM/],
  ])('refuses rule data with %s (MappingsError)', (_label, quantity, message) => {
    const dir = tempDir('terminology');
    for (const f of fs.readdirSync(defaultTerminologyDir())) fs.copyFileSync(path.join(defaultTerminologyDir(), f), path.join(dir, f));
    const map = { resourceType: 'ConceptMap', url: 'https://x.example.org/cm', version: '1', name: 'X', title: 'x', status: 'active', group: [{ source: 'urn:x', target: LOINC, element: [{ code: 'a', target: [{ code: '4548-4', display: 'x', equivalence: 'equivalent' }], quantity }] }] };
    fs.writeFileSync(path.join(dir, 'conceptmap-x.json'), JSON.stringify(map));
    expect(() => loadTerminologyMappings(dir)).toThrow(MappingsError);
    expect(() => loadTerminologyMappings(dir)).toThrow(message);
  });
});

describe('fix 2: no molar ↔ mass conversion against a code the source sent for the reported kind', () => {
  it('keeps glucose coded with the molar LOINC 14749-6 in mmol/L (a mass value would contradict that coding)', () => {
    const code = { coding: [{ system: B_LAB, code: 'GLU' }, { system: LOINC, code: '14749-6', display: 'Glucose [Moles/volume] in Serum or Plasma' }, MAPPED_2345_7] };
    const { observation, converted, warnings } = run({
      resourceType: 'Observation', code: structuredClone(code),
      valueQuantity: q(10.1, 'mmol/L'),
      referenceRange: [{ low: q(3.9, 'mmol/L'), high: q(5.5, 'mmol/L') }],
    });
    expect(converted).toBe(0);
    expect(observation['valueQuantity']).toEqual(q(10.1, 'mmol/L'));
    expect(observation['referenceRange']).toEqual([{ low: q(3.9, 'mmol/L'), high: q(5.5, 'mmol/L') }]);
    // The source's codings stay; the mapped mass LOINC 2345-7 is taken back: beside a value kept in
    // mmol/L it would code it as a mass concentration.
    expect(observation['code']).toEqual({ coding: code.coding.slice(0, 2) });
    expect(warnings).toEqual([
      'unit-conversion-refused: mmol/L → mg/dL refused: it changes the kind of quantity (amount of substance → mass) and the source coded the result http://loinc.org|14749-6, which states the reported kind; kept as reported',
      'mapped-coding-withheld: mapped coding http://loinc.org|2345-7 not added: it states mass, and the value stays in mmol/L (amount of substance)',
    ]);
  });

  it('does the same in a component', () => {
    const { observation, converted } = run({
      resourceType: 'Observation', code: { text: 'panel' },
      component: [{ code: { coding: [{ system: B_LAB, code: 'GLU' }, { system: LOINC, code: '14749-6' }] }, valueQuantity: q(10.1, 'mmol/L') }],
    });
    expect(converted).toBe(0);
    expect((observation['component'] as { valueQuantity: unknown }[])[0]?.valueQuantity).toEqual(q(10.1, 'mmol/L'));
  });

  it('still converts when only the local code and the row\'s own (mass) LOINC target code the result', () => {
    const { observation, converted, warnings } = run({
      resourceType: 'Observation', code: { coding: [{ system: B_LAB, code: 'GLU' }, MAPPED_2345_7] }, valueQuantity: q(10.1, 'mmol/L'),
    });
    expect(converted).toBe(1);
    expect(observation['valueQuantity']).toEqual({ ...q(182, 'mg/dL'), extension: [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: q(10.1, 'mmol/L') }] });
    expect(warnings).toEqual([]);
  });

  it('knows which conversions change the kind of quantity', () => {
    expect(changesKind('mmol/L', 'mg/dL')).toBe(true);
    expect(changesKind('mg/dL', 'umol/L')).toBe(true);
    expect(changesKind('meq/L', 'mmol/L')).toBe(true);
    expect(changesKind('mmol/L', 'umol/L')).toBe(false);
    expect(changesKind('g/L', 'mg/dL')).toBe(false);
  });
});

describe('fix 3: one-letter unit texts', () => {
  it('codes a body temperature sent as "C" as Cel (not coulomb), "F" as [degF], "deg C" as Cel', () => {
    for (const unit of ['C', 'deg C', '°C']) {
      const { observation, warnings } = run({ resourceType: 'Observation', code: { coding: [{ system: LOINC, code: '8310-5' }] }, valueQuantity: { value: 37.2, unit } });
      expect(observation['valueQuantity']).toEqual({ value: 37.2, unit, system: UCUM_SYSTEM, code: 'Cel' });
      expect(warnings).toEqual([]);
    }
    // Read as [degF] (not farad), then converted to Cel by the body temperature row (conceptmap-loinc-growth-vitals.json).
    for (const unit of ['F', 'degF']) {
      const { observation, warnings } = run({ resourceType: 'Observation', code: { coding: [{ system: LOINC, code: '8310-5' }] }, valueQuantity: { value: 99, unit } });
      expect(observation['valueQuantity']).toEqual({
        value: 37.2, unit: 'Cel', system: UCUM_SYSTEM, code: 'Cel', extension: [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: { value: 99, unit } }],
      });
      expect(warnings).toEqual([]);
    }
  });

  it('applies the alias to a code sent without a system, and to a UCUM-system quantity without a code', () => {
    const { observation } = run({
      resourceType: 'Observation', code: { text: 'temp' },
      valueQuantity: { value: 37.2, code: 'C' },
      referenceRange: [{ low: { value: 36, unit: 'C', system: UCUM_SYSTEM } }],
    });
    expect(observation['valueQuantity']).toEqual({ value: 37.2, system: UCUM_SYSTEM, code: 'Cel' });
    expect(observation['referenceRange']).toEqual([{ low: { value: 36, unit: 'C', system: UCUM_SYSTEM, code: 'Cel' } }]);
  });

  it('leaves a bare "m" (months? minutes? metres?) as unit text only, with a warning naming its UCUM reading', () => {
    const { observation, warnings } = run({ resourceType: 'Observation', code: { text: 'age at onset' }, valueQuantity: { value: 18, unit: 'm' } });
    expect(observation['valueQuantity']).toEqual({ value: 18, unit: 'm' });
    expect(warnings).toEqual(['unit-ambiguous: unit "m" is a bare one-letter unit with no alias (as UCUM it would be meter); left without a code']);
  });

  it('still codes unambiguous one-letter units listed as aliases, and longer UCUM units as before', () => {
    const { observation, warnings } = run({
      resourceType: 'Observation', code: { text: 'x' },
      component: [
        { code: { text: 'a' }, valueQuantity: { value: 3200, unit: 'g' } },
        { code: { text: 'b' }, valueQuantity: { value: 18, unit: 'months' } },
        { code: { text: 'c' }, valueQuantity: { value: 18, unit: 'mo' } },
      ],
    });
    expect((observation['component'] as { valueQuantity: { code?: string } }[]).map((c) => c.valueQuantity.code)).toEqual(['g', 'mo', 'mo']);
    expect(warnings).toEqual([]);
  });
});
