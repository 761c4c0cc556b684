import { createHash } from 'node:crypto';
import type { DocumentReference } from 'fhir/r4';
import { attachmentUrlInBundle, fillAttachmentHashes } from '../../src/assembly/attachment-hashes';
import type { FetchedAttachment } from '../../src/assembly/assembly-input';
import type { NormalizedResource } from '../../src/normalize/types';

/**
 * Attachment.hash and size (https://hl7.org/fhir/R4/datatypes.html#Attachment) come only from the
 * stored attachment fetched for what the resource's version carries: the same URL (as sent, or as
 * normalize rewrote it to the fullUrl of the Binary in the bundle), or the same inline bytes.
 */
const BASE = 'https://ehr.example.org/fhir';
const SOURCE = 'source-1';
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('base64');
const oldFile = Buffer.from('the first issue of the letter');
const newFile = Buffer.from('the amended letter, longer than the first');

function doc(attachment: Record<string, unknown>): NormalizedResource {
  const resource = { resourceType: 'DocumentReference', id: 'x', status: 'current', content: [{ attachment }] } as DocumentReference;
  return { key: `${SOURCE}|DocumentReference|letter`, fullUrl: 'urn:uuid:x', resource, sourceId: SOURCE, origin: 'local-ehr' };
}

function stored(url: string | null, bytes: Buffer, state: FetchedAttachment['state'] = 'fetched'): FetchedAttachment {
  return {
    sourceId: SOURCE, resourceType: 'DocumentReference', remoteId: 'letter', position: 'content[0].attachment',
    url, urlInBundle: url === null ? null : attachmentUrlInBundle(url, BASE) ?? null,
    state, sha1Base64: sha1(bytes), size: bytes.length, integrity: 'unverified', error: null,
  };
}

const attachmentOf = (r: NormalizedResource) => (r.resource as DocumentReference).content[0]?.attachment;

it('fills from the attachment fetched from the URL the version carries, never from an earlier URL', () => {
  const both = [stored(`${BASE}/Binary/b1`, oldFile), stored(`${BASE}/Binary/b2`, newFile)];
  const current = doc({ url: `${BASE}/Binary/b2` });
  expect(fillAttachmentHashes([current], both)).toBe(1);
  expect(attachmentOf(current)).toMatchObject({ hash: sha1(newFile), size: newFile.length });
  // Only the earlier file is stored (the new one not fetched, or failed): nothing is filled.
  const unfetched = doc({ url: `${BASE}/Binary/b2` });
  expect(fillAttachmentHashes([unfetched], [stored(`${BASE}/Binary/b1`, oldFile), stored(`${BASE}/Binary/b2`, newFile, 'failed')])).toBe(0);
  expect(attachmentOf(unfetched)).toEqual({ url: `${BASE}/Binary/b2` });
});

it('knows a URL normalize rewrote to the fullUrl of the Binary in the bundle', () => {
  const rewritten = attachmentUrlInBundle('Binary/b2', BASE);
  expect(rewritten).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
  // The relative and the absolute form name the same Binary; another Binary is another fullUrl.
  expect(attachmentUrlInBundle(`${BASE}/Binary/b2`, BASE)).toBe(rewritten);
  expect(attachmentUrlInBundle('Binary/b1', BASE)).not.toBe(rewritten);
  expect(attachmentUrlInBundle('https://elsewhere.example.org/files/b2.pdf', BASE)).toBeUndefined();
  const current = doc({ url: rewritten });
  fillAttachmentHashes([current], [stored('Binary/b1', oldFile), stored('Binary/b2', newFile)]);
  expect(attachmentOf(current)).toMatchObject({ hash: sha1(newFile), size: newFile.length });
});

it('fills inline data only from a stored attachment holding those very bytes', () => {
  const current = doc({ data: newFile.toString('base64') });
  expect(fillAttachmentHashes([current], [stored(null, oldFile)])).toBe(0);
  expect(attachmentOf(current)?.hash).toBeUndefined();
  fillAttachmentHashes([current], [stored(null, oldFile), stored(null, newFile)]);
  expect(attachmentOf(current)).toMatchObject({ hash: sha1(newFile), size: newFile.length });
});

it('never overwrites what the source declared', () => {
  const current = doc({ url: `${BASE}/Binary/b2`, hash: 'declared', size: 3 });
  expect(fillAttachmentHashes([current], [stored(`${BASE}/Binary/b2`, newFile)])).toBe(0);
  expect(attachmentOf(current)).toMatchObject({ hash: 'declared', size: 3 });
});
