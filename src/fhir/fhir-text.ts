/**
 * Text a FHIR string can carry. R4's `string` is `[ \r\n\t\S]+`: no character below U+0020 but tab,
 * LF and CR (DEL is `\S`, allowed). XML 1.0 refuses the same ones, so a narrative's XHTML cannot hold
 * them either. A vertical tab or form feed pasted from a word processor is the usual one; a server
 * validating what it is sent refuses the whole resource for it, on every attempt.
 * @see https://hl7.org/fhir/R4/datatypes.html#string
 * @see https://www.w3.org/TR/xml/#charsets
 * @packageDocumentation
 */

/** A C0 control character a FHIR string cannot hold. */
export const FHIR_STRING_CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

/** `U+000B` for the first control character of `s` that a FHIR string cannot hold, or undefined. */
export function fhirStringControlIn(s: string): string | undefined {
  const found = FHIR_STRING_CONTROL.exec(s)?.[0];
  return found === undefined ? undefined : `U+${found.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Why `field`'s text is refused: the control character it holds (`character`, as {@link fhirStringControlIn} names it). */
export function fhirControlRefusal(field: string, character: string | undefined, hint = ' (text pasted from a word processor often brings one)'): string {
  return `${field} holds a control character (${character ?? 'below U+0020'}) that FHIR text cannot carry; remove it${hint}`;
}

/**
 * `s` as a FHIR string can carry it: a vertical tab or form feed (a word processor's manual line or
 * page break) becomes a line break, any other such control U+FFFD, so a reader sees something was there.
 */
export function fhirText(s: string): string {
  return s.replace(/[\u000B\u000C]/g, '\n').replace(/[\u0000-\u0008\u000E-\u001F]/g, '\uFFFD');
}

/** Where a string of `value` (walked through objects and arrays) holds such a control character, and which. */
export function fhirStringControlsIn(value: unknown, path: readonly (string | number)[] = []): { path: (string | number)[]; character: string }[] {
  if (typeof value === 'string') {
    const character = fhirStringControlIn(value);
    return character === undefined ? [] : [{ path: [...path], character }];
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => fhirStringControlsIn(v, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => fhirStringControlsIn(v, [...path, k]));
  }
  return [];
}
