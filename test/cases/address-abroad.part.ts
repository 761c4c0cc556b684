/**
 * A family living outside the United States gets the program's answer (outside the US → refused with
 * its own sentence), not "State must be a 2-letter code": `address.state` (a USPS code) and
 * `postalCode` (a ZIP code) are required for a US address only, optional free text elsewhere (FHIR
 * Address.state and postalCode are 0..1; many countries have no postal codes). Through the real
 * API on a fresh PostgreSQL database; the case Patient of the bundle through its builder.
 */
import type { Patient, RelatedPerson } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import { buildCasePatient } from '../../src/normalize/case-patient';
import { startCaseManagerService } from '../support/case-manager';
import { startForFile } from '../support/for-file';
import { sampleIntake } from '../support/intake';
import type { TestService } from '../support/service';

let svc: TestService;
let token: string;

startForFile(() => startCaseManagerService({}, 'cm-abroad'), (s) => ({ svc, cm: token } = s));

interface Problem {
  errors?: { field: string; detail: string }[];
}

interface Created {
  id: string;
  status: string;
  eligibility: { eligible: boolean; reasons: string[]; reasonCodes: string[] };
}

/** The sample intake living at `address` (any field left out is absent). */
function livingAt(address: Record<string, unknown>): Intake {
  const base = sampleIntake();
  return { ...base, patient: { ...base.patient, address: address as Intake['patient']['address'] } };
}

const MUNICH = { line: ['Marienplatz 8'], city: 'München', postalCode: '80331', country: 'DE' };

async function post(intake: unknown): Promise<{ status: number; body: Created & Problem }> {
  const res = await svc.request('POST', '/api/cases', { token, body: intake });
  return { status: res.status, body: (await res.json()) as Created & Problem };
}

async function fhirOf(id: string): Promise<{ text: string; patient: Patient; relatedPerson: RelatedPerson }> {
  const res = await svc.request('GET', `/api/cases/${id}/fhir`, { token });
  expect(res.status).toBe(200);
  const text = await res.text();
  const bundle = JSON.parse(text) as { entry: { resource: Patient | RelatedPerson | { resourceType: string } }[] };
  const find = <T>(type: string): T => bundle.entry.map((e) => e.resource).find((r) => r.resourceType === type) as T;
  return { text, patient: find<Patient>('Patient'), relatedPerson: find<RelatedPerson>('RelatedPerson') };
}

describe('an address outside the United States', () => {
  it('without a state opens the case with the outside-US answer, and its FHIR Patient has no state', async () => {
    const { status, body } = await post(livingAt(MUNICH));
    expect(status).toBe(201);
    expect(body.status).toBe('ineligible');
    expect(body.eligibility.reasonCodes).toEqual(['outside-united-states']);
    expect(body.eligibility.reasons).toEqual([
      'Our Online Second Opinion program can only accept requests for patients who live in the United States, and the address you gave is in DE.',
    ]);
    const detail = await svc.request('GET', `/api/cases/${body.id}`, { token });
    expect(((await detail.json()) as { intake: Intake }).intake.patient.address).toEqual(MUNICH);
    const fhir = await fhirOf(body.id);
    expect(fhir.patient.address).toEqual([{ use: 'home', line: ['Marienplatz 8'], city: 'München', postalCode: '80331', country: 'DE' }]);
    expect(fhir.relatedPerson.resourceType).toBe('RelatedPerson');
    expect(fhir.text).not.toMatch(/undefined|null/);
  });

  it('keeps a free-text state (region, province) as written, and a blank one as absent', async () => {
    const bavaria = await post(livingAt({ ...MUNICH, state: '  Bayern ' }));
    expect(bavaria.status).toBe(201);
    expect(bavaria.body.eligibility.reasonCodes).toEqual(['outside-united-states']);
    expect((await fhirOf(bavaria.body.id)).patient.address?.[0]?.state).toBe('Bayern');
    const blank = await post(livingAt({ ...MUNICH, state: '  ' }));
    expect(blank.status).toBe(201);
    expect((await fhirOf(blank.body.id)).patient.address?.[0]).not.toHaveProperty('state');
  });

  it('needs no postal code (many countries have none): the case opens with the outside-US answer, its FHIR Patient without one', async () => {
    const { postalCode: _postalCode, ...noPostalCode } = { ...MUNICH, line: ['Sheikh Mohammed bin Rashid Blvd 1'], city: 'Dubai', country: 'AE' };
    for (const address of [noPostalCode, { ...noPostalCode, postalCode: '  ' }]) {
      const { status, body } = await post(livingAt(address));
      expect(status).toBe(201);
      expect(body.eligibility.reasonCodes).toEqual(['outside-united-states']);
      const fhir = await fhirOf(body.id);
      expect(fhir.patient.address?.[0]).not.toHaveProperty('postalCode');
      expect(fhir.text).not.toMatch(/undefined|null/);
    }
    const long = await post(livingAt({ ...MUNICH, postalCode: '9'.repeat(21) }));
    expect(long.body.errors).toEqual([expect.objectContaining({ field: 'patient.address.postalCode', detail: 'Postal code must be at most 20 characters' })]);
  });

  it('bounds the free-text state like the other address fields', async () => {
    const { status, body } = await post(livingAt({ ...MUNICH, state: 'x'.repeat(101) }));
    expect(status).toBe(400);
    expect(body.errors).toEqual([expect.objectContaining({ field: 'patient.address.state', detail: 'State must be at most 100 characters' })]);
    const notText = await post(livingAt({ ...MUNICH, state: 7 }));
    expect(notText.body.errors).toEqual([expect.objectContaining({ field: 'patient.address.state', detail: 'State must be text' })]);
  });

  it('builds the bundle’s case Patient without a state', () => {
    const intake = livingAt(MUNICH);
    const { resource } = buildCasePatient('5b0d3c1e-7a86-4a51-9f6e-0c4bd5a3b2f1', intake, []);
    expect(resource.address?.[0]).not.toHaveProperty('state');
    expect(JSON.stringify(resource)).not.toContain('undefined');
  });
});

