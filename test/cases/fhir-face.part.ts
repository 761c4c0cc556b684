import { validateResource } from '@medplum/core';
import type { Resource as MedplumResource } from '@medplum/fhirtypes';
import type { Consent, Patient, RelatedPerson, Resource, ServiceRequest } from 'fhir/r4';
import { loadEligibilityRules } from '../../src/cases/eligibility-rules';
import { buildCaseFhirBundle, buildCaseFhirFace, relationshipConcept } from '../../src/cases/fhir-face';
import { caseFhirIds, uuidV5 } from '../../src/cases/fhir-ids';
import { loadFhirDefinitions } from '../../src/sandbox/fhir-definitions';
import { validIntake } from './fixtures';

const rules = loadEligibilityRules();
const caseId = '3f8a9c2e-1b4d-4e6f-8a7b-9c0d1e2f3a4b';
const createdAt = new Date('2026-03-10T15:00:00.000Z');

beforeAll(() => loadFhirDefinitions());

/**
 * Validates against the FHIR R4 StructureDefinitions (cardinality, types, invariants). medplum
 * cannot check the target type of a `urn:uuid:` reference and warns about it; those warnings alone
 * are left out (the same resources with relative references are validated with no issue at all).
 */
function fhirIssues(resource: Resource): string[] {
  try {
    return validateResource(resource as unknown as MedplumResource)
      .filter((i) => !(i.severity === 'warning' && /^Invalid reference: got "urn:uuid:/.test(i.details?.text ?? '')))
      .map((i) => `${i.severity}: ${i.details?.text ?? JSON.stringify(i)}`);
  } catch (err) {
    return [(err as Error).message];
  }
}

function face(eligible = true, change: Parameters<typeof validIntake>[0] = () => undefined) {
  const [patient, relatedPerson, consent, serviceRequest] = buildCaseFhirFace({ caseId, intake: validIntake(change), eligible, createdAt, rules });
  return { patient, relatedPerson, consent, serviceRequest };
}

describe('resource ids', () => {
  it('are stable version-5 UUIDs per case and resource type', () => {
    const ids = caseFhirIds(caseId);
    expect(caseFhirIds(caseId)).toEqual(ids);
    expect(new Set(Object.values(ids)).size).toBe(4);
    for (const id of Object.values(ids)) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(caseFhirIds('another-case').Patient).not.toBe(ids.Patient);
    expect(() => caseFhirIds(' ')).toThrow(RangeError);
  });

  it('follow RFC 9562 (test vector: www.example.com in the DNS namespace)', () => {
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });
});

describe('Patient', () => {
  it('carries name, birth date, gender, address and the case identifier', () => {
    const { patient } = face();
    expect(patient).toEqual<Patient>({
      resourceType: 'Patient',
      id: caseFhirIds(caseId).Patient,
      identifier: [{ use: 'secondary', system: 'https://second-opinion.example.org/fhir/case-patient', value: caseId }],
      name: [{ use: 'official', family: 'Example', given: ['Emma', 'Rose'] }],
      gender: 'female',
      birthDate: '2015-06-15',
      address: [
        { use: 'home', line: ['1200 Broadway', 'Apt 4'], city: 'Nashville', district: 'Davidson', state: 'TN', postalCode: '37203', country: 'US' },
      ],
    });
    expect(fhirIssues(patient)).toEqual([]);
  });

  it('omits gender and district when not given', () => {
    const { patient } = face(true, (i) => {
      delete i.patient.sex;
      delete i.patient.address.district;
    });
    expect(patient).not.toHaveProperty('gender');
    expect(patient.address?.[0]).not.toHaveProperty('district');
    expect(fhirIssues(patient)).toEqual([]);
  });
});

describe('RelatedPerson', () => {
  it('is the requester, coded with v3 RoleCode, with telecom', () => {
    const { relatedPerson } = face();
    expect(relatedPerson).toEqual<RelatedPerson>({
      resourceType: 'RelatedPerson',
      id: caseFhirIds(caseId).RelatedPerson,
      active: true,
      patient: { reference: `urn:uuid:${caseFhirIds(caseId).Patient}`, type: 'Patient' },
      relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'MTH', display: 'mother' }], text: 'mother' }],
      name: [{ text: 'Maria Example' }],
      telecom: [
        { system: 'phone', value: '+1 (615) 555-0134' },
        { system: 'email', value: 'maria@example.com' },
      ],
    });
    expect(fhirIssues(relatedPerson)).toEqual([]);
  });

  it('uses the program code system for codes v3 lacks, and the canonical code whatever the case sent', () => {
    expect(face(true, (i) => (i.requester.relationship = 'IN-LOCO-PARENTIS')).relatedPerson.relationship).toEqual([
      {
        coding: [{ system: 'https://second-opinion.example.org/fhir/CodeSystem/requester-relationship', code: 'in-loco-parentis', display: 'in loco parentis' }],
        text: 'in loco parentis',
      },
    ]);
    expect(relationshipConcept('guard', rules).coding?.[0]?.code).toBe('GUARD');
  });

  it('keeps an unknown code as text only, and guesses the system without rule data', () => {
    expect(relationshipConcept('XYZ', rules)).toEqual({ text: 'XYZ' });
    expect(relationshipConcept('GUARD')).toEqual({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'GUARD' }], text: 'GUARD' });
    expect(relationshipConcept('court-appointed-guardian').coding?.[0]?.system).toBe(
      'https://second-opinion.example.org/fhir/CodeSystem/requester-relationship',
    );
  });

  it('has no telecom when neither phone nor email is given', () => {
    const { relatedPerson } = face(true, (i) => {
      delete i.requester.phone;
      delete i.requester.email;
    });
    expect(relatedPerson).not.toHaveProperty('telecom');
    expect(fhirIssues(relatedPerson)).toEqual([]);
  });
});

