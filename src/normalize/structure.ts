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
 *    bundle holds are present and not empty (`medication[x]` = any `medicationXxx`);
 * 5. inside each backbone element that is present, the elements R4 makes mandatory there
 *    ({@link NESTED_REQUIRED_ELEMENTS}: an allergy `reaction` needs its `manifestation`, an
 *    Observation `component` its `code`, an ImagingStudy `series` its `uid`…), and the `text` of
 *    every Annotation (`note`).
 *
 * Why a resource missing a required NESTED element is left out rather than kept: the case bundle
 * is a FHIR document a receiving system validates as a whole; one resource violating a cardinality
 * makes the whole document invalid (and may get the whole case refused), while repairing it (dropping
 * the reaction without manifestation) would change what the source said without trace. Left out, it
 * is listed with its reason in the completeness report (the case manager sees which record of which
 * source, and the raw record stays in the raw store), exactly as a resource missing a top-level
 * required element is. The steps after normalization still read nested elements defensively (the
 * Composition describes a resource with what it has), so a resource that slips past these checks
 * can never stop the assembly either.
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
 * @see https://hl7.org/fhir/R4/datatypes.html#Annotation
 * @see https://hl7.org/fhir/R4/documents.html
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

/**
 * Elements with minimum cardinality 1 inside backbone elements, per type, as `path.element` (read
 * from the R4 StructureDefinitions of the types a case bundle holds; each applies to every element
 * present at `path`, none when the backbone element is absent).
 * @see https://hl7.org/fhir/R4/conformance-rules.html#cardinality
 */
export const NESTED_REQUIRED_ELEMENTS: Readonly<Record<string, readonly string[]>> = {
  AdverseEvent: ['suspectEntity.instance'],
  AllergyIntolerance: ['reaction.manifestation'],
  CarePlan: ['activity.detail.status'],
  Claim: [
    'payee.type', 'careTeam.sequence', 'careTeam.provider', 'supportingInfo.sequence', 'supportingInfo.category', 'diagnosis.sequence',
    'diagnosis.diagnosis[x]', 'procedure.sequence', 'procedure.procedure[x]', 'insurance.sequence', 'insurance.focal', 'insurance.coverage',
    'accident.date', 'item.sequence', 'item.productOrService', 'item.detail.sequence', 'item.detail.productOrService',
    'item.detail.subDetail.sequence', 'item.detail.subDetail.productOrService',
  ],
  ClinicalImpression: ['investigation.code'],
  Communication: ['payload.content[x]'],
  CommunicationRequest: ['payload.content[x]'],
  Composition: ['attester.mode', 'relatesTo.code', 'relatesTo.target[x]'],
  Consent: ['verification.verified', 'provision.actor.role', 'provision.actor.reference', 'provision.data.meaning', 'provision.data.reference'],
  Coverage: ['class.type', 'class.value', 'costToBeneficiary.value[x]', 'costToBeneficiary.exception.type'],
  Device: ['deviceName.name', 'deviceName.type', 'specialization.systemType', 'version.value', 'property.type'],
  DiagnosticReport: ['media.link'],
  DocumentReference: ['relatesTo.code', 'relatesTo.target', 'content.attachment'],
  Encounter: ['statusHistory.status', 'statusHistory.period', 'classHistory.class', 'classHistory.period', 'diagnosis.condition', 'location.location'],
  EpisodeOfCare: ['statusHistory.status', 'statusHistory.period', 'diagnosis.condition'],
  ExplanationOfBenefit: [
    'careTeam.sequence', 'careTeam.provider', 'supportingInfo.sequence', 'supportingInfo.category', 'diagnosis.sequence', 'diagnosis.diagnosis[x]',
    'procedure.sequence', 'procedure.procedure[x]', 'insurance.focal', 'insurance.coverage', 'item.sequence', 'item.productOrService',
    'item.adjudication.category', 'item.detail.sequence', 'item.detail.productOrService', 'item.detail.subDetail.sequence',
    'item.detail.subDetail.productOrService', 'addItem.productOrService', 'addItem.detail.productOrService',
    'addItem.detail.subDetail.productOrService', 'total.category', 'total.amount', 'benefitBalance.category', 'benefitBalance.financial.type',
  ],
  FamilyMemberHistory: ['condition.code'],
  ImagingStudy: ['series.uid', 'series.modality', 'series.performer.actor', 'series.instance.uid', 'series.instance.sopClass'],
  Immunization: ['performer.actor', 'protocolApplied.doseNumber[x]'],
  List: ['entry.item'],
  Location: ['position.longitude', 'position.latitude'],
  Medication: ['ingredient.item[x]'],
  MedicationAdministration: ['performer.actor'],
  MedicationDispense: ['performer.actor', 'substitution.wasSubstituted'],
  MedicationRequest: ['substitution.allowed[x]'],
  Observation: ['component.code'],
  Patient: ['communication.language', 'link.other', 'link.type'],
  Practitioner: ['qualification.code'],
  PractitionerRole: ['notAvailable.description'],
  Procedure: ['performer.actor', 'focalDevice.manipulated'],
  Provenance: ['agent.who', 'entity.role', 'entity.what'],
  QuestionnaireResponse: ['item.linkId'],
  RelatedPerson: ['communication.language'],
  Task: ['input.type', 'input.value[x]', 'output.type', 'output.value[x]'],
  VisionPrescription: ['lensSpecification.product', 'lensSpecification.eye', 'lensSpecification.prism.amount', 'lensSpecification.prism.base'],
};

