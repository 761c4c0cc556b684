/**
 * DocumentReference duplicates — rule `documentreference:content`.
 *
 * Approach: the same document held by two sources has the same bytes, whether sent
 * inline or served from a Binary: match on attachment hash (declared, or SHA-1 of inline
 * data), then URL, then business identifier ({@link sameContent}). Two notes of the same
 * type written the same day with different bytes stay two documents.
 * A business identifier is version independent (R4: `identifier` "may include version
 * independent identifiers"; `masterIdentifier` names the version), so the preliminary note and
 * the amended one share it: matched by identifier alone, two documents merge only when they
 * state the same `status` and `docStatus` ({@link documentClaim}; an absent docStatus differs
 * from a present one). On every tier, two documents whose `status` or `docStatus` differ are
 * never merged ({@link documentState}): identical bytes at one source `superseded` and at the
 * other `current`, or `preliminary` and `final`, say different things of the same text, and the
 * survivor's would stand for both.
 * `entered-in-error`, or a content element without its attachment (malformed): never
 * merged. The survivor keeps its own content (no duplicated bytes).
 * @see https://hl7.org/fhir/R4/documentreference.html
 * @see https://hl7.org/fhir/R4/documentreference-definitions.html#DocumentReference.identifier
 * @see https://hl7.org/fhir/R4/documentreference-definitions.html#DocumentReference.docStatus
 * @packageDocumentation
 */
import type { Attachment, DocumentReference, DocumentReferenceContent } from 'fhir/r4';
import type { ClusterState } from './cluster';
import { contentBlocking, contentIdentity } from './content-identity';
import { dedupeWith } from './engine';
import { stableStringify } from './json';
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

const stringOrUndefined = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** What an identifier-only match must agree on: the status and the docStatus (absent included). */
function documentClaim(d: DocumentReference): string {
  return stableStringify({ status: stringOrUndefined(d.status) ?? null, docStatus: stringOrUndefined(d.docStatus) ?? null });
}

/** What no match may contradict, on any tier, as cluster state dimensions: the status and the docStatus. */
function documentState(d: DocumentReference): ClusterState {
  return [stringOrUndefined(d.status), stringOrUndefined(d.docStatus)];
}

/** The rule. */
export const documentReferenceRule: DedupeRule = {
  name: 'documentreference:content',
  resourceType: 'DocumentReference',
  approach: 'same attachment hash (declared or SHA-1 of inline data), else same URL, else same identifier with the same status and docStatus; never another status or docStatus',
  blocking(resources) {
    const spec = contentBlocking(resources.map((r) => {
      const d = r.resource as DocumentReference;
      return contentIdentity(attachmentsOf(d), d.identifier, r.sourceId, d.status === 'entered-in-error', documentClaim(d));
    }));
    const states = resources.map((r) => documentState(r.resource as DocumentReference));
    return { ...spec, state: (i) => states[i] };
  },
};

/** De-duplicates DocumentReferences only. */
export const dedupeDocumentReferences = dedupeWith(documentReferenceRule);
