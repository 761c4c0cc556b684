/**
 * What a PDF a family uploaded holds, read with pdf-lib: page count, title, creation date, active
 * content. Runs in the PDF inspection thread (`pdf-inspect-worker.ts`); the DocumentReference it
 * becomes is built in `pdf-document.ts`.
 * @see https://pdf-lib.js.org/docs/api/classes/pdfdocument#load
 * @packageDocumentation
 */
import { PDFDocument } from 'pdf-lib';
import { activeContentOf } from './pdf-active-content';
import type { PdfInspection } from './pdf-document';
import { hasPdfHeader } from './sniff';

const MAX_REASON = 300;
/** Why a PDF without `%%EOF` in its last 1024 bytes is not read. */
const TRUNCATED_REASON = 'truncated PDF: no %%EOF marker at the end of the file';

/**
 * Opens a PDF with pdf-lib (default parse speed, which yields to the event loop between objects) and reads
 * its page count, `/Title` and `/CreationDate`, and what active content it holds (JavaScript, launch
 * actions, embedded files…: `pdf-active-content.ts`). Never throws.
 *
 * - Encrypted (`/Encrypt` in the trailer): `{ ok: false, encrypted: true }`, with the page count when the
 *   page tree can still be read (it is not encrypted, only strings and streams are).
 * - Unparseable, no pages, or no `%%EOF` in the last 1024 bytes (ISO 32000-1 §7.5.5; readers look there):
 *   `{ ok: false, encrypted: false, reason }`. A file with a PDF header that cannot be opened or shows no
 *   pages and lacks `%%EOF` is called truncated (`truncated PDF: no %%EOF marker…`, checked before the
 *   load error is quoted): a cut download or copy is the usual cause, and the family can be asked again.
 */
export async function inspectPdf(bytes: Uint8Array): Promise<PdfInspection> {
  let doc: PDFDocument;
  try {
    doc = await PDFDocument.load(bytes, { ignoreEncryption: true, updateMetadata: false });
  } catch (err) {
    // A cut file fails to load for lack of its cross-reference table and trailer: say what is missing.
    if (hasPdfHeader(bytes) && !hasEofMarker(bytes)) return { ok: false, encrypted: false, reason: `${TRUNCATED_REASON} (pdf-lib: ${errorText(err)})` };
    return { ok: false, encrypted: false, reason: `damaged PDF: ${errorText(err)}` };
  }
  const pageCount = attempt(() => doc.getPageCount());
  const active = attempt(() => activeContentOf(doc)) ?? [];
  const activeContent = active.length > 0 ? { activeContent: active } : {};
  if (doc.isEncrypted) {
    return pageCount === undefined
      ? { ok: false, encrypted: true, reason: 'encrypted PDF (password-protected)', ...activeContent }
      : { ok: false, encrypted: true, reason: 'encrypted PDF (password-protected)', pageCount, ...activeContent };
  }
  // Damaged or truncated, it still says what active content it holds: readers open such files anyway.
  if (pageCount === undefined || pageCount === 0) {
    const reason = hasEofMarker(bytes) || !hasPdfHeader(bytes) ? 'damaged PDF: no readable pages' : `${TRUNCATED_REASON}; no readable pages`;
    return { ok: false, encrypted: false, reason, ...activeContent };
  }
  if (!hasEofMarker(bytes)) {
    return { ok: false, encrypted: false, reason: TRUNCATED_REASON, pageCount, ...activeContent };
  }
  // A title in UTF-16 without its BOM is decoded as PDFDocEncoding by pdf-lib: NULs between letters,
  // made storable where the metadata is written (upload-repository.ts).
  const title = attempt(() => doc.getTitle())?.trim();
  const creation = attempt(() => doc.getCreationDate());
  return {
    ok: true,
    encrypted: false,
    pageCount,
    ...(title ? { title } : {}),
    ...(creation && !Number.isNaN(creation.getTime()) ? { creationDate: creation.toISOString() } : {}),
    ...activeContent,
  };
}

function attempt<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

function hasEofMarker(bytes: Uint8Array): boolean {
  const tail = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).subarray(Math.max(0, bytes.byteLength - 1024));
  return tail.includes('%%EOF', 0, 'latin1');
}

function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON)}…` : text;
}
