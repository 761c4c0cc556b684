/**
 * Only the child's records enter the case. A source's answer can hold another person's: a server
 * that ignores a search parameter it does not support returns every patient's results (lenient
 * handling, https://hl7.org/fhir/R4/search.html#errors), `$everything` and `_include` bring referenced
 * Patients (a parent, a sibling). A record about another patient in a child's second-opinion record is
 * a privacy breach and a clinical hazard, so normalization leaves it out, with the reason.
 *
 * At a server where the child is known (`remotePatientId`, or its only Patient), a resource is about
 * another patient when
 * - it is a Patient that is neither the child nor linked from the child's Patient as the same person
 *   (`Patient.link`: "another patient resource that concerns the same actual person",
 *   https://hl7.org/fhir/R4/patient-definitions.html#Patient.link — an EHR's duplicate record of the
 *   child stays), or
 * - the element that says whom it is about names another patient. Of the elements by which the Patient
 *   compartment (https://hl7.org/fhir/R4/compartmentdefinition-patient.html) takes a resource in, only
 *   those that say whom the record is ABOUT are read: `subject` / `patient` (the compartment's
 *   `subject` and `patient` parameters, e.g. `Observation.subject`, `Encounter.subject`,
 *   `AllergyIntolerance.patient`, `Immunization.patient`), `Coverage.beneficiary` and
 *   `ResearchSubject.individual`. The others (`performer`, `author`, `asserter`, `recorder`,
 *   `participant`, `Coverage.subscriber`, …) say who took part: a record of the child's that her
 *   mother, also a patient there, reported stays hers.
 *
 * Such a Reference names another patient, read the way `references.ts` resolves it within the source
 * (https://hl7.org/fhir/R4/references.html):
 * - a literal reference (`Patient/x`, `[base]/Patient/x`) to a Patient on the same server;
 * - a `Bundle.entry.fullUrl` the source sent, or else `urn:uuid:X` / `urn:oid:X` as the resource of the
 *   server whose id is X (search results carry no fullUrl; Synthea's convention), a Patient;
 * - a conditional reference (`Patient?identifier=…`) matching a Patient of the server, or else judged by
 *   its identifier as a logical reference;
 * - a logical reference (`identifier` only, https://hl7.org/fhir/R4/references.html#logical, or a
 *   reference that cannot be placed, with an identifier): an identifier of another Patient pulled from
 *   the server, or of an identifier system the child is known by at the server with another value;
 *   one the child carries (on her Patient there or one linked as the same person) is hers;
 * - a contained Patient (`#id`, https://hl7.org/fhir/R4/references.html#contained): by its identifiers
 *   as above, else by name and birth date when those clearly differ from the child's at the server.
 *
 * Conservative: only what clearly is another patient is left out. References that cannot be placed
 * (another server, an id the server did not send, several resources sharing the id) and subjects that
 * are not Patients (a Group, a Device) are not judged; a logical subject or a contained Patient that
 * can be neither placed as the child nor clearly as another patient is kept, with a warning
 * (`subject-not-placed`). Reasons never carry another patient's identifier value or name.
 * @see https://hl7.org/fhir/R4/compartmentdefinition-patient.html
 * @see https://hl7.org/fhir/R4/references.html
 * @packageDocumentation
 */
import { buildReferenceIndex, metaVersionIdOf, parseReference, resolveReference, type ReferenceTarget, type SourceReferenceIndex } from './references';
import { isRecord } from '../util/is-record';

/** The child at one server: `Patient/<id>` of the child and of the records linked as the same person. */
export interface ChildAtServer {
  readonly baseUrl: string;
  readonly patientIds: ReadonlySet<string>;
  /**
   * What the server's resources tell about its patients, when they are at hand (normalization);
   * absent in the page scan of a pull, which then judges literal references only.
   */
  readonly server?: ServerPatients;
}

/** The Patients of one server as its pulled resources show them (built by {@link childAtServer}). */
export interface ServerPatients {
  /** `Bundle.entry.fullUrl` → `Type/<id>` of every resource that came under one. */
  readonly typeIdsByUrl: ReadonlyMap<string, string>;
  /**
   * The reference index of every resource of the server (built on first use), each target's `fullUrl`
   * being its `Type/<id>`: references resolve exactly as `references.ts` resolves them.
   */
  readonly references: () => SourceReferenceIndex;
  /** Identifier key (`system|value`, `*|value`) → `Patient/<id>` of the server's Patients carrying it. */
  readonly patientsByIdentifier: ReadonlyMap<string, readonly string[]>;
  /** Identifier keys (`system|value`, `*|value`) of the child at the server. */
  readonly childIdentifiers: ReadonlySet<string>;
  /** Identifier systems the child is known by at the server. */
  readonly childSystems: ReadonlySet<string>;
  /** Name parts and birth dates of the child's Patients at the server. */
  readonly childNames: PersonNames;
}

