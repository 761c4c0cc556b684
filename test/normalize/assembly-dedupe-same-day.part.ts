/**
 * What a shared code and a shared day do not prove (clinical-safety review):
 * - two procedures of one day at different times are two procedures (a lumbar puncture at 08:00
 *   and a repeat at 21:30), and two local evenings sharing a UTC date are two days;
 * - two visits of one day at different service providers are two visits, and a date-only period
 *   identifies a visit only with its class, type and provider;
 * - one SNOMED concept coded as the right ear (ICD-10-CM H66.91) at one source and the left ear
 *   (H66.92) at the other, or staged L1/mild and M/severe, is two diagnoses.
 * None of them is joined through a record that states less (the rules' cluster states), and
 * switching a rule off still leaves its duplicates apart.
 */
import type { CodeableConcept, Condition, Encounter, Observation, Organization, Procedure } from 'fhir/r4';
import { dedupe, dedupeConditions, dedupeEncounters, dedupeProcedures } from '../../src/normalize/dedupe/index';
import { performedInstant } from '../../src/normalize/dedupe/procedure';
import type { NormalizedResource } from '../../src/normalize/types';
import { nr, permutations } from '../support/dedupe-inputs';

const SNOMED = 'http://snomed.info/sct';
const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const INRG = 'http://example.org/fhir/CodeSystem/inrg-stage';
const PATIENT = 'urn:uuid:00000000-0000-5000-8000-000000000000';

/** Whether some merge holds both records. */
function joined(merges: readonly { survivorKey: string; mergedKeys: readonly string[] }[], a: NormalizedResource, b: NormalizedResource): boolean {
  return merges.some((m) => [m.survivorKey, ...m.mergedKeys].includes(a.key) && [m.survivorKey, ...m.mergedKeys].includes(b.key));
}

describe('procedure:code-date: one day, two times, two procedures', () => {
  const lp = (performed: Partial<Procedure>, extra: Partial<Procedure> = {}): Procedure => ({
    resourceType: 'Procedure', status: 'completed', subject: { reference: PATIENT },
    code: { coding: [{ system: SNOMED, code: '277762005', display: 'Lumbar puncture' }] }, ...performed, ...extra,
  });
  const at = (performedDateTime: string): Partial<Procedure> => ({ performedDateTime });

  it('keeps the 08:00 and the 21:30 lumbar punctures of one day apart, each with its own outcome and complication', () => {
    const morning = nr('team-a', lp(at('2026-03-01T08:00:00-05:00'), { outcome: { text: 'clear CSF' } }));
    const evening = nr('team-b', lp(at('2026-03-01T21:30:00-05:00'), { outcome: { text: 'traumatic tap' }, complication: [{ text: 'post-LP headache' }] }));
    const r = dedupeProcedures([morning, evening]);
    expect(r.merges).toEqual([]);
    const byOutcome = new Map(r.survivors.map((s) => [(s.resource as Procedure).outcome?.text, (s.resource as Procedure).complication?.map((c) => c.text)]));
    expect([...byOutcome].sort()).toEqual([['clear CSF', undefined], ['traumatic tap', ['post-LP headache']]]);
  });

  it('keeps two local evenings apart that share a UTC date (21:30-05:00 on the 1st, 20:00-05:00 on the 2nd)', () => {
    const first = nr('team-a', lp(at('2026-03-01T21:30:00-05:00')));
    const second = nr('team-b', lp(at('2026-03-02T20:00:00-05:00')));
    expect(dedupeProcedures([first, second]).merges).toEqual([]);
    const periods = [nr('team-a', lp({ performedPeriod: { start: '2026-03-01T21:30:00-05:00', end: '2026-03-01T21:50:00-05:00' } })), nr('team-b', lp({ performedPeriod: { start: '2026-03-02T20:00:00-05:00' } }))];
    expect(dedupeProcedures(periods).merges).toEqual([]);
  });

  it('still merges one instant written in two zones, a period starting then, and a date-only record of that day', () => {
    const a = nr('team-a', lp(at('2026-03-01T08:00:00-05:00'), { outcome: { text: 'clear CSF' } }));
    const b = nr('team-b', lp({ performedPeriod: { start: '2026-03-01T13:00:00Z', end: '2026-03-01T13:20:00Z' } }));
    const c = nr('team-c', lp(at('2026-03-01')));
    const r = dedupeProcedures([a, b, c]);
    expect(r.merges).toHaveLength(1);
    expect(r.merges[0]?.mergedKeys).toHaveLength(2);
    expect(performedInstant(a.resource)).toBe(performedInstant(b.resource));
    expect(performedInstant(c.resource)).toBeUndefined();
  });

  it('never joins the two times through a date-only record of the day, in any input order', () => {
    const morning = nr('team-a', lp(at('2026-03-01T08:00:00-05:00')));
    const evening = nr('team-b', lp(at('2026-03-01T21:30:00-05:00')));
    const dateOnly = nr('team-c', lp(at('2026-03-01')));
    for (const input of permutations([morning, evening, dateOnly])) {
      const r = dedupeProcedures(input);
      expect(joined(r.merges, morning, evening)).toBe(false);
      expect(r.survivors).toHaveLength(2);
    }
  });

  it('does not place a time without a zone on the time line (it meets only the same text)', () => {
    expect(performedInstant(lp(at('2026-03-01T08:00:00')))).toBe('local:2026-03-01T08:00:00');
    expect(dedupeProcedures([nr('team-a', lp(at('2026-03-01T08:00:00'))), nr('team-b', lp(at('2026-03-01T08:00:00Z')))]).merges).toEqual([]);
  });

  it('leaves even same-instant duplicates apart when the rule is switched off', () => {
    const input = [nr('team-a', lp(at('2026-03-01T08:00:00-05:00'))), nr('team-b', lp(at('2026-03-01T13:00:00Z')))];
    expect(dedupe(input).merges).toHaveLength(1);
    expect(dedupe(input, { disabledRules: ['procedure:code-date'] }).merges).toEqual([]);
  });
});

