/**
 * Encounter duplicates — rule `encounter:identifier-or-period`.
 *
 * Approach: a visit known at two sources shares a business identifier (system|value), or
 * else has exactly the same period (start AND end instants) and the same class or a
 * shared type coding — and no conflicting identifier (same system, different value: two
 * visits of one source). Blocking keys: each identifier, and (start, end, class) /
 * (start, end, type coding). Without both period ends and no identifier: never merged.
 * `entered-in-error`: never merged.
 * @see https://hl7.org/fhir/R4/encounter.html
 * @packageDocumentation
 */
import type { Encounter } from 'fhir/r4';
import { signatureBlocking } from './cluster';
import { dedupeWith } from './engine';
import { codeKeys, codingsOf, instantKey } from './keys';
import type { DedupeRule } from './rule';

interface Signature {
  /** `system|value` of each identifier. */
  readonly identifiers: readonly string[];
  /** [system, value] of each identifier. */
  readonly pairs: readonly (readonly [string, string])[];
  readonly keys: readonly string[];
}

const NONE: Signature = { identifiers: [], pairs: [], keys: [] };

/**
 * `c:system|code` of the Encounter's class; none when the class (1..1 in R4, but a resource built in
 * code skips the structure checks) is absent, malformed or without system and code.
 * @see https://hl7.org/fhir/R4/encounter-definitions.html#Encounter.class
 */
function classKeys(e: Encounter): string[] {
  const c: unknown = e.class;
  if (typeof c !== 'object' || c === null) return [];
  const { system, code } = c as { system?: unknown; code?: unknown };
  return typeof system === 'string' && system !== '' && typeof code === 'string' && code !== '' ? [`c:${system}|${code}`] : [];
}

function signature(e: Encounter): Signature {
  if (e.status === 'entered-in-error') return NONE;
  const pairs: [string, string][] = [];
  for (const i of e.identifier ?? []) if (i.system && i.value) pairs.push([i.system, i.value]);
  const identifiers = pairs.map(([s, v]) => `${s}|${v}`);
  const keys = identifiers.map((k) => `i:${k}`);
  const start = instantKey(e.period?.start);
  const end = instantKey(e.period?.end);
  if (start !== undefined && end !== undefined) {
    const classKey = classKeys(e);
    const typeKeys = codeKeys(codingsOf(...(e.type ?? []))).map((k) => `t:${k}`);
    for (const k of [...classKey, ...new Set(typeKeys)]) keys.push(`p:${start}|${end}#${k}`);
  }
  return { identifiers, pairs, keys };
}

function same(a: Signature, b: Signature): boolean {
  if (a.identifiers.some((k) => b.identifiers.includes(k))) return true;
  // A conflicting identifier (same system, other value): two visits of one source.
  if (a.pairs.some(([system, value]) => b.pairs.some(([s, v]) => s === system && v !== value))) return false;
  return a.keys.some((k) => k.startsWith('p:') && b.keys.includes(k));
}

/** The rule. */
export const encounterRule: DedupeRule = {
  name: 'encounter:identifier-or-period',
  resourceType: 'Encounter',
  approach: 'shared identifier, else same period (start and end) + same class or type',
  blocking(resources) {
    return signatureBlocking(resources.map((r) => signature(r.resource as Encounter)), same);
  },
};

/** De-duplicates Encounters only. */
export const dedupeEncounters = dedupeWith(encounterRule);
