/**
 * Source narratives that may not be passed on (`xhtml-allow-list.ts`) are replaced, in place on the
 * normalized copy, by a notice; each replacement is warned `narrative-removed`, reported with the
 * other normalization warnings in the completeness report.
 *
 * Where: the resource's `text`, each contained resource's `text`, and for a Composition each
 * section's (and sub-section's) `text` — every element of type Narrative in R4. Only a `text` whose
 * `div` is a string is looked at: a resource without narrative costs two property reads.
 *
 * Decision: the replacement `text` is `{ status: 'empty', div: <notice> }`, not `generated` and not
 * dropped. R4 defines `empty` as "the contents of the narrative are some equivalent of 'No
 * human-readable text provided in this case'", which is what the notice is; `generated` would claim
 * the narrative was generated from the resource's structured data, which it is not. Keeping a
 * narrative (rather than deleting `text`) tells whoever reads the resource in a FHIR viewer that the
 * source sent one and it was withheld, and keeps dom-6 ("a resource should have narrative") met; the
 * structured data, which the narrative only summarizes, is unchanged. The whole `text` is replaced
 * (its `id` and extensions described the removed content). The raw store keeps the narrative as sent.
 * @see https://hl7.org/fhir/R4/narrative.html#Narrative
 * @see https://hl7.org/fhir/R4/valueset-narrative-status.html
 * @see https://hl7.org/fhir/R4/domainresource.html#invs (dom-6)
 * @packageDocumentation
 */
import type { RawInput } from './types';
import { narrativeProblem, XHTML_NAMESPACE } from './xhtml-allow-list';

/* Builtins bound once: hot loops then read module constants, not globals (much cheaper inside vm contexts such as jest's). */
const { isArray } = Array;

type Obj = Record<string, unknown>;
type Warn = (code: string, message: string) => void;

/** The warning code of a replaced narrative. */
export const NARRATIVE_REMOVED = 'narrative-removed';

/** The notice that replaces a narrative (escaped text only: it passes the allow-list itself). */
export const REMOVED_NARRATIVE_DIV =
  `<div xmlns="${XHTML_NAMESPACE}"><p>The narrative sent by the source was removed: it held markup that a FHIR narrative may not hold ` +
  '(such as a script, an event handler or an external reference), so it was not safe to display. The structured data of this record is unchanged.</p></div>';

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !isArray(v);
}

/** The resource whose narratives are checked, as the warnings name it (the completeness report lists warnings without their key). */
export type NarrativeHolder = Pick<RawInput, 'sourceId' | 'resourceType' | 'remoteId'>;

/** Replaces `holder.text` when its div is refused; true when it was. `where` names it in the warning. */
function checkText(holder: Obj, of: NarrativeHolder, where: string, warn: Warn): boolean {
  const text = holder['text'];
  if (!isObj(text)) return false;
  const div = text['div'];
  if (typeof div !== 'string') return false;
  const problem = narrativeProblem(div);
  if (problem === undefined) return false;
  holder['text'] = { status: 'empty', div: REMOVED_NARRATIVE_DIV };
  warn(
    NARRATIVE_REMOVED,
    `${of.resourceType}/${of.remoteId.slice(0, 64)} of source ${of.sourceId}, ${where}: narrative removed (${problem}); replaced by a notice with text.status "empty"`,
  );
  return true;
}

function checkSections(sections: unknown, of: NarrativeHolder, path: string, warn: Warn): number {
  if (!isArray(sections)) return 0;
  let removed = 0;
  (sections as unknown[]).forEach((section, i) => {
    if (!isObj(section)) return;
    const where = `${path}[${i}]`;
    if (checkText(section, of, `${where}.text`, warn)) removed++;
    removed += checkSections(section['section'], of, `${where}.section`, warn);
  });
  return removed;
}

/**
 * Replaces the refused narratives of a (copied) resource, in place (see the module comment); `of`
 * is the raw input it comes from.
 * @returns how many were replaced
 */
export function replaceUnsafeNarratives(resource: Obj, of: NarrativeHolder, warn: Warn): number {
  let removed = checkText(resource, of, 'text', warn) ? 1 : 0;
  const contained = resource['contained'];
  if (isArray(contained)) {
    for (const c of contained as unknown[]) {
      if (!isObj(c)) continue;
      const type = typeof c['resourceType'] === 'string' ? c['resourceType'].slice(0, 64) : 'resource';
      const id = typeof c['id'] === 'string' ? c['id'].slice(0, 64) : '';
      if (checkText(c, of, `contained ${type} #${id} text`, warn)) removed++;
    }
  }
  if (resource['resourceType'] === 'Composition') removed += checkSections(resource['section'], of, 'section', warn);
  return removed;
}
