/**
 * DocumentReference duplicates — rule `documentreference:content`.
 *
 * Approach: the same document held by two sources has the same bytes, whether sent
 * inline or served from a Binary: match on attachment hash (declared, or SHA-1 of inline
 * data), then URL, then business identifier ({@link sameContent}). Two notes of the same
 * type written the same day with different bytes stay two documents.
 * `entered-in-error`: never merged. The survivor keeps its own content (no duplicated bytes).
 * @see https://hl7.org/fhir/R4/documentreference.html
 * @packageDocumentation
 */
import type { DocumentReference } from 'fhir/r4';
import { contentBlocking, contentIdentity } from './content-identity';
import { dedupeWith } from './engine';
import type { DedupeRule } from './rule';

/** The rule. */
export const documentReferenceRule: DedupeRule = {
  name: 'documentreference:content',
  resourceType: 'DocumentReference',
  approach: 'same attachment hash (declared or SHA-1 of inline data), else same URL, else same identifier',
  blocking(resources) {
    return contentBlocking(resources.map((r) => {
      const d = r.resource as DocumentReference;
      return contentIdentity(d.content.map((c) => c.attachment), d.identifier, r.sourceId, d.status === 'entered-in-error');
    }));
  },
};

/** De-duplicates DocumentReferences only. */
export const dedupeDocumentReferences = dedupeWith(documentReferenceRule);