/** Required inside elements every resource type may have: `Annotation.text` (every R4 `note` is an Annotation). */
const COMMON_NESTED_REQUIRED: readonly string[] = ['note.text'];

/** A nested requirement, split once: the path to the holders and the required element. */
interface NestedRequirement {
  readonly name: string;
  readonly path: readonly string[];
  readonly element: string;
}

const split = (name: string): NestedRequirement => {
  const parts = name.split('.');
  return { name, element: parts.pop() ?? '', path: parts };
};

const NESTED_BY_TYPE: ReadonlyMap<string, readonly NestedRequirement[]> = new Map(
  [...R4_RESOURCE_TYPES].map((type) => [type, [...(NESTED_REQUIRED_ELEMENTS[type] ?? []), ...COMMON_NESTED_REQUIRED].map(split)]),
);

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
 * Whether an element at `path[depth…]` under `value` lacks required `element`: an element there that
 * is not an object (a backbone element sent as a string) lacks it too. Absent (or `null`, which the
 * JSON check of `references.ts` refuses) holds nothing to check.
 */
function lacksNested(value: unknown, req: NestedRequirement, depth: number): boolean {
  if (value === undefined || value === null) return false;
  if (isArray(value)) {
    for (const v of value) if (lacksNested(v, req, depth)) return true;
    return false;
  }
  if (typeof value !== 'object') return true;
  const obj = value as Record<string, unknown>;
  const key = req.path[depth];
  return key === undefined ? !hasElement(obj, req.element) : lacksNested(obj[key], req, depth + 1);
}

/** `Type.path.element` of each nested requirement of `type` that `r` does not meet. */
function missingNested(type: string, r: Record<string, unknown>): string[] | undefined {
  let missing: string[] | undefined;
  for (const req of NESTED_BY_TYPE.get(type) ?? []) {
    const top = req.path[0];
    if (top !== undefined && r[top] !== undefined && lacksNested(r[top], req, 1)) (missing ??= []).push(`${type}.${req.name}`);
  }
  return missing;
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
  let missing: string[] | undefined;
  for (const name of REQUIRED_ELEMENTS[type] ?? []) if (!hasElement(r, name)) (missing ??= []).push(`${type}.${name}`);
  const nested = missingNested(type, r);
  if (nested) missing = [...(missing ?? []), ...nested];
  return missing ? `structure: ${type} lacks required ${missing.join(', ')}` : undefined;
}
