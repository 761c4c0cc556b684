/**
 * Shared helpers of the normalization tests: raw inputs from a Bundle, the Medplum validator, and
 * the invariants every normalization result must satisfy.
 */
import { createHash } from 'node:crypto';
import type { Bundle } from 'fhir/r4';
import { collectReferences } from '../../src/normalize/references';
import type { NormalizeResult, Origin, RawInput, SourceInfo } from '../../src/normalize/types';

/** When the fixture and test bundles were "fetched". */
export const FETCHED_AT = '2026-10-31T23:00:00Z';

/** A source of a case. */
export function sourceInfo(sourceId: string, baseUrl: string, options: { name?: string; origin?: Origin; remotePatientId?: string } = {}): SourceInfo {
  return {
    sourceId,
    baseUrl,
    name: options.name ?? sourceId,
    origin: options.origin ?? 'local-ehr',
    ...(options.remotePatientId ? { remotePatientId: options.remotePatientId } : {}),
    pullIds: [`pull-${sourceId}`],
    lastFetchedAt: FETCHED_AT,
  };
}

/** The entries of a Bundle as raw inputs of one source, as the raw store would hold them. */
export function rawFromBundle(bundle: Bundle, sourceId: string, fetchedAt = FETCHED_AT): RawInput[] {
  const out: RawInput[] = [];
  for (const entry of bundle.entry ?? []) {
    const resource = entry.resource as unknown as Record<string, unknown> | undefined;
    if (!resource) continue;
    const json = JSON.stringify(resource);
    const meta = resource['meta'] as { versionId?: string } | undefined;
    out.push({
      sourceId,
      resourceType: String(resource['resourceType']),
      remoteId: typeof resource['id'] === 'string' ? resource['id'] : '',
      versionId: meta?.versionId ?? '',
      fetchedAt,
      sha256: createHash('sha256').update(json).digest('hex'),
      resource: JSON.parse(json) as Record<string, unknown>,
      ...(entry.fullUrl ? { fullUrl: entry.fullUrl } : {}),
    });
  }
  return out;
}

export { validationErrors } from '../support/fhir-validation';

/** References (not contained) of the output that resolve to no fullUrl of the output. */
export function danglingReferences(result: NormalizeResult): string[] {
  const fullUrls = new Set(result.resources.map((r) => r.fullUrl));
  const out: string[] = [];
  for (const r of result.resources) {
    for (const ref of collectReferences(r.resource)) if (!ref.startsWith('#') && !fullUrls.has(ref)) out.push(`${r.key}: ${ref}`);
  }
  return out;
}

/** Every raw input is exactly one output resource or one left-out (by key and count). */
export function accountingProblems(raw: readonly RawInput[], result: NormalizeResult): string[] {
  const problems: string[] = [];
  const imported = result.resources.filter((r) => r.sourceId !== 'case');
  if (imported.length + result.leftOut.length !== raw.length) {
    problems.push(`${raw.length} raw inputs, ${imported.length} resources + ${result.leftOut.length} left out`);
  }
  const counts = new Map<string, number>();
  for (const r of raw) counts.set(r.sourceId + '|' + r.resourceType + '|' + r.remoteId, (counts.get(r.sourceId + '|' + r.resourceType + '|' + r.remoteId) ?? 0) + 1);
  for (const r of imported) counts.set(r.key, (counts.get(r.key) ?? 0) - 1);
  for (const l of result.leftOut) counts.set(l.key, (counts.get(l.key) ?? 0) - 1);
  for (const [key, n] of counts) if (n !== 0) problems.push(`${key}: ${n > 0 ? 'unaccounted' : 'accounted twice'}`);
  return problems;
}

/** Non-contained references of a list of resources. */
export function countReferences(resources: readonly unknown[]): number {
  let n = 0;
  for (const r of resources) for (const ref of collectReferences(r)) if (!ref.startsWith('#')) n++;
  return n;
}
