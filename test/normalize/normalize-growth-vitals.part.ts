/**
 * Growth vital signs read in one set of units: body weight, height/length, head circumference and
 * body temperature (LOINC, as every team codes them) are normalized to kg, cm, cm and Cel by the
 * rows of `mappings/terminology/conceptmap-loinc-growth-vitals.json`, the value as reported kept in
 * the original-quantity extension. Care team B (fixture) reports [lb_av], [in_i] and [degF].
 */
import type { Observation, Quantity } from 'fhir/r4';
import { normalize } from '../../src/normalize/normalize';
import { ORIGINAL_QUANTITY_EXTENSION, UCUM_SYSTEM } from '../../src/normalize/units';
import { loadManifest } from '../fixtures/helpers';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { rawFromBundle, sourceInfo } from './normalize-support';
import { mappings, q, run } from './units-support';

const LOINC = 'http://loinc.org';
const vital = (code: string, value: Quantity): Record<string, unknown> => ({
  resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] }, valueQuantity: value,
});
const original = (value: Quantity) => [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: value }];

describe('growth vital signs in US customary units', () => {
  it.each([
    ['body weight 29463-7', '29463-7', q(56, 'lb', '[lb_av]'), 25.401, 'kg'],
    ['body weight measured 3141-9', '3141-9', q(56, 'lb', '[lb_av]'), 25.401, 'kg'],
    ['body weight in ounces', '29463-7', q(896, 'oz', '[oz_av]'), 25.401, 'kg'],
    ['a newborn weight in grams', '29463-7', q(3452, 'g'), 3.452, 'kg'],
    ['body height 8302-2', '8302-2', q(51.5, 'in', '[in_i]'), 130.8, 'cm'],
    ['body length lying 8306-3', '8306-3', q(20.5, 'in', '[in_i]'), 52.1, 'cm'],
    ['head circumference 9843-4', '9843-4', q(17.5, 'in', '[in_i]'), 44.5, 'cm'],
    ['head circumference by tape 8287-5', '8287-5', q(455, 'mm'), 45.5, 'cm'],
    ['body temperature 8310-5', '8310-5', q(97.7, 'degF', '[degF]'), 36.5, 'Cel'],
    ['oral temperature 8331-1', '8331-1', q(100.4, 'degF', '[degF]'), 38, 'Cel'],
  ])('converts %s, keeping the value as reported', (_what, code, reported, value, unit) => {
    const { observation, converted, warnings } = run(vital(code, { ...reported }));
    expect(warnings).toEqual([]);
    expect(converted).toBe(1);
    expect(observation['valueQuantity']).toEqual({ value, unit, system: UCUM_SYSTEM, code: unit, extension: original(reported) });
    // Nothing appended: the row maps the code to itself only to carry the unit rule.
    expect(observation['code']).toEqual({ coding: [{ system: LOINC, code }] });
  });

  it('leaves metric values as they are, and refuses a unit the row does not list', () => {
    expect(run(vital('29463-7', q(25.9, 'kg'))).observation['valueQuantity']).toEqual(q(25.9, 'kg'));
    expect(run(vital('8310-5', q(37, 'Cel'))).observation['valueQuantity']).toEqual(q(37, 'Cel'));
    const kelvin = run(vital('8310-5', q(310.15, 'K')));
    expect(kelvin.converted).toBe(0);
    expect(kelvin.warnings).toEqual(['unit-conversion-refused: K → Cel refused: the rule converts only from [degF]; kept as reported']);
  });

  it('has rows for exactly the growth vitals, each converting from units of its own kind only', () => {
    const rules = [...mappings.quantityRules].filter(([key]) => key.startsWith(`${LOINC}|`)).map(([key, rule]) => [key.slice(LOINC.length + 1), rule.unit, rule.from]);
    expect(rules).toEqual([
      ['29463-7', 'kg', ['[lb_av]', '[oz_av]', 'g']],
      ['3141-9', 'kg', ['[lb_av]', '[oz_av]', 'g']],
      ['8302-2', 'cm', ['[in_i]', 'm', 'mm']],
      ['8306-3', 'cm', ['[in_i]', 'm', 'mm']],
      ['9843-4', 'cm', ['[in_i]', 'mm']],
      ['8287-5', 'cm', ['[in_i]', 'mm']],
      ['8310-5', 'Cel', ['[degF]']],
      ['8331-1', 'Cel', ['[degF]']],
    ]);
  });
});

describe("care team B's fixture vitals after normalization", () => {
  const base = loadManifest().files['fixtures/care-team-b.json']?.fhirBase ?? '';
  const result = normalize({
    caseId: 'case-growth', intake: fixtureIntake(), mappings,
    sources: [sourceInfo('team-b', base, { remotePatientId: fixturePatientId('care-team-b') })],
    raw: rawFromBundle(fixtureBundle('care-team-b'), 'team-b'),
  });
  const observations = result.resources.map((r) => r.resource).filter((r): r is Observation => r.resourceType === 'Observation');
  const of = (code: string) => observations.filter((o) => o.code.coding?.some((c) => c.system === LOINC && c.code === code));

  it.each([
    ['29463-7', 'kg', '[lb_av]'],
    ['8302-2', 'cm', '[in_i]'],
    ['8310-5', 'Cel', '[degF]'],
  ])('%s: every value in %s, the %s original kept', (code, unit, from) => {
    const found = of(code);
    expect(found.length).toBeGreaterThan(0);
    for (const o of found) {
      expect(o.valueQuantity).toMatchObject({ system: UCUM_SYSTEM, code: unit, unit });
      expect(o.valueQuantity?.extension).toEqual([{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: expect.objectContaining({ system: UCUM_SYSTEM, code: from }) }]);
    }
  });

  it('no quantity is left in lb, in or degF, and the vitals raise no warning', () => {
    const json = JSON.stringify(observations.map((o) => ({ ...o.valueQuantity, extension: undefined })));
    for (const us of ['[lb_av]', '[in_i]', '[degF]']) expect(json).not.toContain(us);
    const vitals = new Set(result.resources.filter((r) => ['29463-7', '8302-2', '8310-5'].some((code) => of(code).includes(r.resource as Observation))).map((r) => r.key));
    expect(result.warnings.filter((w) => w.key !== undefined && vitals.has(w.key))).toEqual([]);
  });
});