/** Normalized name parts and birth dates of a person (one or several Patient records). */
export interface PersonNames {
  readonly families: ReadonlySet<string>;
  readonly givens: ReadonlySet<string>;
  readonly birthDates: ReadonlySet<string>;
}

/** A raw resource as normalization sees it. */
interface ScopedResource {
  readonly resourceType: string;
  readonly remoteId: string;
  readonly resource: Readonly<Record<string, unknown>>;
  /** The `Bundle.entry.fullUrl` it came under, if any. */
  readonly sourceFullUrl?: string | undefined;
}

/** Whom a resource is about, as far as the source's data can tell. */
export type PatientScope =
  /** The child, or nothing to judge (no patient subject, a reference that cannot be placed). */
  | { readonly about: 'child' }
  /** Another patient: `Patient/<id>`, or a description without identifying values. */
  | { readonly about: 'other'; readonly patient: string }
  /** A logical subject or contained Patient that cannot be placed as either: kept, warned. */
  | { readonly about: 'unplaced'; readonly reason: string };

const CHILD: PatientScope = { about: 'child' };

/** The elements that say whom a resource is about (see the module comment); others by type. */
const SUBJECT_FIELDS: readonly string[] = ['subject', 'patient'];
const SUBJECT_FIELDS_BY_TYPE: Readonly<Record<string, readonly string[]>> = {
  Coverage: ['beneficiary'],
  ResearchSubject: ['individual'],
};

/** A reference placed on a resource that is not a Patient: not judged. */
const NOT_A_PATIENT = Symbol('not a patient');

/** `Type/<id>` of a reference target whose `fullUrl` is its `Type/<id>` (see {@link ServerPatients.references}). */
function typeIdPatient(typeId: string): string | typeof NOT_A_PATIENT {
  return typeId.startsWith('Patient/') ? typeId : NOT_A_PATIENT;
}

/**
 * Where a reference string points at this server: `Patient/<id>`, {@link NOT_A_PATIENT}, or
 * undefined when it cannot be placed. Resolution follows `references.ts`: a fullUrl the source sent
 * first, then a literal reference (a same-server Patient is named even when it was not pulled), then
 * `urn:` and conditional references among the server's resources.
 */
function placeReference(reference: string, child: ChildAtServer): string | typeof NOT_A_PATIENT | undefined {
  const { server } = child;
  const exact = server?.typeIdsByUrl.get(reference);
  if (exact !== undefined) return typeIdPatient(exact);
  const parsed = parseReference(reference, child.baseUrl);
  switch (parsed.kind) {
    case 'literal':
      return parsed.resourceType === 'Patient' ? `Patient/${parsed.id}` : NOT_A_PATIENT;
    case 'urn':
    case 'conditional': {
      if (!server) return undefined;
      if (parsed.kind === 'conditional' && parsed.resourceType !== 'Patient') return NOT_A_PATIENT;
      const res = resolveReference(server.references(), reference);
      return res.status === 'resolved' ? typeIdPatient(res.fullUrl) : undefined;
    }
    case 'foreign':
      return parsed.resourceType !== undefined && parsed.resourceType !== 'Patient' ? NOT_A_PATIENT : undefined;
    default:
      return undefined;
  }
}

/** `system|value` (or `*|value` without a system) of an Identifier, with its system. */
interface IdentifierKey {
  readonly key: string;
  readonly system?: string;
}

function identifierKeyOf(identifier: unknown): IdentifierKey | undefined {
  if (!isRecord(identifier)) return undefined;
  const { system, value } = identifier;
  if (typeof value !== 'string' || value === '') return undefined;
  return typeof system === 'string' && system !== '' ? { key: `${system}|${value}`, system } : { key: `*|${value}` };
}

