/**
 * Basic structure checks of a raw resource before it may enter the case bundle.
 *
 * A resource that fails is left out with the reason (a `LeftOut`), never silently dropped and never
 * crashing the assembly. Checked here, cheapest first:
 * 1. a JSON object whose `resourceType` is an R4 resource type, equal to the stored type, and content
 *    (not `Bundle`, `Parameters` or `OperationOutcome`, which are messages, not records);
 * 2. `id` is present, has the R4 id syntax and equals the stored remote id;
 * 3. `meta`, when present, is an object;
 * 4. the elements R4 makes mandatory (min cardinality 1, top level) for the clinical types a case
 *    bundle holds are present and not empty (`medication[x]` = any `medicationXxx`).
 *
 * The deep JSON-level sanity check (only plain objects, arrays, strings, finite numbers, booleans;
 * at most 64 levels, hence no cycles; no `__proto__` key) runs inside the one copying walk of
 * `references.ts` (`copyRewritingReferences`), not in a second walk here: a resource failing it is
 * left out with reason `structure: …` just the same (performance budget: one walk per resource).
 *
 * This is not profile validation (that is `@medplum/core` `validateResource` in the tests); it only
 * keeps out what no later step could make sense of.
 * @see https://hl7.org/fhir/R4/json.html
 * @see https://hl7.org/fhir/R4/resourcelist.html
 * @see https://hl7.org/fhir/R4/datatypes.html#id
 * @see https://hl7.org/fhir/R4/conformance-rules.html#cardinality
 * @packageDocumentation
 */
import type { RawInput } from './types';

const { isArray } = Array;

/** The 146 resource types of FHIR R4 (4.0.1). */
export const R4_RESOURCE_TYPES: ReadonlySet<string> = new Set(
  `Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse AuditEvent Basic
  Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement CarePlan CareTeam CatalogEntry
  ChargeItem ChargeItemDefinition Claim ClaimResponse ClinicalImpression CodeSystem Communication
  CommunicationRequest CompartmentDefinition Composition ConceptMap Condition Consent Contract Coverage
  CoverageEligibilityRequest CoverageEligibilityResponse DetectedIssue Device DeviceDefinition DeviceMetric
  DeviceRequest DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference
  EffectEvidenceSynthesis Encounter Endpoint EnrollmentRequest EnrollmentResponse EpisodeOfCare
  EventDefinition Evidence EvidenceVariable ExampleScenario ExplanationOfBenefit FamilyMemberHistory Flag
  Goal GraphDefinition Group GuidanceResponse HealthcareService ImagingStudy Immunization
  ImmunizationEvaluation ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice Library Linkage
  List Location Measure MeasureReport Media Medication MedicationAdministration MedicationDispense
  MedicationKnowledge MedicationRequest MedicationStatement MedicinalProduct MedicinalProductAuthorization
  MedicinalProductContraindication MedicinalProductIndication MedicinalProductIngredient
  MedicinalProductInteraction MedicinalProductManufactured MedicinalProductPackaged
  MedicinalProductPharmaceutical MedicinalProductUndesirableEffect MessageDefinition MessageHeader
  MolecularSequence NamingSystem NutritionOrder Observation ObservationDefinition OperationDefinition
  OperationOutcome Organization OrganizationAffiliation Parameters Patient PaymentNotice
  PaymentReconciliation Person PlanDefinition Practitioner PractitionerRole Procedure Provenance
  Questionnaire QuestionnaireResponse RelatedPerson RequestGroup ResearchDefinition ResearchElementDefinition
  ResearchStudy ResearchSubject RiskAssessment RiskEvidenceSynthesis Schedule SearchParameter ServiceRequest
  Slot Specimen SpecimenDefinition StructureDefinition StructureMap Subscription Substance
  SubstanceNucleicAcid SubstancePolymer SubstanceProtein SubstanceReferenceInformation
  SubstanceSourceMaterial SubstanceSpecification SupplyDelivery SupplyRequest Task TerminologyCapabilities
  TestReport TestScript ValueSet VerificationResult VisionPrescription`.split(/\s+/),
);

/** Resource types that are exchange messages, not records: never part of a case bundle. */
export const NOT_CONTENT_TYPES: ReadonlySet<string> = new Set(['Bundle', 'Parameters', 'OperationOutcome']);

/**
 * Top-level elements with minimum cardinality 1 in the R4 base definitions, for the types a case
 * bundle holds (read from the R4 StructureDefinitions; types not listed have none checked).
 */
