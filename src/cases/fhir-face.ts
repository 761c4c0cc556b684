/**
 * A case's FHIR R4 face: the intake expressed as `Patient`, `RelatedPerson`
 * (the requester), `Consent` (their authorization) and `ServiceRequest` (the
 * second-opinion order). Pure: no server, no I/O.
 *
 * Resources reference each other by `urn:uuid:<id>` (default, ready for a Bundle
 * whose fullUrls are `urn:uuid:<id>`, see {@link buildCaseFhirBundle}) or by
 * relative `Type/<id>` references; every reference also states its target `type`.
 * @see https://hl7.org/fhir/R4/patient.html
 * @see https://hl7.org/fhir/R4/relatedperson.html
 * @see https://hl7.org/fhir/R4/consent.html
 * @see https://hl7.org/fhir/R4/servicerequest.html
 * @packageDocumentation
 */
import type {
  Annotation,
  Bundle,
  CodeableConcept,
  Consent,
  ContactPoint,
  Patient,
  Practitioner,
  Reference,
  RelatedPerson,
  ServiceRequest,
} from 'fhir/r4';
import type { EligibilityRules } from './eligibility-rules';
import { findRelationship, relationshipSystemUri } from './relationship-lookup';
import {
  CASE_IDENTIFIER_SYSTEM,
  CASE_PATIENT_IDENTIFIER_SYSTEM,
  CONSENT_ACTION_SYSTEM,
  CONSENT_CATEGORY_PATIENT_CONSENT,
  CONSENT_POLICY_HIPAA_AUTH,
  CONSENT_SCOPE_PRIVACY,
  LOCAL_RELATIONSHIP_SYSTEM,
  NPI_SYSTEM,
  PURPOSE_TREATMENT,
  SECOND_OPINION_CODE,
  V3_ROLE_CODE_SYSTEM,
} from './fhir-codes';
import { caseFhirIds, type CaseFhirIds, type CaseResourceType } from './fhir-ids';
import type { Intake } from './intake-schema';

/** Inputs of {@link buildCaseFhirFace}. */
export interface CaseFhirInput {
  caseId: string;
  intake: Intake;
  /** Outcome of eligibility: an eligible case has an active Consent and ServiceRequest. */
  eligible: boolean;
  /**
   * Where the case is in its lifecycle (`lifecycle.ts`): a cancelled case's request is revoked and its
   * consent no longer acted on; a delivered or closed one's request is completed. Absent: in progress.
   */
  status?: string;
  /** When the case reached that status (ends the consent's provision period of an ended case). */
  statusSince?: Date;
  /** When the request was submitted (Consent.dateTime, ServiceRequest.authoredOn). */
  createdAt: Date;
  /**
   * Rule data, to code the requester's relationship with its system and display. Without it the
   * system is guessed (upper-case codes are v3 RoleCode) and no display is given.
   */
  rules?: EligibilityRules;
  /** `urn:uuid` (default) or relative `Type/id` references. */
  referenceStyle?: 'urn:uuid' | 'relative';
}

/** The four resources, in this order. */
export type CaseFhirFace = [Patient, RelatedPerson, Consent, ServiceRequest];

/** Local id of the contained referring Practitioner. */
export const REFERRING_PRACTITIONER_ID = 'referring-physician';

type Ref = (type: CaseResourceType) => Reference;

function referencer(ids: CaseFhirIds, style: 'urn:uuid' | 'relative'): Ref {
  return (type) => ({ reference: style === 'relative' ? `${type}/${ids[type]}` : `urn:uuid:${ids[type]}`, type });
}

/** The requester's relationship as a CodeableConcept. */
export function relationshipConcept(code: string, rules?: EligibilityRules): CodeableConcept {
  const rule = rules ? findRelationship(rules, code) : undefined;
  if (rule && rules) {
    return { coding: [{ system: relationshipSystemUri(rules, rule), code: rule.code, display: rule.display }], text: rule.display };
  }
  if (rules) return { text: code }; // unknown to the program: keep what the family sent, uncoded
  const system = /^[A-Z]+$/.test(code) ? V3_ROLE_CODE_SYSTEM : LOCAL_RELATIONSHIP_SYSTEM;
  return { coding: [{ system, code }], text: code };
}

