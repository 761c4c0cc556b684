import {
  buildReferenceIndex,
  collectReferences,
  copyRewritingReferences,
  metaVersionIdOf,
  NotFhirJsonError,
  parseReference,
  pruneReferences,
  resolveReference,
  sourceHooks,
  type ReferenceTarget,
} from '../../src/normalize/references';

const BASE = 'https://ehr.example.org/fhir/r4';

function target(resourceType: string, remoteId: string, extra: Record<string, unknown> = {}, sourceFullUrl?: string): ReferenceTarget {
  const resource = { resourceType, id: remoteId, ...extra };
  return {
    resourceType,
    remoteId,
    fullUrl: `urn:uuid:${resourceType.toLowerCase()}-${remoteId}`,
    resource,
    versionId: metaVersionIdOf(resource),
    ...(sourceFullUrl ? { sourceFullUrl } : {}),
  };
}

const TARGETS = [
  target('Patient', 'p1', { identifier: [{ system: 'urn:mrn', value: 'M1' }] }),
  target('Practitioner', 'dr1', { identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567893' }] }),
  target('Practitioner', 'dr2', { identifier: [{ system: 'urn:local', value: 'same' }] }),
  target('Practitioner', 'dr3', { identifier: [{ system: 'urn:local', value: 'same' }] }),
  target('Encounter', 'e1'),
  target('Binary', 'b1'),
  target('Observation', '0b7c0d9e-1111-4222-8333-444455556666'),
  target('Condition', 'c85', {}, 'urn:uuid:d831ec91-c7a3-4a61-9312-7ff0c4a32134'),
  target('MedicationRequest', 'mr1', { meta: { versionId: '4' } }),
];

function index(redirect = true) {
  return buildReferenceIndex(`${BASE}/`, TARGETS, redirect ? { typeIds: new Set(['Patient/p1']), to: 'urn:uuid:case-patient' } : undefined);
}

describe('parseReference (R4 references.html forms)', () => {
  it.each([
    ['#med1', { kind: 'contained' }],
    ['#', { kind: 'contained' }],
    ['Observation/o1', { kind: 'literal', resourceType: 'Observation', id: 'o1' }],
    ['Observation/o1/_history/3', { kind: 'literal', resourceType: 'Observation', id: 'o1', version: '3' }],
    [`${BASE}/Observation/o1`, { kind: 'literal', resourceType: 'Observation', id: 'o1' }],
    [`${BASE}/Observation/o1/_history/2`, { kind: 'literal', resourceType: 'Observation', id: 'o1', version: '2' }],
    ['https://elsewhere.example.org/fhir/Observation/o1', { kind: 'foreign', resourceType: 'Observation' }],
    ['urn:uuid:0b7c0d9e-1111-4222-8333-444455556666', { kind: 'urn', id: '0b7c0d9e-1111-4222-8333-444455556666' }],
    ['Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1234567893', { kind: 'conditional', resourceType: 'Practitioner', query: 'identifier=http://hl7.org/fhir/sid/us-npi|1234567893' }],
    ['not a reference', { kind: 'unparseable' }],
  ])('%s', (ref, expected) => {
    expect(parseReference(ref, BASE)).toEqual(expected);
  });
});

describe('resolveReference', () => {
  const ix = index();

  it('resolves relative, absolute and versioned literal references', () => {
    for (const ref of ['Encounter/e1', `${BASE}/Encounter/e1`, 'Encounter/e1/_history/7', `${BASE}/Encounter/e1/_history/7`]) {
      expect(resolveReference(ix, ref)).toEqual({ status: 'resolved', fullUrl: 'urn:uuid:encounter-e1' });
    }
  });

  it('resolves a reference to another version than the kept one to the kept one, and says so each time it is applied', () => {
    const versioned = resolveReference(ix, 'MedicationRequest/mr1/_history/2');
    expect(versioned).toEqual({
      status: 'resolved',
      fullUrl: 'urn:uuid:medicationrequest-mr1',
      note: { code: 'other-version-reference', message: expect.stringContaining('names version 2 of MedicationRequest/mr1; the bundle holds version 4') as unknown as string },
    });
    // The kept version itself, no version, or a kept resource without a version id: nothing to say.
    for (const ref of ['MedicationRequest/mr1/_history/4', `${BASE}/MedicationRequest/mr1/_history/4`, 'MedicationRequest/mr1', 'Encounter/e1/_history/7']) {
      expect(resolveReference(ix, ref)).not.toHaveProperty('note');
    }
    const warnings: string[] = [];
    const hooks = sourceHooks(index(), (code) => void warnings.push(code));
    const out = copyRewritingReferences({ resourceType: 'MedicationDispense', id: 'md', authorizingPrescription: [{ reference: `${BASE}/MedicationRequest/mr1/_history/3` }, { reference: 'MedicationRequest/mr1/_history/3' }] }, hooks);
    expect(out['authorizingPrescription']).toEqual([{ reference: 'urn:uuid:medicationrequest-mr1' }, { reference: 'urn:uuid:medicationrequest-mr1' }]);
    expect(warnings).toEqual(['other-version-reference', 'other-version-reference']);
  });

  it('resolves urn:uuid: by the source bundle fullUrl, else by a resource id equal to the uuid', () => {
    expect(resolveReference(ix, 'urn:uuid:d831ec91-c7a3-4a61-9312-7ff0c4a32134')).toEqual({ status: 'resolved', fullUrl: 'urn:uuid:condition-c85' });
    expect(resolveReference(ix, 'urn:uuid:0b7c0d9e-1111-4222-8333-444455556666')).toEqual({ status: 'resolved', fullUrl: 'urn:uuid:observation-0b7c0d9e-1111-4222-8333-444455556666' });
    expect(resolveReference(ix, 'urn:uuid:00000000-0000-4000-8000-000000000000')).toMatchObject({ status: 'unresolved', code: 'unresolved-reference' });
  });

  it('redirects the child Patient to the case Patient, whatever the form', () => {
    for (const ref of ['Patient/p1', `${BASE}/Patient/p1`, 'Patient?identifier=urn:mrn|M1']) {
      expect(resolveReference(ix, ref)).toEqual({ status: 'resolved', fullUrl: 'urn:uuid:case-patient' });
    }
    expect(resolveReference(index(false), 'Patient/p1')).toEqual({ status: 'resolved', fullUrl: 'urn:uuid:patient-p1' });
  });

  it('redirects the child Patient even when that Patient was not pulled', () => {
    const ix2 = buildReferenceIndex(BASE, [], { typeIds: new Set(['Patient/gone']), to: 'urn:uuid:case-patient' });
    expect(resolveReference(ix2, 'Patient/gone')).toEqual({ status: 'resolved', fullUrl: 'urn:uuid:case-patient' });
  });

  it('resolves conditional references by identifier (system|value, value only, %-encoded) and _id', () => {
    expect(resolveReference(ix, 'Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1234567893')).toEqual({ status: 'resolved', fullUrl: 'urn:uuid:practitioner-dr1' });
    expect(resolveReference(ix, 'Practitioner?identifier=1234567893')).toEqual({ status: 'resolved', fullUrl: 'urn:uuid:practitioner-dr1' });
    expect(resolveReference(ix, 'Practitioner?identifier=http%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Fus-npi%7C1234567893')).toEqual({ status: 'resolved', fullUrl: 'urn:uuid:practitioner-dr1' });
    expect(resolveReference(ix, 'Practitioner?_id=dr2')).toEqual({ status: 'resolved', fullUrl: 'urn:uuid:practitioner-dr2' });
  });

  it('reports ambiguous and unmatched conditional references, keeping the identifier as a logical reference', () => {
    expect(resolveReference(ix, 'Practitioner?identifier=urn:local|same')).toMatchObject({
      status: 'unresolved', code: 'ambiguous-reference', identifier: { system: 'urn:local', value: 'same' },
    });
    expect(resolveReference(ix, 'Organization?identifier=https://github.com/synthetichealth/synthea|abc')).toEqual({
      status: 'unresolved', code: 'unresolved-reference', resourceType: 'Organization',
      identifier: { system: 'https://github.com/synthetichealth/synthea', value: 'abc' },
      reason: expect.stringContaining('matches no resource') as unknown as string,
    });
    expect(resolveReference(ix, 'Practitioner?name=Smith')).toMatchObject({ status: 'unresolved', reason: expect.stringContaining('other than identifier') as unknown as string });
  });

  it('does not follow references to other servers or to resources not kept', () => {
    expect(resolveReference(ix, 'https://other.example.org/fhir/Encounter/e1')).toMatchObject({ status: 'unresolved', resourceType: 'Encounter' });
    expect(resolveReference(ix, 'Encounter/missing')).toMatchObject({ status: 'unresolved', resourceType: 'Encounter' });
    expect(resolveReference(ix, '#contained')).toEqual({ status: 'contained' });
  });
});

describe('copyRewritingReferences', () => {
  const warnings: string[] = [];
  const hooks = sourceHooks(index(), (code, message) => void warnings.push(`${code}: ${message}`));
  beforeEach(() => {
    warnings.length = 0;
  });

  const raw = {
    resourceType: 'DiagnosticReport',
    id: 'dr',
    contained: [{ resourceType: 'Observation', id: 'inner', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/p1' } }],
    extension: [{ url: 'http://example.org/ext', valueReference: { reference: 'Encounter/e1', display: 'visit' } }],
    subject: { reference: 'Patient/p1', display: 'Child' },
    encounter: { reference: `${BASE}/Encounter/e1/_history/2` },
    result: [{ reference: '#inner' }, { reference: 'Observation/gone', display: 'Old result' }, { reference: 'Observation/gone2' }],
    performer: [{ reference: 'Practitioner?identifier=urn:x|nobody' }],
    presentedForm: [{ contentType: 'application/pdf', url: 'Binary/b1' }, { contentType: 'application/pdf', url: 'Binary/none' }, { contentType: 'text/html', url: 'https://cdn.example.org/x.html' }],
    note: [{ text: 'Reference Patient/p1 in prose stays prose' }],
  };

  it('rewrites references anywhere, leaves contained ones, and copies (input unchanged)', () => {
    const before = JSON.stringify(raw);
    const out = copyRewritingReferences(raw, hooks) as typeof raw & Record<string, unknown>;
    expect(JSON.stringify(raw)).toBe(before);
    expect(out.subject).toEqual({ reference: 'urn:uuid:case-patient', display: 'Child' });
    expect(out.encounter).toEqual({ reference: 'urn:uuid:encounter-e1' });
    expect(out.extension[0]?.valueReference).toEqual({ reference: 'urn:uuid:encounter-e1', display: 'visit' });
    expect(out.contained[0]?.subject).toEqual({ reference: 'urn:uuid:case-patient' });
    expect(out.result[0]).toEqual({ reference: '#inner' });
    expect(out.note).toEqual(raw.note);
    expect(out.contained).not.toBe(raw.contained);
  });

  it('drops unresolvable references but keeps display, identifier and type, with a warning', () => {
    const out = copyRewritingReferences(raw, hooks) as typeof raw;
    expect(out.result[1]).toEqual({ display: 'Old result', type: 'Observation' });
    expect(out.result[2]).toEqual({ type: 'Observation' });
    expect(out.performer[0]).toEqual({ type: 'Practitioner', identifier: { system: 'urn:x', value: 'nobody' } });
    expect(warnings.filter((w) => w.startsWith('unresolved-reference'))).toHaveLength(3);
    expect(warnings.join('\n')).toContain('"Observation/gone"');
  });

  it('rewrites Attachment.url pointing at a resource of the source; warns on a dangling relative one', () => {
    const out = copyRewritingReferences(raw, hooks) as typeof raw;
    expect(out.presentedForm.map((a) => a.url)).toEqual(['urn:uuid:binary-b1', 'Binary/none', 'https://cdn.example.org/x.html']);
    expect(warnings.filter((w) => w.startsWith('unresolved-attachment-url'))).toHaveLength(1);
  });

  it('drops null properties (not FHIR JSON) with a warning, keeps nulls inside arrays', () => {
    const out = copyRewritingReferences({ resourceType: 'Patient', id: 'x', gender: null, given: ['A', null], _given: [null, { extension: [] }] }, hooks);
    expect(out).toEqual({ resourceType: 'Patient', id: 'x', given: ['A', null], _given: [null, { extension: [] }] });
    expect(warnings).toEqual([expect.stringMatching(/^null-removed: property "gender"/)]);
  });

  it('rejects what JSON cannot hold: cycles, __proto__, non-finite numbers, functions, class instances', () => {
    const cyclic: Record<string, unknown> = { resourceType: 'Basic', id: 'c' };
    cyclic['self'] = cyclic;
    expect(() => copyRewritingReferences(cyclic, hooks)).toThrow(NotFhirJsonError);
    expect(() => copyRewritingReferences(JSON.parse('{"resourceType":"Basic","__proto__":{"x":1}}') as Record<string, unknown>, hooks)).toThrow(/__proto__/);
    expect(() => copyRewritingReferences({ resourceType: 'Basic', n: Number.NaN }, hooks)).toThrow(/NaN/);
    expect(() => copyRewritingReferences({ resourceType: 'Basic', f: () => 1 }, hooks)).toThrow(/function/);
    expect(() => copyRewritingReferences({ resourceType: 'Basic', d: new Date(0) }, hooks)).toThrow(/not plain JSON/);
  });

  it('treats only Reference-shaped objects as references', () => {
    const notARef = { resourceType: 'Basic', id: 'b', code: { text: 'x' }, thing: { reference: 'Encounter/e1', colour: 'blue' } };
    expect(copyRewritingReferences(notARef, hooks)).toEqual(notARef);
  });
});

describe('collectReferences and pruneReferences', () => {
  it('collects every reference, contained ones included', () => {
    expect(collectReferences({ a: { reference: 'X/1' }, b: [{ reference: '#c' }, { x: { reference: 'urn:uuid:1' } }] })).toEqual(['X/1', '#c', 'urn:uuid:1']);
  });

  it('removes references to fullUrls that are not kept', () => {
    const resource = { subject: { reference: 'urn:uuid:keep' }, focus: [{ reference: 'urn:uuid:gone', display: 'x' }] };
    const warnings: string[] = [];
    expect(pruneReferences(resource, (u) => u === 'urn:uuid:keep', (code) => void warnings.push(code))).toBe(1);
    expect(resource).toEqual({ subject: { reference: 'urn:uuid:keep' }, focus: [{ display: 'x' }] });
    expect(warnings).toEqual(['unresolved-reference']);
  });
});
