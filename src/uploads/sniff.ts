/**
 * File-type sniffing by content, never by name: families upload whatever their portal or CD gave them,
 * and a DICOMDIR tree names its files `IM000001` or `6154` with no extension.
 *
 * - PDF: `%PDF-` at offset 0 (ISO 32000-1 §7.5.2); like the common readers (Acrobat, pdf.js, PDFium),
 *   also a `%PDF-1.n`/`%PDF-2.n` header anywhere within the first 1024 bytes, whatever comes before it:
 *   portals and mail gateways prepend a byte-order mark, whitespace, a MacBinary header or an HTTP
 *   header, and the family's viewer opens such a file all the same. A raw DICOM data set (below) is
 *   judged before that tolerance.
 * - DICOM: `DICM` at offset 128 after the 128-byte preamble (PS3.10 §7.1,
 *   https://dicom.nema.org/medical/dicom/current/output/html/part10.html#sect_7.1). A file that starts
 *   directly with a group 0008 element (a raw data set without preamble or File Meta Information, not a
 *   valid Part 10 file) is also sniffed as `dicom`, so that the DICOM parser can say clearly why it
 *   is refused instead of calling it an unknown file.
 * - zip: a local file header `PK\x03\x04` (APPNOTE.TXT §4.3.7), or the end-of-central-directory
 *   record of an empty archive `PK\x05\x06`.
 *
 * A file can be two things at once: the 128-byte DICOM preamble is free for the application
 * (PS3.10 §7.1), and a `%PDF-` header there makes a DICOM file that PDF readers open as a document
 * (a polyglot). It is sniffed as `dicom`; {@link hasPdfHeader} tells ingest to inspect it as a PDF too.
 *
 * @packageDocumentation
 */

/** What an upload is, judged by its first bytes. */
export type FileKind = 'pdf' | 'dicom' | 'zip' | 'unknown';

/** How many leading bytes {@link sniffFileKind} looks at (enough for every rule). */
export const SNIFF_BYTES = 1024;

const PDF_MAGIC = Buffer.from('%PDF-', 'latin1');
/** A PDF header after leading bytes: `%PDF-` and a version (1.x or 2.x), as readers look for it. */
const LATE_PDF_HEADER = /%PDF-[12]\.\d/;
const DICM = Buffer.from('DICM', 'latin1');

/** Two-letter value representations of PS3.5 §6.2 (for the raw-data-set heuristic). */
const VRS = new Set(
  'AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '),
);

/**
 * The kind of a file from its first bytes (pass at least {@link SNIFF_BYTES} when the file is that long;
 * 132 bytes are enough for DICOM).
 */
export function sniffFileKind(firstBytes: Buffer): FileKind {
  if (firstBytes.length >= 132 && firstBytes.subarray(128, 132).equals(DICM)) return 'dicom';
  if (firstBytes.length >= 4 && firstBytes[0] === 0x50 && firstBytes[1] === 0x4b) {
    const a = firstBytes[2];
    const b = firstBytes[3];
    if ((a === 0x03 && b === 0x04) || (a === 0x05 && b === 0x06)) return 'zip';
  }
  const head = firstBytes.subarray(0, SNIFF_BYTES);
  if (head.subarray(0, PDF_MAGIC.length).equals(PDF_MAGIC)) return 'pdf';
  if (looksLikeRawDataSet(firstBytes)) return 'dicom';
  if (LATE_PDF_HEADER.test(head.toString('latin1'))) return 'pdf';
  return 'unknown';
}

/**
 * A data set written without preamble and File Meta Information starts with a group 0008 element in
 * little endian: explicit VR (tag, then two upper-case letters of a known VR; a few stray leading bytes
 * are tolerated, as seen in real files) or implicit VR at offset 0 (tag, then a small even 32-bit length).
 */
export function looksLikeRawDataSet(bytes: Buffer): boolean {
  for (let at = 0; at <= 7 && at + 8 <= bytes.length; at++) {
    if (bytes[at] === 0x08 && bytes[at + 1] === 0x00 && VRS.has(bytes.toString('latin1', at + 4, at + 6))) return true;
  }
  if (bytes.length < 12 || bytes[0] !== 0x08 || bytes[1] !== 0x00) return false;
  const element = bytes.readUInt16LE(2);
  const length = bytes.readUInt32LE(4);
  return element <= 0x0020 && length > 0 && length <= 64 && length % 2 === 0;
}

/**
 * Whether `%PDF-` occurs within the first {@link SNIFF_BYTES} bytes, where PDF readers look for the
 * header: in a DICOM file (its preamble), the mark of a DICOM/PDF polyglot; in a PDF that pdf-lib
 * cannot open, a sign it was cut short rather than never a PDF (`pdf-inspection.ts`).
 */
export function hasPdfHeader(firstBytes: Uint8Array): boolean {
  return Buffer.from(firstBytes.buffer, firstBytes.byteOffset, Math.min(firstBytes.byteLength, SNIFF_BYTES)).includes(PDF_MAGIC);
}