/** Both keys an identifier is found by: `system|value` and `*|value` (as `references.ts` tables them). */
function identifierKeysOf(identifier: unknown): string[] {
  if (!isRecord(identifier) || typeof identifier.value !== 'string' || identifier.value === '') return [];
  const system = typeof identifier.system === 'string' ? identifier.system : '';
  return [`${system}|${identifier.value}`, `*|${identifier.value}`];
}

/**
 * Judges identifiers said to be a patient's (a logical reference, a contained Patient's): the child's
 * when she carries one of them; another patient when one is another Patient's of the server, or of a
 * system the child is known by there with another value; otherwise unplaced.
 * @param what - what carries them, for the reasons
 */
function judgeIdentifiers(identifiers: readonly unknown[], child: ChildAtServer, what: string): PatientScope {
  const { server } = child;
  if (!server) return { about: 'unplaced', reason: `${what}: the child's identifiers at the source are not known` };
  const keys: IdentifierKey[] = [];
  for (const identifier of identifiers) {
    const k = identifierKeyOf(identifier);
    if (k) keys.push(k);
  }
  if (keys.length === 0) return { about: 'unplaced', reason: `${what} has no identifier value` };
  if (keys.some((k) => server.childIdentifiers.has(k.key))) return CHILD;
  for (const k of keys) {
    const patients = server.patientsByIdentifier.get(k.key) ?? [];
    if (patients.length > 0 && patients.every((p) => !child.patientIds.has(p))) return { about: 'other', patient: [...patients].sort()[0] ?? '' };
  }
  for (const k of keys) if (k.system !== undefined && server.childSystems.has(k.system)) return { about: 'other', patient: `a patient with another ${k.system} identifier` };
  return { about: 'unplaced', reason: `${what} carries no identifier the child is known by at the source` };
}

