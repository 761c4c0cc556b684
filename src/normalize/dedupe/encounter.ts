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
import { dedupeWith } from './engine';
import { codeKeys, codingsOf, identifierKeys, instantKey } from './keys';
import type { DedupeRule } from './rule';

interface Signature {
  readonly identifiers: ReadonlySet<string>;
  readonly systems: ReadonlyMap<string, string>;
  readonly keys: string[];
}

function signature(e: Encounter): Signature {
  if (e.status === 'entered-in-error') return { identifiers: new Set(), systems: new Map(), keys: [] };
  const ids = identifierKeys(e.identifier);
  const systems = new Map<string, string>();
  for (const i of e.identifier ?? []) if (i.system && i.value) systems.set(i.system, i.value);
  const keys = ids.map((k) => `i:${k}`);
  const start = instantKey(e.period?.start);
  const end = instantKey(e.period?.end);
  if (start !== undefined && end !== undefined) {
    const classKey = e.class.system && e.class.code ? [`c:${e.class.system}|${e.class.code}`] : [];
    const typeKeys = codeKeys(codingsOf(...(e.type ?? []))).map((k) => `t:${k}`);
    for (const k of [...classKey, ...new Set(typeKeys)]) keys.push(`p:${start}|${end}#${k}`);
  }
  return { identifiers: new Set(ids), systems, keys };
}

function same(a: Signature, b: Signature): boolean {
  for (const k of a.identifiers) if (b.identifiers.has(k)) return true;
  for (const [system, value] of a.systems) {
    const other = b.systems.get(system);
    if (other !== undefined && other !== value) return false;
  }
  return a.keys.some((k) => k.startsWith('p:') && b.keys.includes(k));
}

/** The rule. */
export const encounterRule: DedupeRule = {
  name: 'encounter:identifier-or-period',
  resourceType: 'Encounter',
  approach: 'shared identifier, else same period (start and end) + same class or type',
  blocking(resources) {
    const sigs = resources.map((r) => signature(r.resource as Encounter));
    return {
      keys: (i) => sigs[i]?.keys ?? [],
      same: (a, b) => {
        const sa = sigs[a];
        const sb = sigs[b];
        return sa !== undefined && sb !== undefined && same(sa, sb);
      },
    };
  },
};

/** De-duplicates Encounters only. */
export const dedupeEncounters = dedupeWith(encounterRule);
