/**
 * Records one source withdrew and another still holds. A record marked `entered-in-error` (its
 * `status`, or for a Condition or AllergyIntolerance its `verificationStatus`) is never merged and
 * stays out of the Composition's sections; but the same result or order at another source — a copy
 * the other care team received before the first withdrew it — would be listed as valid, nothing
 * telling the specialist it was withdrawn. R4: entered-in-error means the record "has been withdrawn
 * following previous final release" and should not have existed.
 *
 * Approach: for each rule, the withdrawn records of its type are compared, by the rule's own blocking
 * (its keys, pair test and cluster state), with the standing records of the other sources, each
 * withdrawn record restated with the standing record's status (one pass per status the standing
 * records state): what the rule would merge but for the withdrawal is the same fact. The standing
 * record is kept as it is and tagged ({@link WITHDRAWN_ELSEWHERE}); its Composition line says so.
 * A source's own correction (the withdrawn record and the standing one from the same source) is not
 * flagged.
 * @see https://hl7.org/fhir/R4/valueset-observation-status.html
 * @see https://hl7.org/fhir/R4/valueset-condition-ver-status.html
 * @packageDocumentation
 */
import type { Coding, FhirResource } from 'fhir/r4';
import type { NormalizedResource } from '../types';
import { statesConflict } from './cluster';
import type { DedupeContext, DedupeRule } from './rule';

/** Code system of the cautions the assembly adds to a record (a `meta.tag`). */
export const RECORD_CAUTION_SYSTEM = 'https://second-opinion.example.org/fhir/CodeSystem/record-caution';

/** The tag of a record another source withdrew as entered in error. */
export const WITHDRAWN_ELSEWHERE: Readonly<Coding> = {
  system: RECORD_CAUTION_SYSTEM,
  code: 'withdrawn-at-another-source',
  display: 'Entered in error at another source',
};

type Json = Record<string, unknown>;

const ENTERED_IN_ERROR = 'entered-in-error';

/** Where a record says it was withdrawn: its `status`, or its `verificationStatus` coding; undefined when it does not. */
function withdrawalOf(resource: FhirResource): 'status' | 'verificationStatus' | undefined {
  const r = resource as unknown as Json;
  if (r['status'] === ENTERED_IN_ERROR) return 'status';
  const verification = r['verificationStatus'] as { coding?: unknown } | undefined;
  const codings = Array.isArray(verification?.coding) ? (verification.coding as unknown[]) : [];
  return codings.some((c) => typeof c === 'object' && c !== null && (c as Coding).code === ENTERED_IN_ERROR) ? 'verificationStatus' : undefined;
}

/** What a standing record states where a withdrawn one says "withdrawn": its status and verification status. */
function statementOf(resource: FhirResource): string {
  const r = resource as unknown as Json;
  return JSON.stringify([r['status'] ?? null, r['verificationStatus'] ?? null]);
}

/** The withdrawn record as if it stated what `like` states (its status or verification status). */
function restated(withdrawn: NormalizedResource, like: FhirResource): NormalizedResource {
  const field = withdrawalOf(withdrawn.resource) ?? 'status';
  const copy: Json = { ...(withdrawn.resource as unknown as Json) };
  const value = (like as unknown as Json)[field];
  if (value === undefined) delete copy[field];
  else copy[field] = value;
  return { ...withdrawn, resource: copy as unknown as FhirResource };
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/**
 * Keys of the standing records of one rule's type that the rule would merge, but for the withdrawal,
 * with a withdrawn record of another source (added to `out`).
 */
function standingOfRule(rule: DedupeRule, items: readonly NormalizedResource[], context: DedupeContext, out: Set<string>): void {
  const withdrawn = items.filter((r) => withdrawalOf(r.resource) !== undefined);
  if (withdrawn.length === 0) return;
  const standing = items.filter((r) => withdrawalOf(r.resource) === undefined);
  for (const like of groupBy(standing, (r) => statementOf(r.resource)).values()) {
    const subset = [...like, ...withdrawn.map((w) => restated(w, (like[0] as NormalizedResource).resource))];
    const spec = rule.blocking(subset, context);
    const byKey = new Map<string, number[]>();
    like.forEach((_, i) => {
      for (const k of spec.keys(i)) {
        const list = byKey.get(k);
        if (list) list.push(i);
        else byKey.set(k, [i]);
      }
    });
    for (let j = like.length; j < subset.length; j++) {
      const w = subset[j] as NormalizedResource;
      const matched = new Set<number>();
      for (const k of spec.keys(j)) for (const i of byKey.get(k) ?? []) matched.add(i);
      for (const i of matched) {
        const s = subset[i] as NormalizedResource;
        if (s.sourceId === w.sourceId) continue;
        if (spec.same && !spec.same(i, j)) continue;
        if (spec.state && statesConflict(spec.state(i), spec.state(j))) continue;
        out.add(s.key);
      }
    }
  }
}

/**
 * The keys of every standing record that another source's withdrawn record states (see the module
 * comment), sorted. Pure. One pass over `resources` where none is withdrawn (every assembly makes it):
 * the types are grouped, and the rules run, only for the types that hold a withdrawn record.
 */
export function findWithdrawnElsewhere(resources: readonly NormalizedResource[], rules: readonly DedupeRule[]): string[] {
  const withdrawnTypes = new Set<string>();
  for (const r of resources) if (withdrawalOf(r.resource) !== undefined) withdrawnTypes.add(r.resource.resourceType);
  if (withdrawnTypes.size === 0) return [];
  const byType = groupBy(resources, (r) => r.resource.resourceType);
  const context: DedupeContext = { ofType: (type) => byType.get(type) ?? [] };
  const out = new Set<string>();
  for (const rule of rules) if (withdrawnTypes.has(rule.resourceType)) standingOfRule(rule, byType.get(rule.resourceType) ?? [], context, out);
  return [...out].sort();
}

/** Whether a record carries the {@link WITHDRAWN_ELSEWHERE} tag. */
export function isWithdrawnElsewhere(resource: FhirResource): boolean {
  return (resource.meta?.tag ?? []).some((t) => t.system === RECORD_CAUTION_SYSTEM && t.code === WITHDRAWN_ELSEWHERE.code);
}

/** The resource with the {@link WITHDRAWN_ELSEWHERE} tag added (a copy; the input is not changed). */
export function withWithdrawnTag(resource: FhirResource): FhirResource {
  if (isWithdrawnElsewhere(resource)) return resource;
  const meta = resource.meta ?? {};
  return { ...resource, meta: { ...meta, tag: [...(meta.tag ?? []), { ...WITHDRAWN_ELSEWHERE }] } } as FhirResource;
}