describe('a United States address', () => {
  it.each(['US', 'usa', 'United States'])('still needs a state when the country is %s', async (country) => {
    const { state: _state, ...noState } = sampleIntake().patient.address;
    const { status, body } = await post(livingAt({ ...noState, country }));
    expect(status).toBe(400);
    expect(body.errors).toEqual([
      expect.objectContaining({ field: 'patient.address.state', detail: 'State is required for a US address: its 2-letter code, like OH' }),
    ]);
  });

  it('still needs a ZIP code', async () => {
    const { postalCode: _postalCode, ...noZip } = sampleIntake().patient.address;
    for (const address of [noZip, { ...noZip, postalCode: ' ' }]) {
      const { status, body } = await post(livingAt(address));
      expect(status).toBe(400);
      expect(body.errors).toEqual([expect.objectContaining({ field: 'patient.address.postalCode', detail: 'Postal code is required for a US address: its ZIP code, like 45229' })]);
    }
  });

  it('still needs a 2-letter USPS code, upper-cased', async () => {
    const spelled = await post(livingAt({ ...sampleIntake().patient.address, state: 'Colorado' }));
    expect(spelled.body.errors).toEqual([expect.objectContaining({ field: 'patient.address.state', detail: 'State must be a 2-letter code, like OH' })]);
    const unknown = await post(livingAt({ ...sampleIntake().patient.address, state: 'ZZ' }));
    expect(unknown.body.errors).toEqual([
      expect.objectContaining({ field: 'patient.address.state', detail: 'State "ZZ" is not a US state, territory or APO/FPO code' }),
    ]);
    const lower = await post(livingAt({ ...sampleIntake().patient.address, state: ' co ' }));
    expect(lower.status).toBe(201);
    expect(lower.body.eligibility.eligible).toBe(true);
    expect((await fhirOf(lower.body.id)).patient.address?.[0]?.state).toBe('CO');
  });
});

describe('GET /openapi.json', () => {
  it('describes address.state and postalCode as optional, required for a US address', async () => {
    const res = await svc.request('GET', '/openapi.json');
    const text = await res.text();
    const doc = JSON.parse(text) as unknown;
    const found: { required?: string[]; properties: Record<string, { description?: string; maxLength?: number }> }[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        const o = node as Record<string, unknown>;
        const props = o['properties'] as Record<string, unknown> | undefined;
        if (props && 'postalCode' in props && 'state' in props && 'country' in props) found.push(o as (typeof found)[number]);
        Object.values(o).forEach(walk);
      }
    };
    walk(doc);
    expect(found.length).toBeGreaterThan(0);
    for (const address of found) {
      expect(address.required).toEqual(['line', 'city', 'country']);
      expect(address.properties.state?.maxLength).toBe(100);
      expect(address.properties.state?.description).toMatch(/United States/);
      expect(address.properties.postalCode?.maxLength).toBe(20);
      expect(address.properties.postalCode?.description).toMatch(/United States/);
    }
  });
});
