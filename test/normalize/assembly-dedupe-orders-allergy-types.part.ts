/**
 * Clinical-safety review (verified defects), MedicationRequest and AllergyIntolerance:
 * - a "do not give" order (`doNotPerform: true`, a modifier) never merges with the order it forbids;
 * - two strengths of one drug never merge through a shared ingredient coding, and a survivor's
 *   medication never lists two products;
 * - a dose unit in UCUM (`mL`) and the same unit as text ("mL", "ML") are one unit, while UCUM codes
 *   that differ only in case (`mg`, `Mg`) stay two;
 * - an `intolerance` and an `allergy` to the same substance stay two records.
 * Switching either rule off (`disabledRules`) still undoes its merges.
 */
import type { AllergyIntolerance, Coding, Dosage, MedicationRequest, Quantity } from 'fhir/r4';
import { dedupe, dedupeAllergyIntolerances, dedupeMedicationRequests } from '../../src/normalize/dedupe/index';
import type { NormalizedResource } from '../../src/normalize/types';
import { nr, permutations } from '../support/dedupe-inputs';

const UCUM = 'http://unitsofmeasure.org';
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const SNOMED = 'http://snomed.info/sct';
const CLINICAL = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical';
const PATIENT = 'urn:uuid:00000000-0000-5000-8000-000000000000';

const rx = (...codes: string[]): Coding[] => codes.map((code) => ({ system: RXNORM, code }));
const order = (codings: Coding[], extra: Partial<MedicationRequest> = {}): MedicationRequest => ({
  resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: PATIENT }, authoredOn: '2026-03-02',
  medicationCodeableConcept: { coding: codings }, ...extra,
});
const ucum = (value: number, code: string): Quantity => ({ value, unit: code, system: UCUM, code });
const daily = (dose: Quantity): Dosage[] => [{ timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } }, doseAndRate: [{ doseQuantity: dose }] }];
const rxCodes = (r: NormalizedResource): string[] =>
  ((r.resource as MedicationRequest).medicationCodeableConcept?.coding ?? []).map((c) => c.code ?? '').sort();

describe('medicationrequest:rxnorm-authored: doNotPerform is part of the order', () => {
  const aspirin = rx('1191');
  const give = (): MedicationRequest => order(aspirin, { dosageInstruction: daily(ucum(81, 'mg')) });
  const doNotGive = (): MedicationRequest => order(aspirin, { doNotPerform: true });

  it('does not merge "do not give aspirin" with the active aspirin 81 mg daily order', () => {
    const r = dedupeMedicationRequests([nr('team-a', give()), nr('team-b', doNotGive())]);
    expect(r.merges).toEqual([]);
    expect(r.survivors).toHaveLength(2);
    const dosed = r.survivors.map((s) => s.resource as MedicationRequest).find((m) => m.dosageInstruction !== undefined);
    expect(dosed?.doNotPerform).toBeUndefined();
    const prohibition = r.survivors.map((s) => s.resource as MedicationRequest).find((m) => m.doNotPerform === true);
    expect(prohibition?.dosageInstruction).toBeUndefined();
  });

  it('keeps them apart against an explicit doNotPerform false too, and through a third source, in any order', () => {
    expect(dedupeMedicationRequests([nr('team-a', { ...give(), doNotPerform: false }), nr('team-b', doNotGive())]).merges).toEqual([]);
    for (const input of permutations([nr('team-a', give()), nr('team-b', doNotGive()), nr('team-c', order(aspirin))])) {
      const r = dedupeMedicationRequests(input);
      expect(r.survivors).toHaveLength(2);
      for (const s of r.survivors) {
        const m = s.resource as MedicationRequest;
        expect(m.doNotPerform === true && m.dosageInstruction !== undefined).toBe(false);
      }
    }
  });

  it('still merges two sources\u2019 prohibitions of the same drug, and two plain orders (doNotPerform false or absent)', () => {
    const r = dedupeMedicationRequests([nr('team-a', doNotGive()), nr('team-b', doNotGive())]);
    expect(r.merges).toHaveLength(1);
    expect((r.survivors[0]?.resource as MedicationRequest).doNotPerform).toBe(true);
    expect(dedupeMedicationRequests([nr('team-a', { ...give(), doNotPerform: false }), nr('team-b', give())]).merges).toHaveLength(1);
  });
});