export const REQUIRED_ELEMENTS: Readonly<Record<string, readonly string[]>> = {
  AllergyIntolerance: ['patient'],
  Binary: ['contentType'],
  CarePlan: ['status', 'intent', 'subject'],
  Claim: ['status', 'type', 'use', 'patient', 'created', 'provider', 'priority', 'insurance'],
  CommunicationRequest: ['status'],
  Condition: ['subject'],
  Consent: ['status', 'scope', 'category'],
  Coverage: ['status', 'beneficiary', 'payor'],
  DeviceRequest: ['intent', 'code[x]', 'subject'],
  DiagnosticReport: ['status', 'code'],
  DocumentReference: ['status', 'content'],
  Encounter: ['status', 'class'],
  Endpoint: ['status', 'connectionType', 'payloadType', 'address'],
  ExplanationOfBenefit: ['status', 'type', 'use', 'patient', 'created', 'insurer', 'provider', 'outcome', 'insurance'],
  FamilyMemberHistory: ['status', 'patient', 'relationship'],
  Goal: ['lifecycleStatus', 'description', 'subject'],
  ImagingStudy: ['status', 'subject'],
  Immunization: ['status', 'vaccineCode', 'patient', 'occurrence[x]'],
  Media: ['status', 'content'],
  MedicationAdministration: ['status', 'medication[x]', 'subject', 'effective[x]'],
  MedicationDispense: ['status', 'medication[x]'],
  MedicationRequest: ['status', 'intent', 'medication[x]', 'subject'],
  MedicationStatement: ['status', 'medication[x]', 'subject'],
  NutritionOrder: ['status', 'intent', 'patient', 'dateTime'],
  Observation: ['status', 'code'],
  Procedure: ['status', 'subject'],
  Provenance: ['target', 'recorded', 'agent'],
  QuestionnaireResponse: ['status'],
  RelatedPerson: ['patient'],
  ServiceRequest: ['status', 'intent', 'subject'],
  Task: ['status', 'intent'],
  VisionPrescription: ['status', 'created', 'patient', 'dateWritten', 'prescriber', 'lensSpecification'],
};

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
function present(value: unknown): boolean {
  if (value === undefined || value === null || value === '') return false;
  if (isArray(value)) return value.length > 0;
  if (typeof value === 'object') {
    for (const _key in value) return true;
    return false;
  }
  return true;
}

/** Whether required element `name` (`x` or a choice `x[x]`) is present in `resource`. */
function hasElement(resource: Record<string, unknown>, name: string): boolean {
  if (!name.endsWith('[x]')) return present(resource[name]);
  const prefix = name.slice(0, -3);
  for (const key in resource) {
    if (key.length > prefix.length && key.startsWith(prefix)) {
      const c = key.charCodeAt(prefix.length);
      if (c >= 65 && c <= 90 && present(resource[key])) return true;
    }
  }
  return false;
}

/**
 * Structure checks of one raw resource.
 * @returns why it cannot enter the bundle (`structure: …`), or `undefined` when it passes
 */
export function checkStructure(raw: RawInput): string | undefined {
  const resource: unknown = raw.resource;
  if (typeof resource !== 'object' || resource === null || isArray(resource)) return 'structure: not a JSON object';
  const r = resource as Record<string, unknown>;
  const type = r['resourceType'];
  if (typeof type !== 'string') return 'structure: resourceType missing';
  if (!R4_RESOURCE_TYPES.has(type)) return `structure: "${type}" is not an R4 resource type`;
  if (type !== raw.resourceType) return `structure: resourceType ${type} differs from the stored type ${raw.resourceType}`;
  if (NOT_CONTENT_TYPES.has(type)) return `structure: a ${type} is a message, not a record`;
  const id = r['id'];
  if (typeof id !== 'string' || id === '') return 'structure: id missing';
  if (!FHIR_ID.test(id)) return 'structure: id is not a valid FHIR id';
  if (id !== raw.remoteId) return `structure: id ${id} differs from the stored remote id ${raw.remoteId}`;
  const meta = r['meta'];
  if (meta !== undefined && (typeof meta !== 'object' || meta === null || isArray(meta))) return 'structure: meta is not an object';
  const required = REQUIRED_ELEMENTS[type];
  if (required) {
    let missing: string[] | undefined;
    for (const name of required) if (!hasElement(r, name)) (missing ??= []).push(`${type}.${name}`);
    if (missing) return `structure: ${type} lacks required ${missing.join(', ')}`;
  }
  return undefined;
}