/** The Patient: name, birth date, gender, home address, and the case-scoped identifier. */
export function buildPatient(input: CaseFhirInput, ids: CaseFhirIds): Patient {
  const { patient } = input.intake;
  const a = patient.address;
  return {
    resourceType: 'Patient',
    id: ids.Patient,
    identifier: [{ use: 'secondary', system: CASE_PATIENT_IDENTIFIER_SYSTEM, value: input.caseId }],
    name: [{ use: 'official', family: patient.name.family, given: [...patient.name.given] }],
    ...(patient.sex ? { gender: patient.sex } : {}),
    birthDate: patient.birthDate,
    address: [
      {
        use: 'home',
        line: [...a.line],
        city: a.city,
        ...(a.district ? { district: a.district } : {}),
        // FHIR Address.state and postalCode are 0..1: an address abroad may have neither.
        ...(a.state ? { state: a.state } : {}),
        ...(a.postalCode ? { postalCode: a.postalCode } : {}),
        country: a.country,
      },
    ],
  };
}

/** The requester as a RelatedPerson of the patient, relationship coded (v3 RoleCode or program code), with telecom. */
export function buildRelatedPerson(input: CaseFhirInput, ids: CaseFhirIds, ref: Ref): RelatedPerson {
  const { requester } = input.intake;
  const telecom: ContactPoint[] = [];
  if (requester.phone) telecom.push({ system: 'phone', value: requester.phone });
  if (requester.email) telecom.push({ system: 'email', value: requester.email });
  return {
    resourceType: 'RelatedPerson',
    id: ids.RelatedPerson,
    active: true,
    patient: ref('Patient'),
    relationship: [relationshipConcept(requester.relationship, input.rules)],
    name: [{ text: requester.name }],
    ...(telecom.length > 0 ? { telecom } : {}),
  };
}

/** Statuses after which the program no longer acts on the case (no pull, no review). */
const ENDED: ReadonlySet<string> = new Set(['cancelled', 'closed']);

/**
 * ServiceRequest.status of the case (R4 request-status): `revoked` when ineligible or cancelled,
 * `completed` once the report is delivered (or the case closed after it), `active` in between.
 * @see https://hl7.org/fhir/R4/valueset-request-status.html
 */
export function serviceRequestStatus(input: Pick<CaseFhirInput, 'eligible' | 'status'>): ServiceRequest['status'] {
  if (!input.eligible || input.status === 'cancelled' || input.status === 'ineligible') return 'revoked';
  if (input.status === 'delivered' || input.status === 'closed') return 'completed';
  return 'active';
}

/**
 * Consent.status of the case (R4 consent-state-codes): `rejected` when the request was ineligible,
 * `inactive` once the case is cancelled or closed (the authorization is no longer acted on), else `active`.
 * @see https://hl7.org/fhir/R4/valueset-consent-state-codes.html
 */
export function consentStatus(input: Pick<CaseFhirInput, 'eligible' | 'status'>): Consent['status'] {
  if (!input.eligible || input.status === 'ineligible') return 'rejected';
  return input.status !== undefined && ENDED.has(input.status) ? 'inactive' : 'active';
}

/**
 * The requester's privacy consent (scope `patient-privacy`, category LOINC 59284-0, policy HIPAA
 * authorization) permitting the program to collect and use the child's records for treatment:
 * the authorization behind the pulls from local care teams. Status: {@link consentStatus}.
 */
export function buildConsent(input: CaseFhirInput, ids: CaseFhirIds, ref: Ref): Consent {
  const dateTime = input.createdAt.toISOString();
  return {
    resourceType: 'Consent',
    id: ids.Consent,
    status: consentStatus(input),
    scope: { coding: [CONSENT_SCOPE_PRIVACY] },
    category: [{ coding: [CONSENT_CATEGORY_PATIENT_CONSENT] }],
    patient: ref('Patient'),
    dateTime,
    performer: [ref('RelatedPerson')],
    policyRule: { coding: [CONSENT_POLICY_HIPAA_AUTH] },
    provision: {
      type: 'permit',
      // An ended case's authorization ends with it.
      period: { start: dateTime, ...(consentStatus(input) === 'inactive' && input.statusSince ? { end: input.statusSince.toISOString() } : {}) },
      action: [
        { coding: [{ system: CONSENT_ACTION_SYSTEM, code: 'collect', display: 'Collect' }] },
        { coding: [{ system: CONSENT_ACTION_SYSTEM, code: 'use', display: 'Use' }] },
      ],
      purpose: [PURPOSE_TREATMENT],
    },
  };
}

