/**
 * The de-duplication engine: runs rules, picks survivors, redirects references, merges.
 *
 * 1. Each enabled rule clusters the resources of its type by blocking keys (no O(n²)).
 *    De-duplication is across sources: a cluster never holds two records of one source
 *    (`NormalizedResource.sourceId`), not even transitively or when joining the clusters of
 *    two rules of one type ({@link clusterByKeys}): two records of one source are two facts
 *    of that source (an active and a stopped order), not copies.
 * 2. Each cluster keeps one survivor ({@link chooseSurvivor}); the others are merged away
 *    and their fullUrls redirected to the survivor's.
 * 3. References in every resource are rewritten (copy-on-write) so nothing dangles.
 * 4. Each survivor gets what its duplicates add ({@link mergeResources}); one
 *    {@link MergeRecord} per cluster records the rule and the raw keys folded in.
 * Inputs are never mutated: raw data stays as received, and switching a rule off and
 * re-assembling undoes its merges.
 * @packageDocumentation
 */
import type { FhirResource } from 'fhir/r4';
import type { DedupeResult, MergeRecord, NormalizedResource } from '../types';
import { clusterByKeys } from './cluster';
import { asJson, asResource } from './json';
import { chooseSurvivor, mergeResources } from './merge';
import { rewriteReferences } from './rewrite';
import type { DedupeContext, DedupeRule, RuleDedupeResult } from './rule';

interface Cluster {
  readonly members: number[];
  readonly rules: Set<DedupeRule>;
}

/** Whether the resources at `indexes` (repeats allowed) come from distinct sources. */
function onePerSource(resources: readonly NormalizedResource[], indexes: readonly number[]): boolean {
  const seen = new Map<string, number>();
  for (const i of indexes) {
    const source = (resources[i] as NormalizedResource).sourceId;
    const other = seen.get(source);
    if (other !== undefined && other !== i) return false;
    seen.set(source, i);
  }
  return true;
}

/**
 * Clusters of global indexes found by `rules`, overlapping clusters (several rules of one type)
 * joined — unless the join would hold two records of one source: then the later rule's group
 * is left out (de-duplication is across sources).
 */
function findClusters(resources: readonly NormalizedResource[], rules: readonly DedupeRule[]): Cluster[] {
  const byType = new Map<string, number[]>();
  resources.forEach((r, i) => {
    const list = byType.get(r.resource.resourceType);
    if (list) list.push(i);
    else byType.set(r.resource.resourceType, [i]);
  });
  const context: DedupeContext = {
    ofType: (type) => (byType.get(type) ?? []).map((i) => resources[i] as NormalizedResource),
  };
  const clusterOf = new Map<number, Cluster>();
  const clusters: Cluster[] = [];
  for (const rule of rules) {
    const indexes = byType.get(rule.resourceType);
    if (!indexes || indexes.length < 2) continue;
    const subset = indexes.map((i) => resources[i] as NormalizedResource);
    for (const group of clusterByKeys(subset.length, rule.blocking(subset, context), (i) => (subset[i] as NormalizedResource).sourceId)) {
      const global = group.map((g) => indexes[g] as number);
      const existing = [...new Set(global.map((i) => clusterOf.get(i)).filter((c): c is Cluster => c !== undefined))];
      if (!onePerSource(resources, [...global, ...existing.flatMap((c) => c.members)])) continue;
      const target: Cluster = existing[0] ?? { members: [], rules: new Set() };
      if (existing.length === 0) clusters.push(target);
      for (const other of existing.slice(1)) {
        for (const m of other.members) target.members.push(m);
        for (const r of other.rules) target.rules.add(r);
        clusters.splice(clusters.indexOf(other), 1);
      }
      target.rules.add(rule);
      for (const i of global) if (!target.members.includes(i)) target.members.push(i);
      for (const i of target.members) clusterOf.set(i, target);
    }
  }
  return clusters;
}

/** De-duplicates `resources` with `rules` (all assumed enabled). Pure. */
export function runRules(resources: readonly NormalizedResource[], rules: readonly DedupeRule[]): DedupeResult {
  for (const rule of rules) {
    if (rule.resourceType === 'Patient') throw new Error(`Rule ${rule.name}: Patients are never merged (the case Patient links to each source's Patient)`);
    // rewrite.ts does not walk `identifier` (Identifier.assigner → Organization): that holds while Organizations are not merged.
    if (rule.resourceType === 'Organization') throw new Error(`Rule ${rule.name}: Organizations are not merged (see rewrite.ts NO_REFERENCES)`);
  }
  const clusters = findClusters(resources, rules);
  if (clusters.length === 0) return { resources: [...resources], merges: [] };

  const redirects = new Map<string, string>();
  const mergedAway = new Set<number>();
  const plans: { survivor: number; duplicates: number[]; policy: DedupeRule; rule: string }[] = [];
  for (const cluster of clusters) {
    const ordered = [...cluster.members].sort((a, b) => {
      const fa = resources[a]?.fullUrl ?? '';
      const fb = resources[b]?.fullUrl ?? '';
      return fa < fb ? -1 : fa > fb ? 1 : 0;
    });
    const policy = [...cluster.rules][0] as DedupeRule;
    const s = ordered[chooseSurvivor(ordered.map((i) => resources[i] as NormalizedResource), policy)] as number;
    const duplicates = ordered.filter((i) => i !== s);
    const survivorUrl = (resources[s] as NormalizedResource).fullUrl;
    for (const d of duplicates) {
      redirects.set((resources[d] as NormalizedResource).fullUrl, survivorUrl);
      mergedAway.add(d);
    }
    plans.push({ survivor: s, duplicates, policy, rule: [...cluster.rules].map((r) => r.name).sort().join('+') });
  }

  const rewritten: FhirResource[] = resources.map((r) => asResource(rewriteReferences(asJson(r.resource), redirects)));
  const mergedResource = new Map<number, FhirResource>();
  const merges: MergeRecord[] = [];
  for (const plan of plans) {
    const survivor = resources[plan.survivor] as NormalizedResource;
    mergedResource.set(
      plan.survivor,
      mergeResources(rewritten[plan.survivor] as FhirResource, plan.duplicates.map((d) => rewritten[d] as FhirResource), plan.policy),
    );
    merges.push({
      survivor: survivor.fullUrl,
      survivorKey: survivor.key,
      mergedKeys: plan.duplicates.map((d) => (resources[d] as NormalizedResource).key),
      rule: plan.rule,
    });
  }
  merges.sort((a, b) => (a.survivor < b.survivor ? -1 : a.survivor > b.survivor ? 1 : 0));

  const out: NormalizedResource[] = [];
  resources.forEach((r, i) => {
    if (mergedAway.has(i)) return;
    const resource = mergedResource.get(i) ?? rewritten[i] ?? r.resource;
    out.push(resource === r.resource ? r : { ...r, resource });
  });
  return { resources: out, merges };
}

/**
 * The per-type function of a rule module: `(resources) → { survivors, merges }` with only
 * that rule (resources of other types pass through, references redirected).
 */
export function dedupeWith(rule: DedupeRule): (resources: readonly NormalizedResource[]) => RuleDedupeResult {
  return (resources) => {
    const r = runRules(resources, [rule]);
    return { survivors: r.resources, merges: r.merges };
  };
}
