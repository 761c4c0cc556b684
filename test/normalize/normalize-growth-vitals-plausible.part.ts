/**
 * Plausible ranges on quantity rules (`units.ts` step 3): a growth vital that would end outside its
 * row's range — after conversion, or as reported in the row's unit — is not converted, is kept
 * exactly as the source sent it, and is warned `quantity-implausible`, so a unit recorded wrongly
 * (a Celsius reading labelled [degF], grams labelled kg) is not shown as a measured value.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Quantity } from 'fhir/r4';
import { MappingsError } from '../../src/cases/mappings-dir';
import { defaultTerminologyDir, loadTerminologyMappings } from '../../src/normalize/terminology';
import { ORIGINAL_QUANTITY_EXTENSION, UCUM_SYSTEM } from '../../src/normalize/units';
import { tempDir } from '../support/temp-dir';
import { B_LAB, mappings, q, run } from './units-support';

const LOINC = 'http://loinc.org';
const vital = (code: string, value: Quantity, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] }, valueQuantity: value, ...extra,
});
const original = (value: Quantity) => [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: value }];

describe('the shipped growth-vitals rows carry plausible ranges in their unit', () => {
  it.each([
    ['29463-7', 'kg', 0.2, 300],
    ['3141-9', 'kg', 0.2, 300],
    ['8302-2', 'cm', 20, 250],
    ['8306-3', 'cm', 20, 250],
    ['9843-4', 'cm', 15, 80],
    ['8287-5', 'cm', 15, 80],
    ['8310-5', 'Cel', 25, 45],
    ['8331-1', 'Cel', 25, 45],
  ])('%s: %s %d–%d', (code, unit, low, high) => {
    const rule = mappings.quantityRules.get(`${LOINC}|${code}`);
    expect(rule?.unit).toBe(unit);
    expect(rule?.plausible).toEqual({ low, high });
  });

  it('rules without a range (care team B lab rows) have none', () => {
    expect(mappings.quantityRules.get(`${B_LAB}|GLU`)?.plausible).toBeUndefined();
  });
});

describe('a value implausible after conversion is not converted', () => {
  it('keeps a Celsius temperature labelled [degF] (37 [degF] would be 2.8 Cel) as reported, with its range, and warns', () => {
    // R4 reads unitless bounds in the value's unit; they are not given the value's unit either.
    const range = [{ low: { value: 36.5 }, high: { value: 37.5 } }];
    const { observation, converted, warnings } = run(vital('8310-5', q(37, 'degF', '[degF]'), { referenceRange: structuredClone(range) }));
    expect(converted).toBe(0);
    expect(observation['valueQuantity']).toEqual(q(37, 'degF', '[degF]'));
    expect(observation['referenceRange']).toEqual(range);
    expect(warnings).toEqual([
      'quantity-implausible: 37 [degF] would be 2.8 Cel, outside 25–45 Cel for Body temperature (8310-5): not converted, kept as reported; was it recorded in Cel?',
    ]);
  });

  it('keeps a range in the reported unit beside the value kept, so the two still agree', () => {
    const range = [{ low: q(36, 'degF', '[degF]'), high: q(37.5, 'degF', '[degF]') }];
    const { observation, converted, warnings } = run(vital('8331-1', q(38.2, 'degF', '[degF]'), { referenceRange: structuredClone(range) }));
    expect(converted).toBe(0);
    expect(observation['valueQuantity']).toEqual(q(38.2, 'degF', '[degF]'));
    expect(observation['referenceRange']).toEqual(range);
    expect(warnings).toEqual([
      'quantity-implausible: 38.2 [degF] would be 3.4 Cel, outside 25–45 Cel for Oral temperature (8331-1): not converted, kept as reported; was it recorded in Cel?',
    ]);
  });

  it('asks about no unit when the reported number is implausible in the rule unit too', () => {
    // 13080 mm = 1308 cm: millimetres sent ten times too large; 13080 cm is no height either.
    const { observation, converted, warnings } = run(vital('8302-2', q(13080, 'mm')));
    expect(converted).toBe(0);
    expect(observation['valueQuantity']).toEqual(q(13080, 'mm'));
    expect(warnings).toEqual(['quantity-implausible: 13080 mm would be 1308 cm, outside 20–250 cm for Body height (8302-2): not converted, kept as reported']);
  });

  it('still converts plausible values: 98.6 [degF] is 37 Cel, 7 [lb_av] is 3.175 kg, with the range', () => {
    const temperature = run(vital('8310-5', q(98.6, 'degF', '[degF]'), { referenceRange: [{ low: { value: 97 }, high: { value: 99.5 } }] }));
    expect(temperature.warnings).toEqual([]);
    expect(temperature.converted).toBe(3);
    expect(temperature.observation['valueQuantity']).toEqual({ value: 37, unit: 'Cel', system: UCUM_SYSTEM, code: 'Cel', extension: original(q(98.6, 'degF', '[degF]')) });
    expect(temperature.observation['referenceRange']).toEqual([{
      low: { value: 36.1, unit: 'Cel', system: UCUM_SYSTEM, code: 'Cel', extension: original({ value: 97 }) },
      high: { value: 37.5, unit: 'Cel', system: UCUM_SYSTEM, code: 'Cel', extension: original({ value: 99.5 }) },
    }]);
    const weight = run(vital('29463-7', q(7, 'lb', '[lb_av]')));
    expect(weight.warnings).toEqual([]);
    expect(weight.converted).toBe(1);
    expect(weight.observation['valueQuantity']).toEqual({ value: 3.175, unit: 'kg', system: UCUM_SYSTEM, code: 'kg', extension: original(q(7, 'lb', '[lb_av]')) });
  });

  it('takes the bounds as plausible (inclusive): 77 [degF] is 25 Cel, 113 [degF] is 45 Cel', () => {
    for (const [reported, value] of [[77, 25], [113, 45]] as const) {
      const { observation, warnings } = run(vital('8310-5', q(reported, 'degF', '[degF]')));
      expect(warnings).toEqual([]);
      expect(observation['valueQuantity']).toMatchObject({ value, code: 'Cel' });
    }
  });
});

describe('a value implausible in the rule unit as reported (nothing to convert) is warned', () => {
  it('98.6 Cel: kept, and warned that it is plausible in [degF]', () => {
    const { observation, converted, warnings } = run(vital('8310-5', q(98.6, 'Cel')));
    expect(converted).toBe(0);
    expect(observation['valueQuantity']).toEqual(q(98.6, 'Cel'));
    expect(warnings).toEqual(['quantity-implausible: 98.6 Cel is outside 25–45 Cel for Body temperature (8310-5): kept as reported; was it recorded in [degF]?']);
  });

  it('leaves its reference range as reported too (bounds in [degF] are not converted beside it)', () => {
    const range = [{ low: q(97, 'degF', '[degF]'), high: q(99.5, 'degF', '[degF]') }];
    const { observation, converted, warnings } = run(vital('8310-5', q(98.6, 'C', 'Cel'), { referenceRange: structuredClone(range) }));
    expect(converted).toBe(0);
    expect(observation['referenceRange']).toEqual(range);
    expect(warnings).toEqual(['quantity-implausible: 98.6 Cel is outside 25–45 Cel for Body temperature (8310-5): kept as reported; was it recorded in [degF]?']);
  });

  it('a newborn weight in grams labelled kg: every listed unit it would be plausible in is named', () => {
    // 3200 [oz_av] = 90.7 kg and 3200 g = 3.2 kg are both plausible; 3200 [lb_av] = 1451 kg is not.
    const { observation, warnings } = run(vital('29463-7', q(3200, 'kg')));
    expect(observation['valueQuantity']).toEqual(q(3200, 'kg'));
    expect(warnings).toEqual(['quantity-implausible: 3200 kg is outside 0.2–300 kg for Body weight (29463-7): kept as reported; was it recorded in [oz_av] or g?']);
  });

  it('a plausible value in the rule unit is left alone without a warning (3.2 kg, 37 Cel, 0.2 kg)', () => {
    for (const [code, quantity] of [['29463-7', q(3.2, 'kg')], ['8310-5', q(37, 'Cel')], ['3141-9', q(0.2, 'kg')]] as const) {
      const { observation, converted, warnings } = run(vital(code, { ...quantity }));
      expect([code, converted, warnings]).toEqual([code, 0, []]);
      expect(observation['valueQuantity']).toEqual(quantity);
    }
  });

  it('judges a component with its own rule', () => {
    const { observation, warnings } = run({
      resourceType: 'Observation', status: 'final', code: { text: 'vitals' },
      component: [{ code: { coding: [{ system: LOINC, code: '8310-5' }] }, valueQuantity: q(37, 'degF', '[degF]') }],
    });
    expect((observation['component'] as Record<string, unknown>[])[0]?.['valueQuantity']).toEqual(q(37, 'degF', '[degF]'));
    expect(warnings).toEqual([expect.stringMatching(/^quantity-implausible: 37 \[degF\] would be 2\.8 Cel, outside 25–45 Cel/)]);
  });
});

describe('loading a plausible range', () => {
  function dirWith(plausible: unknown): string {
    const dir = tempDir('terminology');
    for (const f of fs.readdirSync(defaultTerminologyDir())) fs.copyFileSync(path.join(defaultTerminologyDir(), f), path.join(dir, f));
    const map = {
      resourceType: 'ConceptMap', url: 'https://x.example.org/cm', version: '1', name: 'X', title: 'x', status: 'active',
      group: [{ source: 'urn:x', target: LOINC, element: [{ code: 'TEMP-1', target: [{ code: '8310-5', display: 'x', equivalence: 'equivalent' }], quantity: { unit: 'Cel', from: ['[degF]'], plausible } }] }],
    };
    fs.writeFileSync(path.join(dir, 'conceptmap-x.json'), JSON.stringify(map));
    return dir;
  }

  it.each([
    ['low above high', { low: 45, high: 25 }, 'TEMP-1: quantity plausible low 45 is not below high 25 (Cel)'],
    ['low equal to high', { low: 37, high: 37 }, 'TEMP-1: quantity plausible low 37 is not below high 37 (Cel)'],
    ['a bound given as a string', { low: '25', high: 45 }, 'TEMP-1: quantity plausible low "25" is not a number (in Cel)'],
    ['a missing bound', { low: 25 }, 'TEMP-1: quantity plausible high missing is not a number (in Cel)'],
    ['a null bound', { low: 25, high: null }, 'TEMP-1: quantity plausible high null is not a number (in Cel)'],
  ])('refuses %s with a MappingsError naming the file and the row', (_label, plausible, message) => {
    const dir = dirWith(plausible);
    expect(() => loadTerminologyMappings(dir)).toThrow(MappingsError);
    expect(() => loadTerminologyMappings(dir)).toThrow(message);
    expect(() => loadTerminologyMappings(dir)).toThrow('conceptmap-x.json is invalid');
  });

  it('refuses an unknown member of the range (strict, like the rest of the rule data), naming the file, the row and the member', () => {
    const dir = dirWith({ low: 25, high: 45, unit: 'Cel' });
    expect(() => loadTerminologyMappings(dir)).toThrow(MappingsError);
    // The whole message (an Error given to toThrow: its message compared for equality).
    expect(() => loadTerminologyMappings(dir)).toThrow(
      new Error(`Rule data ${path.join(dir, 'conceptmap-x.json')} is invalid:\n  group.0[source "urn:x"].element.0[code "TEMP-1"].quantity.plausible: Unrecognized key: "unit"`),
    );
  });

  it('loads a good range as numbers', () => {
    const loaded = loadTerminologyMappings(dirWith({ low: 25, high: 45, $comment: 'body temperature' }));
    expect(loaded.quantityRules.get('urn:x|TEMP-1')).toEqual({ unit: 'Cel', from: ['[degF]'], plausible: { low: 25, high: 45 } });
  });
});
