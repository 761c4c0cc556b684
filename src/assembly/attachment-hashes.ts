import { createHash } from 'node:crypto';
import { importedResourceId } from '../normalize/ids';
import { parseReference } from '../normalize/references';
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
 * The form an attachment URL takes in the bundle when it is a literal reference to a resource of its
 * source (`Binary/123`, or absolute under the source's base): that resource's `urn:uuid:` fullUrl,
 * which normalize writes instead of the URL when the resource is in the bundle (`sourceHooks` in
 * src/normalize/references.ts). Undefined for any other URL, which normalize leaves as sent.
 * @see https://hl7.org/fhir/R4/datatypes.html#Attachment (url)
 * @see https://hl7.org/fhir/R4/references.html#literal
 */
export function attachmentUrlInBundle(url: string, sourceBaseUrl: string): string | undefined {
  const parsed = parseReference(url, sourceBaseUrl);
  return parsed.kind === 'literal' ? `urn:uuid:${importedResourceId(sourceBaseUrl, parsed.resourceType, parsed.id)}` : undefined;
}

/** What the blob store holds for an attachment: the base64 SHA-1 and size of its bytes. */
interface StoredDigest {
  readonly sha1Base64: string;
  readonly size: number | null;
}

/** SHA-1 (base64) and size of the bytes of base64 `data` (whitespace ignored, as FHIR base64Binary allows). */
function digestOfData(data: string): StoredDigest {
  const bytes = Buffer.from(data, 'base64');
  return { sha1Base64: createHash('sha1').update(bytes).digest('base64'), size: bytes.length };
}

/** The one digest all `found` agree on; undefined when there is none, or they differ (nothing to tell them apart by). */
function agreed(found: readonly StoredDigest[]): StoredDigest | undefined {
  const first = found[0];
  return first && found.every((f) => f.sha1Base64 === first.sha1Base64 && f.size === first.size) ? first : undefined;
}

/**
 * The stored attachment that holds exactly what this version of the resource carries at a position,
 * among the fetched ones of that (source, type, id, position):
 * - inline `data`: one whose bytes are that data's (same SHA-1);
 * - a URL: one fetched from that URL (as the version carries it, or as normalize rewrote it, see
 *   {@link attachmentUrlInBundle}). One fetched from another URL — an earlier version of the resource
 *   pointing at another Binary — is never taken.
 */
function storedFor(attachment: Obj, candidates: readonly FetchedAttachment[]): StoredDigest | undefined {
  if (typeof attachment.data === 'string') {
    const own = digestOfData(attachment.data);
    return candidates.some((c) => c.sha1Base64 === own.sha1Base64) ? own : undefined;
  }
  const url = attachment.url;
  if (typeof url !== 'string') return undefined;
  const matching = candidates.filter((c) => c.url !== null && (c.url === url || c.urlInBundle === url));
  return agreed(matching.map((c) => ({ sha1Base64: c.sha1Base64 ?? '', size: c.size })));
}

/**
 * Fills `Attachment.hash` (base64 SHA-1, https://hl7.org/fhir/R4/datatypes.html#Attachment) and
 * `size` from what the blob store fetched, when the source did not declare them, so documents can be
 * compared by content — but only from the stored attachment fetched for what this version of the
 * resource carries ({@link storedFor}): a new version pointing at a new Binary never gets the old
 * file's hash, which content-based dedupe would trust. Declared values are never overwritten (a
 * mismatch stays visible in the completeness report). Mutates the normalized copies only.
 */
export function fillAttachmentHashes(resources: NormalizedResource[], fetched: readonly FetchedAttachment[]): number {
  const byPosition = new Map<string, FetchedAttachment[]>();
  for (const a of fetched) {
    if (a.state !== 'fetched' || !a.sha1Base64) continue;
    const k = `${a.sourceId}|${a.resourceType}|${a.remoteId}|${a.position}`;
    const list = byPosition.get(k);
    if (list) list.push(a);
    else byPosition.set(k, [a]);
  }
  let filled = 0;
  for (const r of resources) {
    for (const { position, attachment } of attachmentsWithPosition(r.resource as unknown as Obj)) {
      if (attachment.hash !== undefined && attachment.size !== undefined) continue;
      const candidates = byPosition.get(`${r.key}|${position}`);
      const found = candidates ? storedFor(attachment, candidates) : undefined;
      if (!found) continue;
      if (attachment.hash === undefined) {
        attachment.hash = found.sha1Base64;
        filled += 1;
      }
      if (attachment.size === undefined && found.size !== null) attachment.size = found.size;
    }
  }
  return filled;
}
