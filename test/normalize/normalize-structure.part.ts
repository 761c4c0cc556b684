import { checkStructure, NOT_CONTENT_TYPES, R4_RESOURCE_TYPES, REQUIRED_ELEMENTS } from '../../src/normalize/structure';
import type { RawInput } from '../../src/normalize/types';

function raw(resource: Record<string, unknown>, overrides: Partial<RawInput> = {}): RawInput {
  return {
    sourceId: 's',
    resourceType: String(resource['resourceType'] ?? 'Observation'),
    remoteId: String(resource['id'] ?? 'x'),
    versionId: '1',
    fetchedAt: '2026-01-01T00:00:00Z',
    sha256: 'h',
    resource,
    ...overrides,
  };
}

const OBS = { resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'HbA1c' } };

describe('structure checks', () => {
  it('knows the 146 R4 resource types (4.0.1, without R4B additions)', () => {
    expect(R4_RESOURCE_TYPES.size).toBe(146);
    expect(R4_RESOURCE_TYPES.has('SubscriptionStatus')).toBe(false);
    for (const type of Object.keys(REQUIRED_ELEMENTS)) expect(R4_RESOURCE_TYPES.has(type)).toBe(true);
  });

  it('passes a well-formed resource', () => {
    expect(checkStructure(raw(OBS))).toBeUndefined();
  });

  it.each([
    ['not an object', raw(OBS, { resource: [] as unknown as Record<string, unknown> }), 'structure: not a JSON object'],
    ['no resourceType', raw({ id: 'o1' }, { resourceType: 'Observation' }), 'structure: resourceType missing'],
    ['unknown type', raw({ ...OBS, resourceType: 'Observacion' }), 'structure: "Observacion" is not an R4 resource type'],
    ['type differs from the stored one', raw(OBS, { resourceType: 'Condition' }), 'structure: resourceType Observation differs from the stored type Condition'],
    ['a message', raw({ resourceType: 'OperationOutcome', id: 'oo', issue: [] }), 'structure: a OperationOutcome is a message, not a record'],
    ['no id', raw({ resourceType: 'Observation', status: 'final', code: {} }, { remoteId: 'o1' }), 'structure: id missing'],
    ['bad id', raw({ ...OBS, id: 'has space' }), 'structure: id is not a valid FHIR id'],
    ['id differs from the stored one', raw(OBS, { remoteId: 'o2' }), 'structure: id o1 differs from the stored remote id o2'],
    ['meta not an object', raw({ ...OBS, meta: 'x' }), 'structure: meta is not an object'],
    ['missing Observation.status and code', raw({ resourceType: 'Observation', id: 'o1', code: {} }), 'structure: Observation lacks required Observation.status, Observation.code'],
    ['missing Condition.subject', raw({ resourceType: 'Condition', id: 'c1' }), 'structure: Condition lacks required Condition.subject'],
    ['missing MedicationRequest.medication[x]', raw({ resourceType: 'MedicationRequest', id: 'm1', status: 'active', intent: 'order', subject: { reference: 'Patient/p' } }), 'structure: MedicationRequest lacks required MedicationRequest.medication[x]'],
    ['empty DocumentReference.content', raw({ resourceType: 'DocumentReference', id: 'd1', status: 'current', content: [] }), 'structure: DocumentReference lacks required DocumentReference.content'],
  ])('leaves out a resource with %s', (_label, input, reason) => {
    expect(checkStructure(input)).toBe(reason);
  });

  it('accepts any choice type for x[x] elements', () => {
    const base = { resourceType: 'MedicationRequest', id: 'm1', status: 'active', intent: 'order', subject: { reference: 'Patient/p' } };
    expect(checkStructure(raw({ ...base, medicationReference: { reference: 'Medication/x' } }))).toBeUndefined();
    expect(checkStructure(raw({ ...base, medicationCodeableConcept: { text: 'insulin' } }))).toBeUndefined();
    expect(checkStructure(raw({ resourceType: 'Immunization', id: 'i', status: 'completed', vaccineCode: { text: 'x' }, patient: { reference: 'Patient/p' }, occurrenceString: 'fall 2020' }))).toBeUndefined();
  });

  it('lists Bundle, Parameters and OperationOutcome as messages', () => {
    expect([...NOT_CONTENT_TYPES].sort()).toEqual(['Bundle', 'OperationOutcome', 'Parameters']);
  });
});
