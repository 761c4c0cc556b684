/**
 * Which record types each source was never asked for because its EHR's token scope did not grant
 * them (`pull/not-granted.ts`): the pull records such a query as a task with a server message of code
 * {@link NOT_GRANTED_CODE} whose text starts with the types ("AllergyIntolerance, MedicationRequest
 * not asked for: …", or "… not pulled: the EHR refused …"). A section none of whose sources was asked
 * must not read "None found": nothing was looked for — it says "not requested" and carries
 * emptyReason `notasked`.
 * @see https://terminology.hl7.org/CodeSystem-list-empty-reason.html
 * @packageDocumentation
 */
import { NOT_GRANTED_CODE, NOT_GRANTED_REASON } from '../../pull/not-granted';
import type { SourceInfo } from '../types';

/** What ends the list of types in a not-granted message's text. */
const TYPE_LIST_ENDS = [' not asked for: ', ' not pulled: '] as const;

/** The types a not-granted message names; none when the text is not such a message. */
function typesOfMessage(text: string): string[] {
  if (!text.includes(NOT_GRANTED_REASON)) return [];
  for (const end of TYPE_LIST_ENDS) {
    const at = text.indexOf(end);
    if (at > 0) return text.slice(0, at).split(', ').map((t) => t.trim()).filter((t) => t !== '');
  }
  return [];
}

/** One source and the types its EHR's scope did not grant (only sources with some). */
export interface NotGranted {
  readonly name: string;
  readonly types: ReadonlySet<string>;
}

/** The sources with types not granted, in the sources' order (removed sources are not passed here). */
export function notGrantedBySource(sources: readonly SourceInfo[]): NotGranted[] {
  const out: NotGranted[] = [];
  for (const s of sources) {
    const types = new Set<string>();
    for (const m of s.serverMessages ?? []) {
      if (m.code === NOT_GRANTED_CODE) for (const t of typesOfMessage(m.text)) types.add(t);
    }
    if (types.size > 0) out.push({ name: s.name, types });
  }
  return out;
}

/** What a section says of the sources not asked for (some of) its types, and whether none was asked. */
export interface ScopeNote {
  /** One plain-text sentence per source not asked for some of the section's types. */
  readonly sentences: readonly string[];
  /** The sources not asked for any of the section's types (by name). */
  readonly notAsked: ReadonlySet<string>;
}

/**
 * The note of a section listing `types`: "Not requested from Care team A: not granted by its EHR's
 * token scope." — naming the types when the source was asked for others of the section's ("MedicationStatement
 * not requested from …").
 */
export function scopeNote(types: readonly string[], notGranted: readonly NotGranted[]): ScopeNote | undefined {
  let sentences: string[] | undefined;
  let notAsked: Set<string> | undefined;
  for (const s of notGranted) {
    const missing = types.filter((t) => s.types.has(t));
    if (missing.length === 0) continue;
    (sentences ??= []).push(missing.length === types.length
      ? `Not requested from ${s.name}: not granted by its EHR's token scope.`
      : `${missing.join(', ')} not requested from ${s.name}: not granted by its EHR's token scope.`);
    if (missing.length === types.length) (notAsked ??= new Set()).add(s.name);
  }
  return sentences ? { sentences, notAsked: notAsked ?? new Set() } : undefined;
}
