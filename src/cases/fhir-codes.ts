/**
 * Code systems, codes and identifier systems used in a case's FHIR face.
 * @packageDocumentation
 */
import type { Coding } from 'fhir/r4';

/** Identifier system of the program's case-scoped Patient identifier (value = case id). */
export const CASE_PATIENT_IDENTIFIER_SYSTEM = 'https://second-opinion.example.org/fhir/case-patient';
/** Identifier system of the case itself, on the ServiceRequest (value = case id). */
export const CASE_IDENTIFIER_SYSTEM = 'https://second-opinion.example.org/fhir/case';

/** HL7 v3 RoleCode, {@link https://terminology.hl7.org/CodeSystem-v3-RoleCode.html}. */
export const V3_ROLE_CODE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-RoleCode';
/** The program's own requester-relationship codes (fallback when no rule data is given). */
export const LOCAL_RELATIONSHIP_SYSTEM = 'https://second-opinion.example.org/fhir/CodeSystem/requester-relationship';

/** US NPI identifier system, {@link https://terminology.hl7.org/NamingSystem-npi.html}. */
export const NPI_SYSTEM = 'http://hl7.org/fhir/sid/us-npi';

/**
 * Consent scope: privacy consent. The case's Consent is the family's authorization for the program
 * to collect the child's records from the local care teams and use them for the opinion.
 * {@link https://terminology.hl7.org/CodeSystem-consentscope.html}
 */
export const CONSENT_SCOPE_PRIVACY: Coding = {
  system: 'http://terminology.hl7.org/CodeSystem/consentscope',
  code: 'patient-privacy',
  display: 'Privacy Consent',
};

/** Consent category LOINC 59284-0, as listed in {@link https://hl7.org/fhir/R4/valueset-consent-category.html}. */
export const CONSENT_CATEGORY_PATIENT_CONSENT: Coding = {
  system: 'http://loinc.org',
  code: '59284-0',
  display: 'Patient Consent',
};

/** Consent policy: HIPAA authorization, {@link https://terminology.hl7.org/CodeSystem-consentpolicycodes.html}. */
export const CONSENT_POLICY_HIPAA_AUTH: Coding = {
  system: 'http://terminology.hl7.org/CodeSystem/consentpolicycodes',
  code: 'hipaa-auth',
  display: 'HIPAA Authorization',
};

/** Purpose of use: treatment, {@link https://terminology.hl7.org/CodeSystem-v3-ActReason.html}. */
export const PURPOSE_TREATMENT: Coding = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
  code: 'TREAT',
  display: 'treatment',
};

/** Consent actions, {@link https://terminology.hl7.org/CodeSystem-consentaction.html}. */
export const CONSENT_ACTION_SYSTEM = 'http://terminology.hl7.org/CodeSystem/consentaction';

/**
 * What the ServiceRequest asks for: SNOMED CT 77406008 |Confirmatory medical consultation
 * (procedure)|, whose synonyms are "Second opinion" / "Second or third medical opinion" — the
 * concept made for exactly this (used e.g. by the Swiss CH ORF order profiles for "second
 * opinion"). Its parent 11429006 |Consultation (procedure)| is less specific; 371530004
 * |Clinical consultation report (record artifact)| names the report document, which fits the
 * delivered DiagnosticReport/Composition, not the request.
 * {@link https://browser.ihtsdotools.org/?perspective=full&conceptId1=77406008}
 */
export const SECOND_OPINION_CODE: Coding = {
  system: 'http://snomed.info/sct',
  code: '77406008',
  display: 'Confirmatory medical consultation',
};
