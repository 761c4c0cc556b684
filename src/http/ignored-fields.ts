/**
 * The members of a JSON request body that its schema did not keep: the API's schemas drop keys
 * they do not know (an integrator's typo — `referingPhysician` — or a field of a newer client)
 * instead of refusing the request, so the caller is told which were ignored rather than losing
 * them silently.
 */

/** Paths listed at most (a body of garbage keys is not echoed back whole). */
export const MAX_IGNORED_FIELDS = 20;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function walk(sent: unknown, kept: unknown, path: string, out: string[]): void {
  if (Array.isArray(sent) && Array.isArray(kept)) {
    // Element by element where the schema kept the array's length (it never reorders).
    if (sent.length !== kept.length) return;
    sent.forEach((item, i) => walk(item, kept[i], `${path}[${i}]`, out));
    return;
  }
  if (!isPlainObject(sent) || !isPlainObject(kept)) return;
  for (const key of Object.keys(sent)) {
    if (out.length >= MAX_IGNORED_FIELDS) return;
    const at = path === '' ? key : `${path}.${key}`;
    if (!Object.prototype.hasOwnProperty.call(kept, key)) out.push(at);
    else walk(sent[key], kept[key], at, out);
  }
}

/**
 * Dotted paths (`intake.guardian.phoneNumber`, `answers[1].note`) of the members of `sent` (the body
 * as received) that are missing from `kept` (what the schema made of it), in the order sent.
 */
export function ignoredFields(sent: unknown, kept: unknown): string[] {
  const out: string[] = [];
  walk(sent, kept, '', out);
  return out;
}
