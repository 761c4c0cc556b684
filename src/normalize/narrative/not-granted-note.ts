/**
 * Which record types each source was never asked for because its EHR's token scope did not grant
 * them (`SourceInfo.notGrantedTypes`, from the pull's tasks: src/pull/not-granted.ts). A section none
 * of whose sources was asked must not read "None found": nothing was looked for — it says "not
 * requested" and carries emptyReason `notasked`.
 * @see https://terminology.hl7.org/CodeSystem-list-empty-reason.html
 * @packageDocumentation
 */
import type { SourceInfo } from '../types';

/** One source and the types its EHR's scope did not grant (only sources with some). */
export interface NotGranted {
  readonly sourceId: string;
  readonly name: string;
  readonly types: ReadonlySet<string>;
}

/** The sources with types not granted, in the sources' order. */
export function notGrantedBySource(sources: readonly SourceInfo[]): NotGranted[] {
  return sources.flatMap((s) => (s.notGrantedTypes && s.notGrantedTypes.length > 0 ? [{ sourceId: s.sourceId, name: s.name, types: new Set(s.notGrantedTypes) }] : []));
}

/** What a section says of the sources not asked for (some of) its types, and whether none was asked. */
export interface ScopeNote {
  /** One plain-text sentence per source not asked for some of the section's types. */
  readonly sentences: readonly string[];
  /** The sources not asked for any of the section's types (by source id). */
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
    if (missing.length === types.length) (notAsked ??= new Set()).add(s.sourceId);
  }
  return sentences ? { sentences, notAsked: notAsked ?? new Set() } : undefined;
}
