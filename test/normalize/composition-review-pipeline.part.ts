/**
 * The section lines a clinical review found misleading, through the real pipeline: raw resources →
 * `buildAssembly` (normalize, dedupe, Composition) and the fixture child's two care teams. Each case
 * is hand-made where the fixture data lacks it; the lines are read from the Composition's narrative.
 */
import type { Bundle, Composition, CompositionSection, DiagnosticReport, FhirResource, Observation } from 'fhir/r4';
import { buildAssembly } from '../../src/assembly/build-assembly';
import { describe as describeLine } from '../../src/normalize/composition';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import { notGrantedIssue } from '../../src/pull/not-granted';
import { fixtureIntake } from '../support/fixture-child';
import { assemble, fixtureChild } from './assembly-support';
import { rawFromBundle, sourceInfo } from './normalize-support';

const P = { reference: 'Patient/p1' };
const mappings = loadTerminologyMappings();

function assembled(resources: FhirResource[], scope?: string): Composition {
  const raw = rawFromBundle({ resourceType: 'Bundle', type: 'collection', entry: resources.map((resource) => ({ resource })) }, 'team-a');
  const source = sourceInfo('team-a', 'https://a.example.org/fhir', { remotePatientId: 'p1', name: 'Team A' });
  const built = buildAssembly({
    caseId: 'case-review', intake: fixtureIntake(), built: [], attachments: [], mappings, disabledRules: [], bundleId: 'b1', timestamp: '2026-11-30T00:00:00Z',
    sources: [scope ? { ...source, serverMessages: [notGrantedIssue(['AllergyIntolerance', 'Immunization'], scope)], notGrantedTypes: ['AllergyIntolerance', 'Immunization'] } : source],
  }, raw);
  const bundle = JSON.parse(Buffer.concat([...built.parts].map((p) => Buffer.from(p))).toString('utf8')) as Bundle;
  return bundle.entry?.[0]?.resource as Composition;
}

const section = (c: Composition, code: string): CompositionSection | undefined => c.section?.find((s) => s.code?.coding?.[0]?.code === code);
const lines = (s: CompositionSection | undefined): string[] => [...(s?.text?.div ?? '').matchAll(/<li>(.*?)<\/li>/g)].map((m) => m[1] ?? '');

describe('through buildAssembly', () => {
  const composition = assembled([
    { resourceType: 'Patient', id: 'p1', name: [{ family: 'Test', given: ['Kid'] }], birthDate: '2017-04-22', gender: 'female' },
    {
      resourceType: 'MedicationRequest', id: 'm1', subject: P, status: 'active', intent: 'plan', authoredOn: '2025-02-01', medicationReference: { reference: '#med0320' },
      contained: [{ resourceType: 'Medication', id: 'med0320', code: { text: 'Methotrexate 2.5 mg tablet' } }],
      dosageInstruction: [{ timing: { repeat: { frequency: 1, period: 1, periodUnit: 'wk' } }, route: { text: 'oral' }, doseAndRate: [{ doseQuantity: { value: 10, unit: 'mg' } }] }],
    },
    {
      resourceType: 'Observation', id: 'k', subject: P, status: 'final', code: { text: 'Potassium' }, effectiveDateTime: '2025-05-01T10:00:00Z',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
      valueQuantity: { value: 6.9, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
      referenceRange: [{ low: { value: 3.5, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' }, high: { value: 5.0, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' } }],
    },
    { resourceType: 'Condition', id: 'c1', subject: P, code: { text: 'Otitis media' }, onsetDateTime: '2024-02-01', abatementDateTime: '2024-02-20' },
    { resourceType: 'Encounter', id: 'e1', subject: P, status: 'cancelled', class: { code: 'IMP', display: 'inpatient encounter' }, type: [{ text: 'Admission' }], period: { start: '2025-07-01' } },
  ], 'system/Patient.read system/Observation.read');

  it('names the drug of a contained Medication, with its structured dose and the intent', () => {
    expect(lines(section(composition, '10160-0'))).toEqual(['2025-02-01 — Methotrexate 2.5 mg tablet — 10 mg oral once weekly — intent: plan — active <i>(Team A)</i>']);
  });

  it('shows a reference range and flags a value outside it as computed', () => {
    expect(lines(section(composition, '30954-2'))).toEqual(['2025-05-01 10:00 (UTC) — Potassium — 6.9 mmol/L — reference range 3.5–5 mmol/L — above reference range (computed) <i>(Team A)</i>']);
  });

  it('lists an abated condition as past illness and says a cancelled admission was cancelled', () => {
    expect(lines(section(composition, '11348-0'))).toEqual(['Otitis media — onset 2024-02-01 — resolved 2024-02-20 <i>(Team A)</i>']);
    expect(section(composition, '11450-4')?.entry).toBeUndefined();
    expect(lines(section(composition, '46240-8'))).toEqual(['2025-07-01 — Admission — cancelled <i>(Team A)</i>']);
  });

  it('says the types the scope did not grant were not requested', () => {
    for (const code of ['48765-2', '11369-6']) {
      const s = section(composition, code);
      expect(s?.emptyReason?.coding?.[0]?.code).toBe('notasked');
      expect(s?.text?.div).toContain('Not requested from Team A: not granted by its EHR&#39;s token scope.');
    }
    expect(section(composition, '47519-4')?.emptyReason?.coding?.[0]?.code).toBe('unavailable');
  });
});

describe("the fixture child's reports", () => {
  const { bundle, deduped } = assemble(fixtureChild());
  const byUrl = new Map(deduped.resources.map((r) => [r.fullUrl, r.resource]));
  const reports = deduped.resources.map((r) => r.resource).filter((r): r is DiagnosticReport => r.resourceType === 'DiagnosticReport');

  it('no report line repeats the values of its results, and every result keeps its own line with its flag', () => {
    expect(reports.length).toBeGreaterThan(0);
    for (const report of reports) {
      if ((report.result ?? []).length === 0) continue;
      const line = describeLine(report, byUrl);
      // The results part ends the line (a conclusion the source wrote before it may quote values).
      const resultsPart = line.slice(line.lastIndexOf(' — '));
      expect(resultsPart).toMatch(/^ — \d+ results?(: .+)?$/);
      for (const ref of report.result ?? []) {
        const o = byUrl.get(ref.reference ?? '') as Observation | undefined;
        const value = o?.valueQuantity?.value;
        if (value !== undefined) expect(resultsPart).not.toContain(` ${value} ${o?.valueQuantity?.unit ?? ''}`);
      }
    }
    const results = (bundle.entry?.[0]?.resource as Composition).section?.find((s) => s.code?.coding?.[0]?.code === '30954-2');
    const a1cLines = lines(results).filter((l) => / — 9\.1 % /.test(l));
    expect(a1cLines).toHaveLength(1);
    expect(a1cLines[0]).toContain(' — High');
  });
});