describe('encounter:identifier-or-period: one day, two providers, two visits', () => {
  const AMB = { system: ACT_CODE, code: 'AMB' };
  const OFFICE_VISIT: CodeableConcept = { coding: [{ system: SNOMED, code: '185389009', display: 'Follow-up visit' }] };
  const visit = (provider: Encounter['serviceProvider'], extra: Partial<Encounter> = {}): Encounter => ({
    resourceType: 'Encounter', status: 'finished', class: AMB, type: [OFFICE_VISIT], subject: { reference: PATIENT },
    period: { start: '2026-03-01', end: '2026-03-01' }, ...(provider ? { serviceProvider: provider } : {}), ...extra,
  });
  const timed: Partial<Encounter> = { period: { start: '2026-03-01T09:00:00-05:00', end: '2026-03-01T09:40:00-05:00' } };

  it('keeps a cardiology visit and a family-clinic visit of one day apart; what points at B still points at B', () => {
    const cardiology = nr('team-a', visit({ display: 'Cardiology A' }, { location: [{ location: { display: 'Cardiology clinic, room 4' } }] }));
    const family = nr('team-b', visit({ display: 'Family clinic B' }, { location: [{ location: { display: 'Family clinic B, main street' } }] }));
    const vitals = nr('team-b', {
      resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: PATIENT }, encounter: { reference: family.fullUrl },
    } satisfies Observation);
    const r = dedupeEncounters([cardiology, family, vitals]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.flatMap((s) => (s.resource.resourceType === 'Encounter' ? [s.resource.serviceProvider?.display] : [])).sort()).toEqual(['Cardiology A', 'Family clinic B']);
    expect((r.survivors.find((s) => s.fullUrl === vitals.fullUrl)?.resource as Observation).encounter?.reference).toBe(family.fullUrl);
  });

  it('keeps different providers apart even with identical timed periods or a shared identifier', () => {
    const id = { identifier: [{ system: 'http://shared.example.org/visit', value: 'V1' }] };
    expect(dedupeEncounters([nr('team-a', visit({ display: 'Cardiology A' }, timed)), nr('team-b', visit({ display: 'Family clinic B' }, timed))]).merges).toEqual([]);
    expect(dedupeEncounters([nr('team-a', visit({ display: 'Cardiology A' }, { ...timed, ...id })), nr('team-b', visit({ display: 'Family clinic B' }, { ...timed, ...id }))]).merges).toEqual([]);
  });

  it('never joins two providers through a visit that names none, in any input order', () => {
    const a = nr('team-a', visit({ display: 'Cardiology A' }, timed));
    const b = nr('team-b', visit({ display: 'Family clinic B' }, timed));
    const c = nr('team-c', visit(undefined, timed));
    for (const input of permutations([a, b, c])) expect(joined(dedupeEncounters(input).merges, a, b)).toBe(false);
  });

  it('merges a date-only visit only when class, type and provider agree (display at one source, the Organization name at the other)', () => {
    const orgB = nr('team-b', { resourceType: 'Organization', name: 'Cardiology  A' } satisfies Organization);
    const a = nr('team-a', visit({ display: 'cardiology a' }));
    const b = nr('team-b', visit({ reference: orgB.fullUrl }));
    const r = dedupeEncounters([a, b, orgB]);
    expect(r.merges).toHaveLength(1);
    expect(dedupeEncounters([nr('team-a', visit({ display: 'Cardiology A' }, { type: undefined })), nr('team-b', visit({ display: 'Cardiology A' }, { type: undefined }))]).merges).toEqual([]);
    expect(dedupeEncounters([nr('team-a', visit(undefined)), nr('team-b', visit(undefined))]).merges).toEqual([]);
    const other = { coding: [{ system: SNOMED, code: '11429006', display: 'Consultation' }] };
    expect(dedupeEncounters([nr('team-a', visit({ display: 'Cardiology A' })), nr('team-b', visit({ display: 'Cardiology A' }, { type: [other] }))]).merges).toEqual([]);
  });

  it('still merges identical timed periods at one provider, or where one record names none; not with the rule off', () => {
    const a = nr('team-a', visit({ display: 'Cardiology A' }, timed));
    const b = nr('team-b', visit({ display: 'Cardiology A' }, { ...timed, type: undefined }));
    expect(dedupeEncounters([a, b]).merges).toHaveLength(1);
    expect(dedupeEncounters([a, nr('team-b', visit(undefined, timed))]).merges).toHaveLength(1);
    expect(dedupe([a, b], { disabledRules: ['encounter:identifier-or-period'] }).merges).toEqual([]);
  });
});

