/**
 * Encounter duplicates — rule `encounter:identifier-or-period`.
 *
 * Approach: a visit known at two sources shares a business identifier (system|value), or
 * else has exactly the same period (start AND end instants) and the same class or a
 * shared type coding — and no conflicting identifier (same system, different value: two
 * visits of one source). Blocking keys: each identifier, and (start, end, class) /
 * (start, end, type coding). Without both period ends and no identifier: never merged.
 * `entered-in-error`: never merged.
 * A visit is given by someone: two records naming different service providers (cardiology at
 * hospital A, the family clinic B, same day) are two visits, whatever else they share
 * (identifier included), and never joined through a record naming none — the provider
 * ({@link providerState}) is the cluster state; merged, B's provider and location would be
 * dropped and everything pointing at B's visit would point at A's.
 * A date-only period (`2026-03-01..2026-03-01`) is a day, not instants: a child sees several
 * clinics in one day. Such a period identifies a visit only together with the same class, a
 * shared type coding AND the same service provider, all stated by both (one key holding the
 * four); without them only an identifier can match it. (Simplest safe rule: the one thing a
 * day cannot tell apart, two visits of one kind at one place, is rare and then shown twice at
 * worst; visits at different places or of different kinds are never folded together.)
 * @see https://hl7.org/fhir/R4/encounter.html
 * @see https://hl7.org/fhir/R4/encounter-definitions.html#Encounter.serviceProvider
 * @packageDocumentation
 */
import type { Encounter, Organization } from 'fhir/r4';
import { signatureBlocking } from './cluster';
import { dedupeWith } from './engine';
import { codeKeys, codingsOf, instantKey, isElement } from './keys';
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

/** A name compared across sources: trimmed, whitespace collapsed, lower case; undefined when blank. */
function nameKey(name: unknown): string | undefined {
  if (typeof name !== 'string') return undefined;
  const n = name.trim().replace(/\s+/g, ' ').toLowerCase();
  return n === '' ? undefined : n;
}

/**
 * Who gave the visit (`Encounter.serviceProvider`), as a cluster-state value: by name — the
 * reference's `display`, else the `name` of the Organization it resolves to in the input — so
 * the same clinic at two sources (each with its own Organization resource) is one provider;
 * else by the reference's identifier (`system|value`); else by the reference itself (a
 * source's local Organization: another source's never equals it, so both stay). Undefined when
 * no provider is named (absent or malformed): such a record joins either, but never two.
 * Why a state: each source has its own Organization, so references alone cannot say "same";
 * a name or identifier can, and a differing one is enough to keep two visits apart.
 * @see https://hl7.org/fhir/R4/encounter-definitions.html#Encounter.serviceProvider
 */
export function providerState(e: Encounter, organizations: ReadonlyMap<string, Organization>): string | undefined {
  const sp: unknown = e.serviceProvider;
  if (!isElement(sp)) return undefined;
  const { reference, display, identifier } = sp as { reference?: unknown; display?: unknown; identifier?: unknown };
  const org = typeof reference === 'string' ? organizations.get(reference) : undefined;
  const name = nameKey(display) ?? nameKey(org?.name);
  if (name !== undefined) return `name:${name}`;
  if (isElement(identifier)) {
    const { system, value } = identifier as { system?: unknown; value?: unknown };
    if (typeof system === 'string' && system !== '' && typeof value === 'string' && value !== '') return `id:${system}|${value}`;
  }
  return typeof reference === 'string' && reference !== '' ? `ref:${reference}` : undefined;
}

function signature(e: Encounter, provider: string | undefined): Signature {
  if (e.status === 'entered-in-error') return NONE;
  const pairs: [string, string][] = [];
  for (const i of e.identifier ?? []) if (i.system && i.value) pairs.push([i.system, i.value]);
  const identifiers = pairs.map(([s, v]) => `${s}|${v}`);
  const keys = identifiers.map((k) => `i:${k}`);
  const start = instantKey(e.period?.start);
  const end = instantKey(e.period?.end);
  if (start !== undefined && end !== undefined) {
    const classKey = classKeys(e);
    const typeKeys = [...new Set(codeKeys(codingsOf(...(e.type ?? []))).map((k) => `t:${k}`))];
    if (!start.startsWith('d:') && !end.startsWith('d:')) {
      for (const k of [...classKey, ...typeKeys]) keys.push(`p:${start}|${end}#${k}`);
    } else if (provider !== undefined) {
      // A day identifies a visit only with its class, kind and provider together.
      for (const c of classKey) for (const t of typeKeys) keys.push(`p:${start}|${end}#${c}#${t}#${provider}`);
    }
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
  approach: 'shared identifier, else same period (start and end instants) + same class or type (a date-only period: class, type and provider) + no other service provider',
  blocking(resources, context) {
    const organizations = new Map<string, Organization>();
    for (const r of context.ofType('Organization')) if (r.resource.resourceType === 'Organization') organizations.set(r.fullUrl, r.resource);
    const providers = resources.map((r) => providerState(r.resource as Encounter, organizations));
    const spec = signatureBlocking(resources.map((r, i) => signature(r.resource as Encounter, providers[i])), same);
    return { ...spec, state: (i) => providers[i] };
  },
};

/** De-duplicates Encounters only. */
export const dedupeEncounters = dedupeWith(encounterRule);
