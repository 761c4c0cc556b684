/**
 * The resource types of the FHIR R4 Patient compartment: the types whose instances belong to a
 * patient (a `subject`, `patient`, `performer`… parameter can name one). Any other type — Medication,
 * Endpoint, Organization, Practitioner, Location, Binary… — is shared: not about any one patient.
 *
 * The types the CompartmentDefinition lists with at least one parameter (a type listed without one is
 * not in the compartment); `test/fhir/patient-compartment.part.ts` checks the list against the
 * definition itself.
 * @see https://hl7.org/fhir/R4/compartmentdefinition-patient.html
 */
export const PATIENT_COMPARTMENT_TYPES: ReadonlySet<string> = new Set([
  'Account', 'AdverseEvent', 'AllergyIntolerance', 'Appointment', 'AppointmentResponse', 'AuditEvent', 'Basic', 'BodyStructure',
  'CarePlan', 'CareTeam', 'ChargeItem', 'Claim', 'ClaimResponse', 'ClinicalImpression', 'Communication', 'CommunicationRequest',
  'Composition', 'Condition', 'Consent', 'Coverage', 'CoverageEligibilityRequest', 'CoverageEligibilityResponse', 'DetectedIssue',
  'DeviceRequest', 'DeviceUseStatement', 'DiagnosticReport', 'DocumentManifest', 'DocumentReference', 'Encounter', 'EnrollmentRequest',
  'EpisodeOfCare', 'ExplanationOfBenefit', 'FamilyMemberHistory', 'Flag', 'Goal', 'Group', 'ImagingStudy', 'Immunization',
  'ImmunizationEvaluation', 'ImmunizationRecommendation', 'Invoice', 'List', 'MeasureReport', 'Media', 'MedicationAdministration',
  'MedicationDispense', 'MedicationRequest', 'MedicationStatement', 'MolecularSequence', 'NutritionOrder', 'Observation', 'Patient',
  'Person', 'Procedure', 'Provenance', 'QuestionnaireResponse', 'RelatedPerson', 'RequestGroup', 'ResearchSubject', 'RiskAssessment',
  'Schedule', 'ServiceRequest', 'Specimen', 'SupplyDelivery', 'SupplyRequest', 'Task', 'VisionPrescription',
]);

/** Whether resources of this type belong to a patient (R4 Patient compartment), rather than being shared. */
export function belongsToAPatient(resourceType: string): boolean {
  return PATIENT_COMPARTMENT_TYPES.has(resourceType);
}
