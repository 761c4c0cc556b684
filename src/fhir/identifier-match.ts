/**
 * Search hits are checked against what was searched for. A server that does not support a search
 * parameter ignores it and answers as if it had not been sent — every Patient, every
 * DiagnosticReport — unless the client asks for strict handling
 * (https://hl7.org/fhir/R4/search.html#errors): a hit of an identifier search is taken only when
 * the resource itself carries that identifier. Otherwise a lenient server's unrelated Patient could
 * be taken for the child, or an unrelated report for ours ("already there", so never written).
 * @packageDocumentation
 */

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
