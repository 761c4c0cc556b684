/**
 * DocumentReference duplicates — rule `documentreference:content`.
 *
 * Approach: the same document held by two sources has the same bytes, whether sent
 * inline or served from a Binary: match on attachment hash (declared, or SHA-1 of inline
 * data), then URL, then business identifier ({@link sameContent}). Two notes of the same
 * type written the same day with different bytes stay two documents.
 * `entered-in-error`, or a content element without its attachment (malformed): never
 * merged. The survivor keeps its own content (no duplicated bytes).
 * @see https://hl7.org/fhir/R4/documentreference.html
 * @packageDocumentation
 */
import type { Attachment, DocumentReference, DocumentReferenceContent } from 'fhir/r4';
import { contentBlocking, contentIdentity } from './content-identity';
import { dedupeWith } from './engine';
import type { DedupeRule } from './rule';

/**
 * The attachment of each content element; `undefined` for an element without one (R4
 * requires it, 1..1) or for content that is not a list, so the document is never merged.
 * @see https://hl7.org/fhir/R4/documentreference-definitions.html#DocumentReference.content.attachment
 */
function attachmentsOf(d: DocumentReference): (Attachment | undefined)[] {
  const content: unknown = d.content;
  if (!Array.isArray(content)) return [undefined];
  return content.map((c: unknown) => (typeof c === 'object' && c !== null ? (c as DocumentReferenceContent).attachment : undefined));
}

/** The rule. */
export const documentReferenceRule: DedupeRule = {
  name: 'documentreference:content',
  resourceType: 'DocumentReference',
  approach: 'same attachment hash (declared or SHA-1 of inline data), else same URL, else same identifier',
  blocking(resources) {
    return contentBlocking(resources.map((r) => {
      const d = r.resource as DocumentReference;
      return contentIdentity(attachmentsOf(d), d.identifier, r.sourceId, d.status === 'entered-in-error');
    }));
  },
};

/** De-duplicates DocumentReferences only. */
export const dedupeDocumentReferences = dedupeWith(documentReferenceRule);
