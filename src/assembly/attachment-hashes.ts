import type { NormalizedResource } from '../normalize/types';
import type { FetchedAttachment } from './assembly-input';

type Obj = Record<string, unknown>;

function attachmentsWithPosition(resource: Obj): { position: string; attachment: Obj }[] {
  if (resource.resourceType === 'DocumentReference' && Array.isArray(resource.content)) {
    return resource.content.flatMap((c: Obj, i: number) =>
      c && typeof c.attachment === 'object' && c.attachment !== null ? [{ position: `content[${i}].attachment`, attachment: c.attachment as Obj }] : [],
    );
  }
  if (resource.resourceType === 'DiagnosticReport' && Array.isArray(resource.presentedForm)) {
    return resource.presentedForm.map((a: Obj, i: number) => ({ position: `presentedForm[${i}]`, attachment: a }));
  }
  return [];
}

/**
 * Fills `Attachment.hash` (base64 SHA-1, https://hl7.org/fhir/R4/datatypes.html#Attachment) and
 * `size` of URL attachments from what the blob store fetched, when the source did not declare
 * them, so documents can be compared by content. Declared values are never overwritten (a
 * mismatch stays visible in the completeness report). Mutates the normalized copies only.
 */
export function fillAttachmentHashes(resources: NormalizedResource[], fetched: readonly FetchedAttachment[]): number {
  const byKey = new Map<string, FetchedAttachment>();
  for (const a of fetched) {
    if (a.state === 'fetched' && a.sha1Base64) byKey.set(`${a.sourceId}|${a.resourceType}|${a.remoteId}|${a.position}`, a);
  }
  let filled = 0;
  for (const r of resources) {
    for (const { position, attachment } of attachmentsWithPosition(r.resource as unknown as Obj)) {
      const found = byKey.get(`${r.key}|${position}`);
      if (!found) continue;
      if (attachment.hash === undefined && found.sha1Base64) {
        attachment.hash = found.sha1Base64;
        filled += 1;
      }
      if (attachment.size === undefined && found.size !== null) attachment.size = found.size;
    }
  }
  return filled;
}
