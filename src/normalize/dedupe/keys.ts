/**
 * Blocking-key helpers shared by the rules: codes by system, dates and instants,
 * identifiers, attachment content hashes.
 *
 * A blocking key is a string two duplicates must share; resources are hashed by their
 * keys so a rule only compares resources inside one bucket (never all pairs of a type).
 * Nested elements are read defensively: one malformed element (a CodeableConcept whose
 * `coding` is not a list, a DocumentReference content without its attachment) gives no
 * key — the resource then does not match — and never throws, so one bad record cannot
 * stop the assembly of the whole case.
 * @see https://hl7.org/fhir/R4/datatypes.html#dateTime
 * @see https://hl7.org/fhir/R4/datatypes.html#Attachment
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import type { Attachment, CodeableConcept, Coding, Identifier } from 'fhir/r4';

export const LOINC = 'http://loinc.org';
export const SNOMED = 'http://snomed.info/sct';
export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const CVX = 'http://hl7.org/fhir/sid/cvx';
export const UCUM = 'http://unitsofmeasure.org';
export const DICOM_UID = 'urn:dicom:uid';

/** True for a non-array, non-null object (the shape of any FHIR element). */
export function isElement(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Codings of one or more CodeableConcepts; absent or malformed ones (not an object, `coding`
 * not a list, a coding that is not an object) give none.
 */
export function codingsOf(...concepts: (CodeableConcept | undefined)[]): Coding[] {
  const out: Coding[] = [];
  for (const cc of concepts) {
    const codings: unknown = isElement(cc) ? cc.coding : undefined;
    if (!Array.isArray(codings)) continue;
    for (const c of codings as unknown[]) if (isElement(c)) out.push(c as Coding);
  }
  return out;
}

/** `system|code` of every coding that has both. */
export function codeKeys(codings: readonly Coding[]): string[] {
  const out: string[] = [];
  for (const c of codings) if (c.system && c.code) out.push(`${c.system}|${c.code}`);
  return out;
}

/**
 * The code of a status CodeableConcept bound (required) to one code system, such as an
 * allergy's or a condition's clinical status: the coding of that system, else a system-less
 * coding with one of its codes; undefined when absent (or coded only in another system).
 * @see https://hl7.org/fhir/R4/terminologies.html#required
 */
export function requiredStatusCode(concept: CodeableConcept | undefined, system: string, codes: ReadonlySet<string>): string | undefined {
  const codings = codingsOf(concept);
  const coded = codings.find((c) => c.system === system && c.code) ?? codings.find((c) => c.system === undefined && c.code !== undefined && codes.has(c.code));
  return coded?.code;
}

/** Codes of `system` in the codings, deduplicated. */
export function codesIn(codings: readonly Coding[], system: string): string[] {
  const out: string[] = [];
  for (const c of codings) if (c.system === system && c.code && !out.includes(c.code)) out.push(c.code);
  return out;
}

/**
 * Keys of the codings in `preferred` if the resource has any, else of every coding: a
 * rule that matches "after mapping" on a standard system still works for resources
 * whose codes could not be mapped (two sources with the same local coding).
 */
export function preferredCodeKeys(codings: readonly Coding[], preferred: string): string[] {
  const std = codesIn(codings, preferred);
  if (std.length > 0) return std.map((c) => `${preferred}|${c}`);
  return [...new Set(codeKeys(codings))];
}

/** Whether a FHIR date/dateTime string has a time part (`YYYY-MM-DDThh:mm…`). */
const hasTime = (value: string): boolean => value.length > 15 && value.charCodeAt(10) === 84; /* T */
const digit = (s: string, i: number): number => s.charCodeAt(i) - 48;
const two = (s: string, i: number): number => digit(s, i) * 10 + digit(s, i + 1);

/**
 * Epoch milliseconds of a FHIR dateTime with time and zone: a char-level fast path for
 * `YYYY-MM-DDThh:mm[:ss[.fff…]](Z|±hh:mm)`, `Date.parse` for anything else.
 */
export function epochMillis(value: string): number {
  const n = value.length;
  if (n < 17 || value.charCodeAt(10) !== 84 /* T */) return Date.parse(value);
  let i = 16;
  let sec = 0;
  let ms = 0;
  if (value.charCodeAt(i) === 58 /* : */) {
    sec = two(value, i + 1);
    i += 3;
    if (value.charCodeAt(i) === 46 /* . */) {
      i++;
      let scale = 100;
      while (i < n) {
        const d = digit(value, i);
        if (d < 0 || d > 9) break;
        ms += d * scale;
        scale /= 10;
        i++;
      }
      ms = Math.floor(ms);
    }
  }
  let offset = 0;
  const z = value.charCodeAt(i);
  if (z === 90 /* Z */ && i === n - 1) offset = 0;
  else if ((z === 43 || z === 45) && i === n - 6) offset = (z === 45 ? -1 : 1) * (two(value, i + 1) * 60 + two(value, i + 4)) * 60_000;
  else return Date.parse(value);
  const y = digit(value, 0) * 1000 + digit(value, 1) * 100 + two(value, 2);
  const utc = Date.UTC(y, two(value, 5) - 1, two(value, 8), two(value, 11), two(value, 14), sec, ms);
  return Number.isNaN(utc) ? Date.parse(value) : utc - offset;
}

/**
 * The point in time of a FHIR dateTime/instant as a key: epoch milliseconds when it has
 * a time (so `09:20-07:00` and `16:20Z` are equal), else `d:` + the date as written
 * (a date or partial date has no instant).
 */
export function instantKey(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (hasTime(value)) {
    const ms = epochMillis(value);
    return Number.isNaN(ms) ? undefined : String(ms);
  }
  return `d:${value}`;
}

/**
 * Calendar-day keys of a FHIR date/dateTime: the date as written and, for a value with a
 * time, also its UTC date (a local evening is the next UTC day). Two values are "on the
 * same date" when they share a key. Partial dates (year, year-month) give no key.
 */
export function dateKeys(value: string | undefined): string[] {
  if (!value || value.length < 10) return [];
  const written = value.slice(0, 10);
  if (!hasTime(value)) return [written];
  const ms = epochMillis(value);
  if (Number.isNaN(ms)) return [written];
  const utc = new Date(ms).toISOString().slice(0, 10);
  return utc === written ? [written] : [written, utc];
}

/**
 * What a record says about where on the body its fact is (`Condition.bodySite`,
 * `Procedure.bodySite`: 0..* CodeableConcept; `Observation.bodySite`: 0..1), as a canonical
 * string, for `BlockingSpec.state` (`cluster.ts`): the same diagnosis or procedure on another site (the
 * left ear and the right ear, two punch biopsies) is another fact, and a merge would union both
 * sites into one record. Each concept is read by its `system|code` codings (sorted: order and
 * `display`/`text` aside), else by its text (trimmed, lower case); the concepts are sorted. So
 * two records merge only when they name the same sites in the same codes (a site coded
 * differently keeps the records apart: the specialist then sees both, nothing is hidden);
 * a record without a site (absent, empty, or malformed) states none and may join either.
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.bodySite
 * @see https://hl7.org/fhir/R4/procedure-definitions.html#Procedure.bodySite
 * @see https://hl7.org/fhir/R4/observation-definitions.html#Observation.bodySite
 */
export function bodySiteState(sites: CodeableConcept | readonly CodeableConcept[] | undefined): string | undefined {
  if (sites === undefined) return undefined;
  const list: readonly unknown[] = Array.isArray(sites) ? sites : [sites];
  if (list.length === 0) return undefined;
  const concepts: string[] = [];
  for (const site of list) {
    if (!isElement(site)) continue;
    const cc = site as CodeableConcept;
    const keys = [...new Set(codeKeys(codingsOf(cc)))].sort();
    if (keys.length > 0) concepts.push(keys.join(','));
    else if (typeof cc.text === 'string' && cc.text.trim() !== '') concepts.push(`text:${cc.text.trim().toLowerCase()}`);
  }
  return concepts.length === 0 ? undefined : [...new Set(concepts)].sort().join('&');
}

/** `system|value` of identifiers that have both. */
export function identifierKeys(identifiers: readonly Identifier[] | undefined): string[] {
  const out: string[] = [];
  for (const i of identifiers ?? []) if (i.system && i.value) out.push(`${i.system}|${i.value}`);
  return out;
}

/** Cartesian product of key lists joined with `#` (blocking on two or more properties). */
export function combineKeys(...parts: readonly (readonly string[])[]): string[] {
  let out: string[] = [''];
  for (const part of parts) {
    const next: string[] = [];
    for (const prefix of out) for (const p of part) next.push(prefix === '' ? p : `${prefix}#${p}`);
    out = next;
  }
  return parts.length === 0 ? [] : out;
}

const HEX_SHA1 = /^[0-9a-f]{40}$/i;

/** A declared Attachment.hash in canonical base64 form (hex SHA-1 is accepted and converted). */
export function normalizeHash(hash: string): string {
  const trimmed = hash.trim();
  return HEX_SHA1.test(trimmed) ? Buffer.from(trimmed, 'hex').toString('base64') : trimmed;
}

/** Base64 SHA-1 of the bytes of base64 `data`. */
export function sha1OfBase64(data: string): string {
  return createHash('sha1').update(Buffer.from(data, 'base64')).digest('base64');
}

/** Whether `value` is an Attachment-shaped object (a content element may lack its attachment). */
export function isAttachment(value: Attachment | undefined): value is Attachment {
  return isElement(value);
}

/**
 * The content hash of an attachment: its declared `hash` (SHA-1, base64), else the SHA-1
 * of its inline `data`; undefined for a URL-only attachment without a declared hash
 * (the integrator fills `hash` from the blob store before de-duplication), or for a
 * missing or malformed attachment.
 */
export function attachmentHash(att: Attachment | undefined): string | undefined {
  if (!isAttachment(att)) return undefined;
  if (typeof att.hash === 'string' && att.hash !== '') return normalizeHash(att.hash);
  if (typeof att.data === 'string' && att.data !== '') return sha1OfBase64(att.data);
  return undefined;
}

const ABSOLUTE = /^[a-z][a-z0-9+.-]*:/i;

/**
 * The attachment URL as a key: absolute URLs as they are, relative ones (`Binary/123`)
 * qualified by the source (the same relative URL at two sources is two things).
 */
export function attachmentUrlKey(att: Attachment | undefined, sourceId: string): string | undefined {
  if (!isAttachment(att) || typeof att.url !== 'string' || att.url === '') return undefined;
  return ABSOLUTE.test(att.url) ? att.url : `${sourceId}|${att.url}`;
}

/** True when two key sets share a key. */
export function intersects(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const k of small) if (large.has(k)) return true;
  return false;
}
