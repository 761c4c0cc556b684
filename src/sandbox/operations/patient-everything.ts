/**
 * `Patient/{id}/$everything`: the patient, every resource in the patient's compartment, and the
 * resources those reference (practitioners, organizations, medications, binaries of attachments),
 * one level deep, as the operation says the server SHOULD return.
 *
 * Parameters: `_since` (only resources whose `meta.lastUpdated` is at or after the instant),
 * `_type` (only these types), `_count` (page size; paging is done by the caller on the result).
 *
 * @see https://hl7.org/fhir/R4/patient-operation-everything.html
 */
import { Operator } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import type { SandboxRepository } from '../repository/sandbox-repository';
import { patientCompartment } from './patient-compartment';
import type { ReferenceCache } from './resource-references';

export interface EverythingOptions {
  /** Epoch ms; resources last updated before are left out. */
  readonly sinceMs?: number;
  /** Resource types to return; all when undefined. */
  readonly types?: ReadonlySet<string>;
  /** Whether the caller may read a type (SMART scopes); everything else is left out. */
  readonly canRead: (resourceType: string) => boolean;
}

/** The resources of `$everything`, in order: Patient, compartment by type, then referenced. Undefined if no such Patient. */
export function patientEverything(
  repo: SandboxRepository,
  references: ReferenceCache,
  patientId: string,
  options: EverythingOptions
): Resource[] | undefined {
  const patient = repo.getStored('Patient', patientId);
  if (!patient) {
    return undefined;
  }
  const patientReference = `Patient/${patientId}`;
  const members = new Map<string, Resource>([[patientReference, patient]]);
  const presentTypes = new Set(repo.storedTypes());
  for (const { resourceType, params } of patientCompartment()) {
    if (!presentTypes.has(resourceType)) {
      continue;
    }
    for (const code of params) {
      const matches = repo.searchEngine.execute({
        resourceType: resourceType as Resource['resourceType'],
        filters: [{ code, operator: Operator.EQUALS, value: patientReference }],
      });
      for (const resource of matches) {
        members.set(`${resource.resourceType}/${resource.id}`, resource);
      }
    }
  }
  const referenced = new Map<string, Resource>();
  for (const member of members.values()) {
    for (const reference of references.referencesOf(member)) {
      if (members.has(reference) || referenced.has(reference)) {
        continue;
      }
      const [type, id] = reference.split('/');
      const target = repo.getStored(type, id);
      if (target) {
        referenced.set(reference, target);
      }
    }
  }
  return [...members.values(), ...referenced.values()].filter((resource) => keep(resource, options));
}

function keep(resource: Resource, options: EverythingOptions): boolean {
  if (options.types && !options.types.has(resource.resourceType)) {
    return false;
  }
  if (!options.canRead(resource.resourceType)) {
    return false;
  }
  if (options.sinceMs !== undefined) {
    const lastUpdated = Date.parse(resource.meta?.lastUpdated ?? '');
    return Number.isFinite(lastUpdated) && lastUpdated >= options.sinceMs;
  }
  return true;
}