/** Lower case, without diacritics, split into words: how name parts are compared. */
function nameWords(part: unknown): string[] {
  if (typeof part !== 'string') return [];
  return part
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .split(/[\s\-'.,]+/u)
    .filter((w) => w !== '');
}

/** Adds the name parts and birth date of a Patient resource to `into`. */
function addNames(patient: Readonly<Record<string, unknown>>, into: { families: Set<string>; givens: Set<string>; birthDates: Set<string> }): void {
  const names = patient['name'];
  if (Array.isArray(names)) {
    for (const name of names) {
      if (!isRecord(name)) continue;
      for (const w of nameWords(name['family'])) into.families.add(w);
      const given = name['given'];
      if (Array.isArray(given)) for (const g of given) for (const w of nameWords(g)) into.givens.add(w);
    }
  }
  const birthDate = patient['birthDate'];
  if (typeof birthDate === 'string' && birthDate !== '') into.birthDates.add(birthDate);
}

function emptyNames(): { families: Set<string>; givens: Set<string>; birthDates: Set<string> } {
  return { families: new Set(), givens: new Set(), birthDates: new Set() };
}

const overlaps = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean => [...a].some((x) => b.has(x));

/**
 * A Patient compared by name and birth date with the child's Patients at the server: `same` when a
 * given and a family name are shared and the birth date does not differ; `other` when no given name is
 * shared, the birth date is not the same, and the family names share nothing or the birth dates differ
 * (a sibling has the family name but not the first name nor the birth date); otherwise undefined.
 * @returns the verdict, with what differs for the reason
 */
function compareNames(patient: Readonly<Record<string, unknown>>, child: PersonNames): { verdict: 'same' } | { verdict: 'other'; differs: string } | undefined {
  const own = emptyNames();
  addNames(patient, own);
  const birth = own.birthDates.size === 0 || child.birthDates.size === 0 ? 'unknown' : overlaps(own.birthDates, child.birthDates) ? 'same' : 'different';
  const hasGivens = own.givens.size > 0 && child.givens.size > 0;
  const hasFamilies = own.families.size > 0 && child.families.size > 0;
  const givenShared = hasGivens && overlaps(own.givens, child.givens);
  const familyShared = hasFamilies && overlaps(own.families, child.families);
  if (givenShared && familyShared) return birth === 'different' ? undefined : { verdict: 'same' };
  if (!hasGivens || givenShared || birth === 'same') return undefined;
  if (hasFamilies && !familyShared) return { verdict: 'other', differs: birth === 'different' ? 'another name and birth date' : 'another name' };
  return birth === 'different' ? { verdict: 'other', differs: 'another first name and birth date' } : undefined;
}

/**
 * A contained Patient (`#id` in the resource's `contained`): by its identifiers, else by name and
 * birth date; conflicting signs (another MRN, the child's name) leave it unplaced.
 */
function judgeContained(id: string, container: Readonly<Record<string, unknown>> | undefined, child: ChildAtServer): PatientScope {
  const contained = container?.['contained'];
  const patient = Array.isArray(contained) ? contained.find((r): r is Record<string, unknown> => isRecord(r) && r['id'] === id) : undefined;
  if (!patient || patient['resourceType'] !== 'Patient') return CHILD; // not a Patient (or dangling, left as sent): not judged
  const what = `contained Patient #${id}`;
  const identifiers = patient['identifier'];
  const byIdentifier = judgeIdentifiers(Array.isArray(identifiers) ? identifiers : [], child, what);
  if (byIdentifier.about === 'child') return CHILD;
  const byName = child.server ? compareNames(patient, child.server.childNames) : undefined;
  if (byIdentifier.about === 'other') {
    return byName?.verdict === 'same'
      ? { about: 'unplaced', reason: `${what} has the child's name but is, by its identifiers, ${byIdentifier.patient}` }
      : { about: 'other', patient: `${what}: ${byIdentifier.patient}` };
  }
  if (byName?.verdict === 'same') return CHILD;
  if (byName?.verdict === 'other') return { about: 'other', patient: `${what}: ${byName.differs} than the child's` };
  return { about: 'unplaced', reason: `${what} cannot be told apart from the child by identifier, name or birth date` };
}

/** Whom one Reference value of a subject element names. */
function judgeSubject(subject: unknown, container: Readonly<Record<string, unknown>> | undefined, child: ChildAtServer): PatientScope {
  if (!isRecord(subject)) return CHILD;
  const { reference, identifier, type } = subject;
  if (typeof type === 'string' && type !== 'Patient') return CHILD;
  if (typeof reference === 'string') {
    if (reference.startsWith('#')) return judgeContained(reference.slice(1), container, child);
    const placed = placeReference(reference, child);
    if (placed === NOT_A_PATIENT) return CHILD;
    if (placed !== undefined) return child.patientIds.has(placed) ? CHILD : { about: 'other', patient: placed };
    // Cannot be placed by the reference (references.ts warns about it): by its identifier, if any.
    const parsed = parseReference(reference, child.baseUrl);
    const logical = identifier ?? (parsed.kind === 'conditional' && child.server ? unresolvedIdentifier(reference, child.server) : undefined);
    if (logical === undefined) return CHILD;
    const judged = judgeIdentifiers([logical], child, 'subject');
    return judged.about === 'unplaced' ? CHILD : judged;
  }
  if (identifier === undefined) return CHILD;
  return judgeIdentifiers([identifier], child, 'logical subject');
}

/** The identifier of a conditional reference that matched no single Patient (as `references.ts` keeps it). */
function unresolvedIdentifier(reference: string, server: ServerPatients): unknown {
  const res = resolveReference(server.references(), reference);
  return res.status === 'unresolved' ? res.identifier : undefined;
}

/**
 * The child's Patient ids at a server, with the Patients the child's own Patient records link to
 * (`Patient.link.other`, any link type: all concern the same person), and what the server's Patients
 * tell about who is who (identifiers, names).
 * @param childIds - `Patient/<id>` of the child at this server (empty: the child is not known there)
 * @param items - the resources pulled from the server (for the pull's page scan: none)
 */
export function childAtServer(baseUrl: string, childIds: ReadonlySet<string>, items: readonly ScopedResource[]): ChildAtServer {
  const ids = new Set(childIds);
  const typeIdsByUrl = new Map<string, string>();
  const patientsByIdentifier = new Map<string, string[]>();
  for (const item of items) {
    const typeId = `${item.resourceType}/${item.remoteId}`;
    if (item.sourceFullUrl) typeIdsByUrl.set(item.sourceFullUrl, typeId);
    if (item.resourceType !== 'Patient') continue;
    const identifiers = item.resource['identifier'];
    if (!Array.isArray(identifiers)) continue;
    for (const identifier of identifiers) {
      for (const key of identifierKeysOf(identifier)) {
        const list = patientsByIdentifier.get(key);
        if (!list) patientsByIdentifier.set(key, [typeId]);
        else if (!list.includes(typeId)) list.push(typeId);
      }
    }
  }
  let index: SourceReferenceIndex | undefined;
  const references = (): SourceReferenceIndex => {
    index ??= buildReferenceIndex(
      baseUrl,
      items.map((i): ReferenceTarget => ({ resourceType: i.resourceType, remoteId: i.remoteId, fullUrl: `${i.resourceType}/${i.remoteId}`, resource: i.resource, versionId: metaVersionIdOf(i.resource), sourceFullUrl: i.sourceFullUrl })),
    );
    return index;
  };
  const childIdentifiers = new Set<string>();
  const childSystems = new Set<string>();
  const childNames = emptyNames();
  const server: ServerPatients = { typeIdsByUrl, references, patientsByIdentifier, childIdentifiers, childSystems, childNames };
  const lookup: ChildAtServer = { baseUrl, patientIds: childIds, server };
  for (const item of items) {
    if (item.resourceType !== 'Patient' || !childIds.has(`Patient/${item.remoteId}`)) continue;
    const links = item.resource['link'];
    if (!Array.isArray(links)) continue;
    for (const link of links) {
      const other = isRecord(link) ? link['other'] : undefined;
      if (!isRecord(other)) continue;
      const placed = typeof other['reference'] === 'string' ? placeReference(other['reference'], lookup) : undefined;
      if (typeof placed === 'string') ids.add(placed);
      else if (other['reference'] === undefined && (other['type'] === undefined || other['type'] === 'Patient')) {
        // A link by identifier only (https://hl7.org/fhir/R4/references.html#logical): the same person's identifier.
        for (const key of identifierKeysOf(other['identifier'])) childIdentifiers.add(key);
        const k = identifierKeyOf(other['identifier']);
        if (k?.system !== undefined) childSystems.add(k.system);
      }
    }
  }
  // The child's identifiers and names: her Patients at the server and the ones linked as the same person.
  for (const item of items) {
    if (item.resourceType !== 'Patient' || !ids.has(`Patient/${item.remoteId}`)) continue;
    const identifiers = item.resource['identifier'];
    if (Array.isArray(identifiers)) {
      for (const identifier of identifiers) {
        for (const key of identifierKeysOf(identifier)) childIdentifiers.add(key);
        const k = identifierKeyOf(identifier);
        if (k?.system !== undefined) childSystems.add(k.system);
      }
    }
    addNames(item.resource, childNames);
  }
  return { baseUrl, patientIds: ids, server };
}

/**
 * Whom a resource is about: the child (or nothing to judge, or the child is not known at the server),
 * another patient, or a subject that cannot be placed (kept, to be warned about).
 */
export function patientScopeOf(item: ScopedResource, child: ChildAtServer): PatientScope {
  if (child.patientIds.size === 0) return CHILD;
  if (item.resourceType === 'Patient') {
    const self = `Patient/${item.remoteId}`;
    return child.patientIds.has(self) ? CHILD : { about: 'other', patient: self };
  }
  let unplaced: PatientScope | undefined;
  for (const field of SUBJECT_FIELDS_BY_TYPE[item.resourceType] ?? SUBJECT_FIELDS) {
    const value = item.resource[field];
    for (const subject of Array.isArray(value) ? value : [value]) {
      const scope = judgeSubject(subject, item.resource, child);
      if (scope.about === 'other') return scope;
      if (scope.about === 'unplaced') unplaced ??= scope;
    }
  }
  return unplaced ?? CHILD;
}

/**
 * `Patient/<id>` (or a description) of the other patient a resource is about, or undefined when it is
 * the child's (or cannot be judged, or the child is not known at the server).
 */
export function otherPatientOf(item: ScopedResource, child: ChildAtServer): string | undefined {
  const scope = patientScopeOf(item, child);
  return scope.about === 'other' ? scope.patient : undefined;
}

/**
 * The same judgement from the resource's type, id and its `subject`/`patient` Reference values
 * (as the page scan reads them, without the rest of the resource).
 */
export function otherPatientAmong(resourceType: string, remoteId: string, subjects: readonly unknown[], child: ChildAtServer): string | undefined {
  if (child.patientIds.size === 0) return undefined;
  if (resourceType === 'Patient') {
    const self = `Patient/${remoteId}`;
    return child.patientIds.has(self) ? undefined : self;
  }
  for (const subject of subjects) {
    const scope = judgeSubject(subject, undefined, child);
    if (scope.about === 'other') return scope.patient;
  }
  return undefined;
}