describe('medicationrequest:rxnorm-authored: a shared ingredient coding does not join two strengths', () => {
  const amox250 = (): MedicationRequest => order(rx('308182', '723'));
  const amox500 = (): MedicationRequest => order(rx('308191', '723'));

  it('does not merge amoxicillin 250 mg and 500 mg capsules coded with the same ingredient (723)', () => {
    const r = dedupeMedicationRequests([nr('team-a', amox250()), nr('team-b', amox500())]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.map(rxCodes).sort()).toEqual([['308182', '723'], ['308191', '723']]);
  });

  it('still merges the same product coded with and without its ingredient, or by the same set', () => {
    const withIngredient = nr('team-a', amox250());
    const r = dedupeMedicationRequests([withIngredient, nr('team-b', order(rx('308182')))]);
    expect(r.merges).toHaveLength(1);
    expect(r.survivors.map(rxCodes)).toEqual([['308182', '723']]);
    expect(dedupeMedicationRequests([nr('team-a', amox250()), nr('team-b', order(rx('723', '308182')))]).merges).toHaveLength(1);
  });

  it('never joins the two strengths through an ingredient-only request, in any input order', () => {
    for (const input of permutations([nr('team-c', order(rx('723'))), nr('team-a', amox250()), nr('team-b', amox500())])) {
      const r = dedupeMedicationRequests(input);
      expect(r.survivors).toHaveLength(2);
      for (const s of r.survivors) expect(rxCodes(s).filter((c) => c === '308182' || c === '308191')).toHaveLength(1);
    }
  });
});

describe('medicationrequest:rxnorm-authored: dose units as UCUM code and as text', () => {
  const textUnit = (value: number, unit: string): Quantity => ({ value, unit });
  const syrup = (dose: Quantity): MedicationRequest => order(rx('308189'), { dosageInstruction: daily(dose) });

  it('merges 5 mL (UCUM mL) with 5 mL written as text, in any case', () => {
    expect(dedupeMedicationRequests([nr('team-a', syrup(ucum(5, 'mL'))), nr('team-b', syrup(textUnit(5, 'mL')))]).merges).toHaveLength(1);
    expect(dedupeMedicationRequests([nr('team-a', syrup(ucum(5, 'mL'))), nr('team-b', syrup(textUnit(5, 'ML')))]).merges).toHaveLength(1);
    const rate = (q: Quantity): MedicationRequest => order(rx('308189'), { dosageInstruction: [{ doseAndRate: [{ rateQuantity: q }] }] });
    expect(dedupeMedicationRequests([nr('team-a', rate(ucum(20, 'mL/h'))), nr('team-b', rate(textUnit(20, 'ml/h')))]).merges).toHaveLength(1);
  });

  it('keeps other doses and UCUM codes that differ only in case apart', () => {
    expect(dedupeMedicationRequests([nr('team-a', syrup(ucum(5, 'mL'))), nr('team-b', syrup(textUnit(2.5, 'mL')))]).merges).toEqual([]);
    expect(dedupeMedicationRequests([nr('team-a', syrup(ucum(5, 'mL'))), nr('team-b', syrup(ucum(5, 'mg')))]).merges).toEqual([]);
    expect(dedupeMedicationRequests([nr('team-a', syrup(ucum(5, 'mg'))), nr('team-b', syrup(ucum(5, 'Mg')))]).merges).toEqual([]);
    expect(dedupeMedicationRequests([nr('team-a', syrup(ucum(10, 'U'))), nr('team-b', syrup(ucum(10, 'u')))]).merges).toEqual([]);
  });
});

