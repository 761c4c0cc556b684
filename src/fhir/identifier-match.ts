/**
 * Search hits are checked against what was searched for. A server that does not support a search
 * parameter ignores it and answers as if it had not been sent — every Patient, every
 * DiagnosticReport — unless the client asks for strict handling
 * (https://hl7.org/fhir/R4/search.html#errors): a hit of an identifier search is taken only when
 * the resource itself carries that identifier. Otherwise a lenient server's unrelated Patient could
 * be taken for the child, or an unrelated report for ours ("already there", so never written).
 * @packageDocumentation
 */
import type { Bundle, FhirResource } from 'fhir/r4';

/** An identifier as `system|value` (FHIR token search syntax) split in two. */
export interface IdentifierToken {
  readonly system: string;
  readonly value: string;
}

/** `system|value` → its parts (the value may itself hold `|`). */
export function parseIdentifierToken(token: string): IdentifierToken {
  const bar = token.indexOf('|');
  return bar < 0 ? { system: '', value: token } : { system: token.slice(0, bar), value: token.slice(bar + 1) };
}

function sameIdentifier(candidate: unknown, wanted: IdentifierToken): boolean {
  if (typeof candidate !== 'object' || candidate === null) return false;
  const { system, value } = candidate as { system?: unknown; value?: unknown };
  return value === wanted.value && (wanted.system === '' || system === wanted.system);
}

/**
 * Whether `resource` carries the identifier (in `identifier`, or a DocumentReference's
 * `masterIdentifier`): system and value compared exactly (a system-less token matches any system).
 */
export function carriesIdentifier(resource: object, wanted: IdentifierToken): boolean {
  const { identifier, masterIdentifier } = resource as { identifier?: unknown; masterIdentifier?: unknown };
  if (Array.isArray(identifier) && identifier.some((i) => sameIdentifier(i, wanted))) return true;
  return sameIdentifier(masterIdentifier, wanted);
}

/** What {@link searchByIdentifier} needs of a FHIR client (the endpoint client's first-page search). */
export interface IdentifierSearcher {
  search(type: string, params: Readonly<Record<string, string>>): Promise<{ readonly bundle: Bundle }>;
}

/**
 * `GET [base]/[type]?identifier=system|value` and the hits that are really ours: `match`-mode
 * entries of `type` that carry the identifier (a lenient server may ignore the parameter).
 */
export async function searchByIdentifier<T extends FhirResource>(
  client: IdentifierSearcher,
  type: T['resourceType'],
  wanted: IdentifierToken,
  extra: Readonly<Record<string, string>> = {},
): Promise<T[]> {
  const token = wanted.system === '' ? wanted.value : `${wanted.system}|${wanted.value}`;
  const { bundle } = await client.search(type, { ...extra, identifier: token });
  return (bundle.entry ?? []).flatMap((e) => {
    const r = e.resource;
    const isMatch = e.search?.mode === undefined || e.search.mode === 'match';
    return r && r.resourceType === type && isMatch && carriesIdentifier(r, wanted) ? [r as T] : [];
  });
}
