import { scanSearchPage } from '../../src/fhir';
import { addOtherPatients, ForeignPatientsError } from '../../src/pull/foreign-patient';
import { pageEntries } from '../../src/pull/page-resources';

/** Whom a page's matches are about, read from the page scan (no parse of the resources). */
const BASE = 'https://ehr.example.org/fhir';
const child = { baseUrl: BASE, patientIds: new Set(['Patient/child']) };

function page(entries: unknown[]) {
  const raw = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: entries }));
  const scanned = scanSearchPage(raw, raw.length, BASE);
  return { scanned, entries: pageEntries(scanned) };
}

const obs = (id: string, subject: string, mode?: string) => ({
  resource: { resourceType: 'Observation', id, status: 'final', code: { text: 'x' }, subject: { reference: subject } },
  ...(mode ? { search: { mode } } : {}),
});

it("counts the other patients a page's matches are about, by subject or patient, literal or absolute", () => {
  const p = page([
    obs('1', 'Patient/child'),
    obs('2', 'Patient/other-1'),
    obs('3', `${BASE}/Patient/other-2`),
    obs('4', 'Patient/other-3', 'include'),
    { resource: { resourceType: 'AllergyIntolerance', id: '5', patient: { reference: 'Patient/other-1' } } },
    obs('6', 'Group/ward'),
    obs('7', 'https://elsewhere.example.org/fhir/Patient/other-4'),
  ]);
  const others = new Set<string>();
  addOtherPatients(others, p.scanned, p.entries, child, false);
  expect([...others].sort()).toEqual(['Patient/other-1', 'Patient/other-2']);
});

it('counts other Patient resources only in a Patient search, not when $everything brings a parent along', () => {
  const p = page([
    { resource: { resourceType: 'Patient', id: 'child' } },
    { resource: { resourceType: 'Patient', id: 'mother' } },
    { resource: { resourceType: 'Patient', id: 'father' } },
  ]);
  const everything = new Set<string>();
  addOtherPatients(everything, p.scanned, p.entries, child, false);
  expect([...everything]).toEqual([]);
  const search = new Set<string>();
  addOtherPatients(search, p.scanned, p.entries, child, true);
  expect([...search].sort()).toEqual(['Patient/father', 'Patient/mother']);
});

it("names how many other patients a stopped query was about, never who (their ids are someone else's PHI)", () => {
  const ids = ['Patient/8f0e2b5c-1d2e-4a3b-9c8d-7e6f5a4b3c2d', 'Patient/jorge-42', 'Patient/loma-7', 'Patient/x-9'];
  const err = new ForeignPatientsError(ids);
  expect(err.message).toBe(
    "the server answered this query with records of 4 other patients: it may not support searching by patient; nothing of it was stored (ask the EHR's administrators whether it supports this search by patient)",
  );
  for (const id of ids) expect(err.message).not.toContain(id.slice('Patient/'.length));
  expect(err).toMatchObject({ otherPatients: 4, permanent: true });
  expect(JSON.stringify(err)).not.toMatch(/jorge|loma|8f0e2b5c/);
});