describe('allergyintolerance:code: an intolerance and an allergy stay two records', () => {
  const penicillin = (type: AllergyIntolerance['type'], criticality: AllergyIntolerance['criticality'], reaction: string | undefined): AllergyIntolerance => ({
    resourceType: 'AllergyIntolerance', patient: { reference: PATIENT }, clinicalStatus: { coding: [{ system: CLINICAL, code: 'active' }] },
    code: { coding: [{ system: SNOMED, code: '764146007', display: 'Penicillin' }] },
    ...(type ? { type } : {}), ...(criticality ? { criticality } : {}),
    ...(reaction ? { reaction: [{ manifestation: [{ text: reaction }] }] } : {}),
  });
  const typeAndReactions = (r: NormalizedResource): string => {
    const a = r.resource as AllergyIntolerance;
    return `${a.type ?? '-'}: ${(a.reaction ?? []).flatMap((x) => x.manifestation.map((m) => m.text)).sort().join(', ')}`;
  };

  it('does not merge a low-criticality intolerance (nausea) with a high-criticality allergy (anaphylaxis)', () => {
    const r = dedupeAllergyIntolerances([nr('team-a', penicillin('intolerance', 'low', 'nausea')), nr('team-b', penicillin('allergy', 'high', 'anaphylaxis'))]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.map(typeAndReactions).sort()).toEqual(['allergy: anaphylaxis', 'intolerance: nausea']);
  });

  it('never joins the two types through a record without one, in any input order', () => {
    const input = [nr('team-c', penicillin(undefined, undefined, 'rash')), nr('team-a', penicillin('intolerance', 'low', 'nausea')), nr('team-b', penicillin('allergy', 'high', 'anaphylaxis'))];
    for (const ordered of permutations(input)) {
      const r = dedupeAllergyIntolerances(ordered);
      expect(r.survivors).toHaveLength(2);
      expect(r.survivors.map((s) => (s.resource as AllergyIntolerance).type).sort()).toEqual(['allergy', 'intolerance']);
    }
  });

  it('still merges two allergies, and a record without a type into a typed one', () => {
    expect(dedupeAllergyIntolerances([nr('team-a', penicillin('allergy', 'low', 'hives')), nr('team-b', penicillin('allergy', 'high', 'anaphylaxis'))]).merges).toHaveLength(1);
    const r = dedupeAllergyIntolerances([nr('team-a', penicillin(undefined, undefined, 'rash')), nr('team-b', penicillin('allergy', 'high', 'anaphylaxis'))]);
    expect(r.merges).toHaveLength(1);
    expect(r.survivors.map(typeAndReactions)).toEqual(['allergy: anaphylaxis, rash']);
  });
});

describe('disabledRules still switches these rules off', () => {
  it('undoes the merges of medicationrequest:rxnorm-authored and allergyintolerance:code', () => {
    const input = [
      nr('team-a', order(rx('308182', '723'))), nr('team-b', order(rx('308182'))),
      nr('team-a', { resourceType: 'AllergyIntolerance', patient: { reference: PATIENT }, type: 'allergy', code: { coding: [{ system: SNOMED, code: '764146007' }] } } as AllergyIntolerance),
      nr('team-b', { resourceType: 'AllergyIntolerance', patient: { reference: PATIENT }, type: 'allergy', code: { coding: [{ system: SNOMED, code: '764146007' }] } } as AllergyIntolerance),
    ];
    expect(dedupe(input).merges.map((m) => m.rule).sort()).toEqual(['allergyintolerance:code', 'medicationrequest:rxnorm-authored']);
    expect(dedupe(input, { disabledRules: ['medicationrequest:rxnorm-authored'] }).merges.map((m) => m.rule)).toEqual(['allergyintolerance:code']);
    expect(dedupe(input, { disabledRules: ['medicationrequest:rxnorm-authored', 'allergyintolerance:code'] }).merges).toEqual([]);
  });
});
