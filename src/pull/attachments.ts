import { createHash } from 'node:crypto';
import type { Attachment } from 'fhir/r4';

/** One attachment found in a pulled resource (https://hl7.org/fhir/R4/datatypes.html#Attachment). */
export interface FoundAttachment {
  /** Where in the resource, e.g. `content[0].attachment`, `presentedForm[1]`, `Binary`. */
  readonly position: string;
  readonly url?: string;
  /** Base64 data carried inline (whitespace allowed: FHIR base64Binary may be line-wrapped). */
  readonly data?: string;
  readonly contentType?: string;
  readonly size?: number;
  /** Base64 SHA-1 of the data, as Attachment.hash defines. */
  readonly sha1?: string;
}

function fromAttachment(position: string, a: Attachment | undefined): FoundAttachment | undefined {
  if (!a || (a.url === undefined && a.data === undefined)) return undefined;
  return {
    position,
    ...(a.url !== undefined ? { url: a.url } : {}),
    ...(a.data !== undefined ? { data: a.data } : {}),
    ...(a.contentType ? { contentType: a.contentType } : {}),
    ...(typeof a.size === 'number' ? { size: a.size } : {}),
    ...(a.hash ? { sha1: a.hash } : {}),
  };
}

/** The resource types {@link findAttachments} finds attachments in (others are never looked into). */
export const TYPES_WITH_ATTACHMENTS: ReadonlySet<string> = new Set(['DocumentReference', 'DiagnosticReport', 'Binary']);

/**
 * The attachments of a resource the pull fetches into the blob store: DocumentReference content,
 * DiagnosticReport presentedForm, and Binary resources themselves.
 */
export function findAttachments(resource: Record<string, unknown>): FoundAttachment[] {
  const found: FoundAttachment[] = [];
  const type = resource.resourceType;
  if (type === 'DocumentReference' && Array.isArray(resource.content)) {
    resource.content.forEach((content: { attachment?: Attachment }, i: number) => {
      const a = fromAttachment(`content[${i}].attachment`, content?.attachment);
      if (a) found.push(a);
    });
  } else if (type === 'DiagnosticReport' && Array.isArray(resource.presentedForm)) {
    resource.presentedForm.forEach((form: Attachment, i: number) => {
      const a = fromAttachment(`presentedForm[${i}]`, form);
      if (a) found.push(a);
    });
  } else if (type === 'Binary' && typeof resource.data === 'string') {
    found.push({ position: 'Binary', data: resource.data, ...(typeof resource.contentType === 'string' ? { contentType: resource.contentType } : {}) });
  }
  return found;
}

/**
 * What identifies inline data among a resource's attachments across its versions: the SHA-256 (hex) of
 * the `Attachment.data` text as the resource carries it (https://hl7.org/fhir/R4/datatypes.html#Attachment).
 * A new version carrying other data at the same position is another attachment row, fetched on its own;
 * migration 027 computes the same digest in SQL for the rows stored before it.
 */
export function inlineDataDigest(data: string): string {
  return createHash('sha256').update(data, 'utf8').digest('hex');
}