describe('Consent', () => {
  it('is an active privacy consent given by the requester for the patient', () => {
    const { consent } = face();
    const ids = caseFhirIds(caseId);
    expect(consent).toEqual<Consent>({
      resourceType: 'Consent',
      id: ids.Consent,
      status: 'active',
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy', display: 'Privacy Consent' }] },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0', display: 'Patient Consent' }] }],
      patient: { reference: `urn:uuid:${ids.Patient}`, type: 'Patient' },
      dateTime: '2026-03-10T15:00:00.000Z',
      performer: [{ reference: `urn:uuid:${ids.RelatedPerson}`, type: 'RelatedPerson' }],
      policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentpolicycodes', code: 'hipaa-auth', display: 'HIPAA Authorization' }] },
      provision: {
        type: 'permit',
        period: { start: '2026-03-10T15:00:00.000Z' },
        action: [
          { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'collect', display: 'Collect' }] },
          { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'use', display: 'Use' }] },
        ],
        purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT', display: 'treatment' }],
      },
    });
    expect(fhirIssues(consent)).toEqual([]);
  });

  it('is rejected when the request is not eligible', () => {
    const { consent } = face(false);
    expect(consent.status).toBe('rejected');
    expect(fhirIssues(consent)).toEqual([]);
  });
});

describe('ServiceRequest', () => {
  it('orders a second opinion (SNOMED CT 77406008) for the patient, requested by the requester', () => {
    const { serviceRequest } = face();
    const ids = caseFhirIds(caseId);
    expect(serviceRequest).toEqual<ServiceRequest>({
      resourceType: 'ServiceRequest',
      id: ids.ServiceRequest,
      contained: [
        {
          resourceType: 'Practitioner',
          id: 'referring-physician',
          identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567893' }],
          name: [{ text: 'Dr. Alan Smith' }],
        },
      ],
      identifier: [{ system: 'https://second-opinion.example.org/fhir/case', value: caseId }],
      status: 'active',
      intent: 'order',
      priority: 'routine',
      code: { coding: [{ system: 'http://snomed.info/sct', code: '77406008', display: 'Confirmatory medical consultation' }], text: 'Online second opinion' },
      subject: { reference: `urn:uuid:${ids.Patient}`, type: 'Patient' },
      authoredOn: '2026-03-10T15:00:00.000Z',
      requester: { reference: `urn:uuid:${ids.RelatedPerson}`, type: 'RelatedPerson' },
      reasonCode: [
        {
          coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'C71.6', display: 'Malignant neoplasm of cerebellum' }],
          text: 'Pilocytic astrocytoma of the cerebellum',
        },
      ],
      supportingInfo: [{ reference: '#referring-physician', display: 'Referring physician' }],
      note: [
        { text: 'History: Headaches and vomiting for 3 months; MRI showed a 3 cm cerebellar mass; partial resection in March.' },
        { text: 'Reason for the second opinion: We want to know whether a second surgery or chemotherapy is the better next step.' },
        { text: 'Question 1: Is further surgery advisable?' },
        { text: 'Question 2: Would you recommend chemotherapy now or watchful waiting?' },
        { text: 'Referring physician: Dr. Alan Smith, NPI 1234567893, Nashville Pediatric Neurology' },
      ],
    });
    expect(fhirIssues(serviceRequest)).toEqual([]);
  });

  it('uses the diagnosis text alone when no codes are given, and is revoked when ineligible', () => {
    const { serviceRequest } = face(false, (i) => {
      delete i.diagnosis.codes;
      i.referringPhysician = { name: 'Dr. Jones' };
    });
    expect(serviceRequest.status).toBe('revoked');
    expect(serviceRequest.reasonCode).toEqual([{ text: 'Pilocytic astrocytoma of the cerebellum' }]);
    expect(serviceRequest.contained).toEqual([{ resourceType: 'Practitioner', id: 'referring-physician', name: [{ text: 'Dr. Jones' }] }]);
    expect(serviceRequest.note?.at(-1)).toEqual({ text: 'Referring physician: Dr. Jones' });
    expect(fhirIssues(serviceRequest)).toEqual([]);
  });
});