describe('condition:code-onset: what else the records code', () => {
  const OTITIS = { system: SNOMED, code: '65363002', display: 'Otitis media' };
  const otitis = (extra: readonly { system: string; code: string }[], more: Partial<Condition> = {}): Condition => ({
    resourceType: 'Condition', subject: { reference: PATIENT }, code: { coding: [OTITIS, ...extra] }, onsetDateTime: '2026-02-10', ...more,
  });
  const icd = (code: string): { system: string; code: string } => ({ system: ICD10CM, code });
  const codesOf = (r: NormalizedResource): string[] => ((r.resource as Condition).code?.coding ?? []).map((c) => c.code ?? '').sort();

  it('keeps otitis media of the right ear (H66.91) and of the left ear (H66.92) apart, each with its own code', () => {
    const r = dedupeConditions([nr('team-a', otitis([icd('H66.91')])), nr('team-b', otitis([icd('H66.92')]))]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.map(codesOf).sort()).toEqual([['65363002', 'H66.91'], ['65363002', 'H66.92']]);
  });

  it('never joins the two ears through a SNOMED-only record, in any input order', () => {
    const right = nr('team-a', otitis([icd('H66.91')]));
    const left = nr('team-b', otitis([icd('H66.92')]));
    const plain = nr('team-c', otitis([]));
    for (const input of permutations([right, left, plain])) {
      const r = dedupeConditions(input);
      expect(joined(r.merges, right, left)).toBe(false);
      expect(r.survivors.map(codesOf).filter((c) => c.includes('H66.91') && c.includes('H66.92'))).toEqual([]);
    }
  });

  it('still merges when one source has no ICD-10-CM code, or both have the same one', () => {
    expect(dedupeConditions([nr('team-a', otitis([])), nr('team-b', otitis([icd('H66.91')]))]).merges).toHaveLength(1);
    expect(dedupeConditions([nr('team-a', otitis([icd('H66.91')])), nr('team-b', otitis([icd('H66.91'), { system: 'http://b.example.org/dx', code: 'OM-R' }]))]).merges).toHaveLength(1);
  });

  const NEUROBLASTOMA = { system: SNOMED, code: '432328008', display: 'Neuroblastoma' };
  const stage = (code: string): Condition['stage'] => [{ summary: { coding: [{ system: INRG, code }], text: `INRG ${code}` } }];
  const severity = (code: string, display: string): CodeableConcept => ({ coding: [{ system: SNOMED, code, display }] });
  const MILD = severity('255604002', 'Mild');
  const SEVERE = severity('24484000', 'Severe');
  const nb = (more: Partial<Condition>): Condition => ({
    resourceType: 'Condition', subject: { reference: PATIENT }, code: { coding: [NEUROBLASTOMA] }, onsetDateTime: '2026-01-05', ...more,
  });
  const stagesOf = (r: NormalizedResource): string[] => ((r.resource as Condition).stage ?? []).map((s) => s.summary?.text ?? '');

  it('keeps neuroblastoma INRG L1 (mild) and INRG M (severe) apart, and either difference alone', () => {
    const r = dedupeConditions([nr('team-a', nb({ stage: stage('L1'), severity: MILD })), nr('team-b', nb({ stage: stage('M'), severity: SEVERE }))]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.map((s) => [...stagesOf(s), (s.resource as Condition).severity?.coding?.[0]?.display]).sort()).toEqual([['INRG L1', 'Mild'], ['INRG M', 'Severe']]);
    expect(dedupeConditions([nr('team-a', nb({ stage: stage('L1') })), nr('team-b', nb({ stage: stage('M') }))]).merges).toEqual([]);
    expect(dedupeConditions([nr('team-a', nb({ severity: MILD })), nr('team-b', nb({ severity: SEVERE }))]).merges).toEqual([]);
  });

  it('never joins two stages through an unstaged record; merges the same stage, or a record without one', () => {
    const l1 = nr('team-a', nb({ stage: stage('L1'), severity: MILD }));
    const m = nr('team-b', nb({ stage: stage('M'), severity: SEVERE }));
    for (const input of permutations([l1, m, nr('team-c', nb({}))])) expect(joined(dedupeConditions(input).merges, l1, m)).toBe(false);
    const same = dedupeConditions([nr('team-a', nb({ stage: stage('L1'), severity: MILD })), nr('team-b', nb({ stage: stage('L1'), severity: MILD }))]);
    expect(same.merges).toHaveLength(1);
    const filled = dedupeConditions([nr('team-a', nb({})), nr('team-b', nb({ stage: stage('M'), severity: SEVERE }))]);
    expect(filled.merges).toHaveLength(1);
    expect(stagesOf(filled.survivors[0] as NormalizedResource)).toEqual(['INRG M']);
  });

  it('keeps other body sites apart (already a state dimension), and leaves duplicates apart with the rule off', () => {
    const ear = (code: string): CodeableConcept[] => [{ coding: [{ system: SNOMED, code }] }];
    expect(dedupeConditions([nr('team-a', otitis([], { bodySite: ear('25577004') })), nr('team-b', otitis([], { bodySite: ear('89644007') }))]).merges).toEqual([]);
    const input = [nr('team-a', otitis([icd('H66.91')])), nr('team-b', otitis([icd('H66.91')]))];
    expect(dedupe(input).merges).toHaveLength(1);
    expect(dedupe(input, { disabledRules: ['condition:code-onset'] }).merges).toEqual([]);
  });
});