function referringPractitioner(intake: Intake): Practitioner {
  const { referringPhysician } = intake;
  return {
    resourceType: 'Practitioner',
    id: REFERRING_PRACTITIONER_ID,
    ...(referringPhysician.npi ? { identifier: [{ system: NPI_SYSTEM, value: referringPhysician.npi }] } : {}),
    name: [{ text: referringPhysician.name }],
  };
}

function reasonConcept(intake: Intake): CodeableConcept {
  const codes = intake.diagnosis.codes ?? [];
  return {
    ...(codes.length > 0
      ? { coding: codes.map((c) => ({ system: c.system, code: c.code, ...(c.display ? { display: c.display } : {}) })) }
      : {}),
    text: intake.diagnosis.text,
  };
}

function notes(intake: Intake): Annotation[] {
  const { referringPhysician: doc } = intake;
  const referrer = [doc.name, doc.npi ? `NPI ${doc.npi}` : undefined, doc.organization].filter(Boolean).join(', ');
  return [
    { text: `History: ${intake.history}` },
    { text: `Reason for the second opinion: ${intake.reason}` },
    ...intake.questions.map((q, i) => ({ text: `Question ${i + 1}: ${q}` })),
    { text: `Referring physician: ${referrer}` },
  ];
}

/**
 * The second-opinion order: SNOMED CT 77406008, subject the patient, requested by the requester,
 * reason from the diagnosis, notes with history, reason, questions and the referring physician
 * (also a contained Practitioner with NPI). Status: {@link serviceRequestStatus}.
 */
export function buildServiceRequest(input: CaseFhirInput, ids: CaseFhirIds, ref: Ref): ServiceRequest {
  const { intake } = input;
  return {
    resourceType: 'ServiceRequest',
    id: ids.ServiceRequest,
    contained: [referringPractitioner(intake)],
    identifier: [{ system: CASE_IDENTIFIER_SYSTEM, value: input.caseId }],
    status: serviceRequestStatus(input),
    intent: 'order',
    priority: 'routine',
    code: { coding: [SECOND_OPINION_CODE], text: 'Online second opinion' },
    subject: ref('Patient'),
    authoredOn: input.createdAt.toISOString(),
    requester: ref('RelatedPerson'),
    reasonCode: [reasonConcept(intake)],
    supportingInfo: [{ reference: `#${REFERRING_PRACTITIONER_ID}`, display: 'Referring physician' }],
    note: notes(intake),
  };
}

/**
 * Builds the case's Patient, RelatedPerson, Consent and ServiceRequest.
 * Resource ids are stable UUIDs derived from the case id ({@link caseFhirIds}).
 */
export function buildCaseFhirFace(input: CaseFhirInput): CaseFhirFace {
  const ids = caseFhirIds(input.caseId);
  const ref = referencer(ids, input.referenceStyle ?? 'urn:uuid');
  return [
    buildPatient(input, ids),
    buildRelatedPerson(input, ids, ref),
    buildConsent(input, ids, ref),
    buildServiceRequest(input, ids, ref),
  ];
}

/**
 * The FHIR face as a `collection` Bundle whose entries' fullUrls are `urn:uuid:<id>`, so the
 * resources' `urn:uuid` references resolve inside it.
 * @param timestamp - when the Bundle was assembled
 */
export function buildCaseFhirBundle(input: Omit<CaseFhirInput, 'referenceStyle'>, timestamp: Date): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'collection',
    timestamp: timestamp.toISOString(),
    entry: buildCaseFhirFace({ ...input, referenceStyle: 'urn:uuid' }).map((resource) => ({
      fullUrl: `urn:uuid:${resource.id ?? ''}`,
      resource,
    })),
  };
}