describe('references and the Bundle', () => {
  it('can use relative references, which validate with no warning at all', () => {
    const [, relatedPerson, consent, serviceRequest] = buildCaseFhirFace({ caseId, intake: validIntake(), eligible: true, createdAt, rules, referenceStyle: 'relative' });
    const ids = caseFhirIds(caseId);
    expect(relatedPerson.patient).toEqual({ reference: `Patient/${ids.Patient}`, type: 'Patient' });
    expect(consent.performer).toEqual([{ reference: `RelatedPerson/${ids.RelatedPerson}`, type: 'RelatedPerson' }]);
    expect(serviceRequest.requester).toEqual({ reference: `RelatedPerson/${ids.RelatedPerson}`, type: 'RelatedPerson' });
    for (const resource of [relatedPerson, consent, serviceRequest]) {
      expect(validateResource(resource as unknown as MedplumResource)).toEqual([]);
    }
  });

  it('builds a collection Bundle whose urn:uuid references all resolve inside it', () => {
    const bundle = buildCaseFhirBundle({ caseId, intake: validIntake(), eligible: true, createdAt, rules }, new Date('2026-03-11T09:00:00Z'));
    expect(bundle.type).toBe('collection');
    expect(bundle.timestamp).toBe('2026-03-11T09:00:00.000Z');
    expect(bundle.entry?.map((e) => e.resource?.resourceType)).toEqual(['Patient', 'RelatedPerson', 'Consent', 'ServiceRequest']);
    const fullUrls = new Set(bundle.entry?.map((e) => e.fullUrl));
    const references = JSON.stringify(bundle).match(/"reference":"urn:uuid:[^"]+"/g) ?? [];
    expect(references.length).toBe(5); // RelatedPerson.patient, Consent.patient, Consent.performer, ServiceRequest.subject, .requester
    for (const ref of references) expect(fullUrls.has(ref.slice('"reference":"'.length, -1))).toBe(true);
    expect(fhirIssues(bundle)).toEqual([]);
  });

  it('is checked by a validator that does catch broken resources', () => {
    const { consent } = face();
    const broken = { ...consent } as Partial<Consent>;
    delete broken.policyRule;
    expect(fhirIssues(broken as Consent).join(' ')).toMatch(/ppc-1/);
  });
});

describe('statuses follow the case lifecycle', () => {
  it.each([
    ['submitted', true, 'active', 'active'],
    ['collecting_records', true, 'active', 'active'],
    ['in_review', true, 'active', 'active'],
    ['report_signed', true, 'active', 'active'],
    ['delivered', true, 'completed', 'active'],
    ['closed', true, 'completed', 'inactive'],
    ['cancelled', true, 'revoked', 'inactive'],
    ['ineligible', false, 'revoked', 'rejected'],
    [undefined, true, 'active', 'active'],
  ] as const)('case %s (eligible %s): ServiceRequest %s, Consent %s', (status, eligible, request, consent) => {
    const [, , c, s] = buildCaseFhirFace({ caseId, intake: validIntake(), eligible, createdAt, rules, ...(status ? { status } : {}) });
    expect([s?.resourceType === 'ServiceRequest' ? s.status : undefined, c?.resourceType === 'Consent' ? c.status : undefined]).toEqual([request, consent]);
  });
});
