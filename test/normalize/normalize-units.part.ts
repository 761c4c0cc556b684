import { convertUcum, isUcumCode, ORIGINAL_QUANTITY_EXTENSION, roundConverted, UCUM_SYSTEM } from '../../src/normalize/units';
import { B_LAB, q, run } from './units-support';


describe('UCUM library', () => {
  it('validates UCUM codes (case-sensitive, annotations allowed)', () => {
    for (const c of ['mg/dL', 'mmol/L', '10*3/uL', 'm[IU]/L', '[in_i]', '{score}', '%', 'ng/ml']) expect(isUcumCode(c)).toBe(true);
    for (const c of ['mIU/L', 'mmHg', 'beats/minute', 'in', '']) expect(isUcumCode(c)).toBe(false);
  });

  it('converts mass ↔ molar with a molecular weight, and refuses without one', () => {
    const r = convertUcum(10.1, 'mmol/L', 'mg/dL', 180.156);
    expect('value' in r && r.value).toBeCloseTo(181.958, 3);
    expect(convertUcum(10.1, 'mmol/L', 'mg/dL')).toMatchObject({ error: expect.stringMatching(/molecular weight/i) as unknown as string });
    const f = convertUcum(98.6, '[degF]', 'Cel');
    expect('value' in f && f.value).toBeCloseTo(37, 6);
  });

  it('rounds to the rule decimals, else to 6 significant digits', () => {
    expect(roundConverted(181.95756, 0)).toBe(182);
    expect(roundConverted(156.73572, 1)).toBe(156.7);
    expect(roundConverted(0.1 + 0.2)).toBe(0.3);
  });
});

describe('Observation units', () => {
  it("converts care team B's glucose mmol/L → mg/dL with UCUM, range included, keeping the original in an extension", () => {
    // Coded with the local code only: beside the molar LOINC 14749-6 the conversion is refused
    // (a mass value would contradict it; normalize-units-safety.part.ts).
    const { observation, converted } = run({
      resourceType: 'Observation',
      code: { coding: [{ system: B_LAB, code: 'GLU' }] },
      valueQuantity: q(10.1, 'mmol/L'),
      referenceRange: [{ low: q(3.9, 'mmol/L'), high: q(5.5, 'mmol/L') }],
    });
    expect(converted).toBe(3);
    expect(observation['valueQuantity']).toEqual({
      value: 182, unit: 'mg/dL', system: UCUM_SYSTEM, code: 'mg/dL',
      extension: [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: q(10.1, 'mmol/L') }],
    });
    expect(observation['referenceRange']).toEqual([{
      low: { ...q(70, 'mg/dL'), extension: [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: q(3.9, 'mmol/L') }] },
      high: { ...q(99, 'mg/dL'), extension: [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: q(5.5, 'mmol/L') }] },
    }]);
  });

  describe('a reference range converts with its value, or the value is not converted', () => {
    const glucose = (referenceRange: unknown[]): Record<string, unknown> => ({
      resourceType: 'Observation', code: { coding: [{ system: B_LAB, code: 'GLU' }] }, valueQuantity: q(10.1, 'mmol/L'), referenceRange,
    });

    it('reads unitless bounds in the value\'s unit and converts them with it (valid in R4)', () => {
      const { observation, converted, warnings } = run(glucose([{ low: { value: 3.9 }, high: { value: 5.5 }, text: 'Fasting' }]));
      expect(converted).toBe(3);
      expect(warnings).toEqual([]);
      expect(observation['valueQuantity']).toMatchObject({ value: 182, code: 'mg/dL' });
      expect(observation['referenceRange']).toEqual([{
        low: { ...q(70, 'mg/dL'), extension: [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: { value: 3.9 } }] },
        high: { ...q(99, 'mg/dL'), extension: [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: { value: 5.5 } }] },
        text: 'Fasting',
      }]);
    });

    it('refuses to convert a value whose range is text stating numbers, keeping both as reported', () => {
      const { observation, converted, warnings } = run(glucose([{ text: '3.9-5.5' }]));
      expect(converted).toBe(0);
      expect(observation['valueQuantity']).toEqual(q(10.1, 'mmol/L'));
      expect(observation['referenceRange']).toEqual([{ text: '3.9-5.5' }]);
      expect(warnings).toEqual([expect.stringMatching(/^unit-conversion-refused: mmol\/L → mg\/dL refused: a reference range is given as text/)]);
    });

    it('refuses to convert a value whose range has a bound in a unit that cannot follow, converting none of the range', () => {
      for (const high of [{ value: 5.5, unit: 'millimoles' }, q(5.5, 'mL')]) {
        const { observation, converted, warnings } = run(glucose([{ low: q(3.9, 'mmol/L'), high }]));
        expect(converted).toBe(0);
        expect(observation['valueQuantity']).toEqual(q(10.1, 'mmol/L'));
        expect(observation['referenceRange']).toEqual([{ low: q(3.9, 'mmol/L'), high }]);
        expect(warnings).toContainEqual(expect.stringMatching(/^unit-conversion-refused: mmol\/L → mg\/dL refused: the reference range's high/));
      }
    });
  });

  it('leaves a value already in the rule unit alone', () => {
    const { observation, converted } = run({ resourceType: 'Observation', code: { coding: [{ system: B_LAB, code: 'GLU' }] }, valueQuantity: q(182, 'mg/dL') });
    expect(converted).toBe(0);
    expect(observation['valueQuantity']).toEqual(q(182, 'mg/dL'));
  });

  it('fills system/code of a unit-only quantity and normalizes ng/ml → ng/mL per the rule (original kept)', () => {
    const { observation } = run({ resourceType: 'Observation', code: { coding: [{ system: B_LAB, code: 'FERR' }] }, valueQuantity: { value: 6, unit: 'ng/ml' } });
    expect(observation['valueQuantity']).toEqual({ ...q(6, 'ng/mL'), extension: [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: { value: 6, unit: 'ng/ml' } }] });
  });

  it('uses the alias table before the unit itself (K/uL is kelvin per microliter in UCUM)', () => {
    const { observation } = run({ resourceType: 'Observation', code: { text: 'WBC' }, valueQuantity: { value: 7.1, unit: 'K/uL' } });
    expect(observation['valueQuantity']).toEqual(q(7.1, 'K/uL', '10*3/uL'));
  });

  it('fills a valid UCUM unit string; warns on a non-UCUM unit or an invalid UCUM code, without changing them', () => {
    const { observation, warnings } = run({
      resourceType: 'Observation', code: { text: 'BP' },
      valueQuantity: { value: 1, unit: 'mg/dL' },
      component: [{ code: { text: 'x' }, valueQuantity: { value: 120, unit: 'mmHg', system: UCUM_SYSTEM, code: 'mmHg' } }, { code: { text: 'y' }, valueQuantity: { value: 3, unit: 'widgets' } }],
    });
    expect(observation['valueQuantity']).toEqual(q(1, 'mg/dL'));
    expect(warnings).toEqual(['unit-not-ucum: "mmHg" is not a valid UCUM code', 'unit-not-ucum: unit "widgets" is not UCUM and has no alias; left without a code']);
  });

  it('warns and keeps the value when a conversion is impossible', () => {
    const { observation, warnings } = run({ resourceType: 'Observation', code: { coding: [{ system: B_LAB, code: 'GLU' }] }, valueQuantity: q(5, 'mL') });
    expect(observation['valueQuantity']).toEqual(q(5, 'mL'));
    expect(warnings[0]).toMatch(/^unit-conversion-failed: 5 mL → mg\/dL/);
  });
});
