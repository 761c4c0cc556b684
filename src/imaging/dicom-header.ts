/**
 * DICOM Part 10 header parsing with dicom-parser, up to the Pixel Data and never into it.
 *
 * - Transfer syntaxes (PS3.5 §10): implicit and explicit VR little endian, explicit VR big endian
 *   (retired), deflated explicit VR little endian (dicom-parser is given a zlib `inflater`), and every
 *   encapsulated syntax (JPEG, JPEG-LS, JPEG 2000, RLE…), whose data sets are explicit little endian:
 *   parsing stops at (7FE0,0010) so no pixel data is ever decoded.
 * - Text (SH, LO, PN…) is decoded by Specific Character Set ({@link decoderFor}).
 * - Never throws: a file that is not Part 10, has no transfer syntax, is truncated or malformed gives
 *   `{ ok: false, code, reason }`, with what could be read before the fault in `partial`.
 * - Truncation is checked to the end of the file without reading pixel data: a Pixel Data element of
 *   defined length must fit in the file; an encapsulated one (undefined length, PS3.5 §A.4) is walked
 *   item header by item header (8 bytes each, read where they are), and a fragment that runs past the
 *   end of the file, or a file that ends inside an item header, is `truncated`. Before Pixel Data, a
 *   top-level element whose declared end lies past the end of the data, an end-of-file warning from
 *   dicom-parser, or an image storage SOP class (PS3.4 Annex B) with no Pixel Data, Float or Double
 *   Float Pixel Data is `truncated` too: a cut file is never read as an image without pixels, while
 *   SR, presentation states, KOS and other pixel-less classes still parse.
 * - Memory is bounded: a parse may read at most `MAX_HEADER_READS` element and item headers' worth
 *   (`dicom-parse-budget.ts`); a data set of millions of tiny elements, which would exhaust the parsing
 *   thread's heap and can abort the whole process, is `too-large` instead. A value the reader would
 *   decode is first checked against its VR's maximum length ({@link valueByteBound}): one far longer
 *   (a 400 MB Patient's Name in an implicit VR file) is never decoded; the field is left out and
 *   named in {@link DicomHeader.valuesNotRead}.
 * - The four UIDs the service keys on (study, series, SOP instance, SOP class) are required: one that is
 *   absent is `missing-uid`; one that is there but is no UID (over 64 characters, or characters other
 *   than digits and dots, PS3.5 §9.1) is `invalid-uid`, the reason giving the attribute and the length,
 *   never the value (a UID may be built from an MRN).
 *
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/sect_6.2.html (PS3.5 §6.2 VR lengths)
 * @see https://dicom.nema.org/medical/dicom/current/output/html/part10.html#chapter_7 (PS3.10 file format)
 * @see https://dicom.nema.org/medical/dicom/current/output/html/part05.html#chapter_10 (PS3.5 transfer syntaxes)
 * @see https://github.com/cornerstonejs/dicomParser
 * @packageDocumentation
 */
import dicomParser, { type DataSet } from 'dicom-parser';
import zlib from 'node:zlib';
import { looksLikeRawDataSet } from '../uploads/sniff';
import { decoderFor, isKnownCharacterSet, type TextDecode } from './dicom-charset';
import { DEFLATED_EXPLICIT_LITTLE_ENDIAN, IMAGE_STORAGE_SOP_CLASSES, MEDIA_STORAGE_DIRECTORY_SOP_CLASS, TAG } from './dicom-dictionary';
import { isHeaderReadBudgetExceeded, withHeaderReadBudget } from './dicom-parse-budget';

/** The header fields of one DICOM instance that the service uses. Strings are trimmed; absent = undefined. */
export interface DicomHeader {
  readonly transferSyntaxUid: string;
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly modality?: string;
  /** DA, as written (normally `YYYYMMDD`). */
  readonly studyDate?: string;
  /** TM, as written (`HHMMSS.FFFFFF`, leading parts only). */
  readonly studyTime?: string;
  /** `&ZZXX` offset of study date/time from UTC, when written. */
  readonly timezoneOffsetFromUtc?: string;
  readonly seriesNumber?: number;
  readonly instanceNumber?: number;
  readonly accessionNumber?: string;
  readonly studyDescription?: string;
  readonly seriesDescription?: string;
  readonly bodyPartExamined?: string;
  /** PN, decoded, all component groups (`Family^Given^Middle^Prefix^Suffix[=ideographic[=phonetic]]`). */
  readonly patientName?: string;
  readonly patientId?: string;
  readonly patientBirthDate?: string;
  readonly patientSex?: string;
  readonly numberOfFrames?: number;
  readonly rows?: number;
  readonly columns?: number;
  readonly specificCharacterSet?: string;
  /** Whether the data set has a top-level Pixel Data element. */
  readonly hasPixelData: boolean;
  /** Things read but doubtful (an unknown character set, parser warnings). */
  readonly warnings: readonly string[];
  /**
   * Fields left out because their value is far longer than DICOM allows (see {@link valueByteBound}):
   * one log-safe sentence each (attribute, length, bound; never the value). Absent when none.
   */
  readonly valuesNotRead?: readonly string[];
}

/** Why a file gave no header. */
export type DicomFailureCode =
  | 'not-part10'
  | 'no-transfer-syntax'
  | 'truncated'
  | 'malformed'
  | 'too-large'
  | 'too-many-items'
  | 'missing-uid'
  | 'invalid-uid'
  | 'dicomdir'
  | 'io'
  | 'timeout'
  | 'worker-failed';

/** The outcome of parsing one file. Plain data: it crosses worker boundaries unchanged. */
export type DicomParseResult =
  | { readonly ok: true; readonly header: DicomHeader }
  | { readonly ok: false; readonly code: DicomFailureCode; readonly reason: string; readonly partial?: Partial<DicomHeader> };

/** What {@link parseDicomPrefix} says when the prefix it got was not enough. */
export interface DicomNeedsMore {
  readonly ok: false;
  readonly code: 'needs-more';
  readonly reason: string;
}

/**
 * Reads `length` bytes of the file at `offset` (fewer at its end): how {@link parseDicomPrefix} looks at
 * item headers of encapsulated Pixel Data past the prefix it was given.
 */
export type ReadAt = (offset: number, length: number) => Uint8Array;

/** Largest inflated size accepted for a deflated data set (a deflate bomb stops here). */
export const MAX_INFLATED_BYTES = 128 * 1024 * 1024;

/** Parses a whole DICOM Part 10 file held in memory. Never throws. */
export function parseDicomHeader(bytes: Uint8Array): DicomParseResult {
  const result = parseDicomPrefix(bytes, bytes.byteLength);
  // With the whole file there is never more to read.
  if (!result.ok && result.code === 'needs-more') return { ok: false, code: 'malformed', reason: result.reason };
  return result;
}

/**
 * Parses the first bytes of a file of `fileSize` bytes. Returns `needs-more` when the prefix ends before
 * the header does (no Pixel Data reached, a parse fault, a deflated data set), or before the end of
 * encapsulated Pixel Data when there is no `readAt` to read its item headers where they are; the caller
 * then retries with the whole file. Never throws.
 */
export function parseDicomPrefix(bytes: Uint8Array, fileSize: number, readAt?: ReadAt): DicomParseResult | DicomNeedsMore {
  const complete = bytes.byteLength >= fileSize;
  try {
    return parseUnsafe(bytes, fileSize, complete, readAt);
  } catch (err) {
    // Defensive: parseUnsafe handles parser errors itself; anything else is a bug in a corner case.
    return complete ? { ok: false, code: 'malformed', reason: `unreadable DICOM: ${describe(err)}` } : needsMore(describe(err));
  }
}

function needsMore(reason: string): DicomNeedsMore {
  return { ok: false, code: 'needs-more', reason };
}

function parseUnsafe(bytes: Uint8Array, fileSize: number, complete: boolean, readAt: ReadAt | undefined): DicomParseResult | DicomNeedsMore {
  if (bytes.byteLength < 132) {
    if (!complete) return needsMore('shorter than the preamble');
    return { ok: false, code: 'not-part10', reason: `not a DICOM Part 10 file: only ${bytes.byteLength} bytes, shorter than the 128-byte preamble and 'DICM' prefix (PS3.10 §7.1)` };
  }
  if (!(bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d)) {
    const raw = looksLikeRawDataSet(Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 64)));
    return {
      ok: false,
      code: 'not-part10',
      reason:
        "not a DICOM Part 10 file: no 'DICM' prefix at byte 128 (PS3.10 §7.1)" +
        (raw ? '; it looks like a raw data set without preamble and File Meta Information' : ''),
    };
  }
  let dataSet: DataSet;
  try {
    dataSet = parseToPixelData(bytes);
  } catch (err) {
    // Too many elements, or a deflated data set that already inflates past the cap, is the verdict
    // whatever more of the file would say (more deflated bytes only inflate to more).
    if (!complete && !isHeaderReadBudgetExceeded(err) && !isInflateLimitExceeded(err)) return needsMore(describe(err));
    return failure(err);
  }
  const transferSyntaxUid = ascii({ ds: dataSet, notRead: [] }, TAG.TransferSyntaxUid) ?? '';
  const pixelData = dataSet.elements[TAG.PixelData];
  if (!complete && (pixelData === undefined || transferSyntaxUid === DEFLATED_EXPLICIT_LITTLE_ENDIAN)) {
    return needsMore(transferSyntaxUid === DEFLATED_EXPLICIT_LITTLE_ENDIAN ? 'deflated data set' : 'Pixel Data not reached');
  }
  let read = readHeader(dataSet, transferSyntaxUid);
  // Offsets are in the inflated array for a deflated data set (all of it is there), else in the file.
  const deflated = transferSyntaxUid === DEFLATED_EXPLICIT_LITTLE_ENDIAN;
  const available = deflated ? dataSet.byteArray.length : fileSize;
  if (pixelData?.hadUndefinedLength) {
    const inMemory = deflated ? dataSet.byteArray : complete ? bytes : undefined;
    const reader: ReadAt | undefined = inMemory
      ? (offset, length) => inMemory.subarray(offset, offset + length)
      : readAt && ((offset, length) => (offset + length <= bytes.byteLength ? bytes.subarray(offset, offset + length) : readAt(offset, length)));
    if (!reader) return needsMore('encapsulated Pixel Data not checked to its end');
    const walk = walkEncapsulatedPixelData(reader, pixelData.dataOffset, available);
    if ('fault' in walk) return { ok: false, code: walk.code, reason: walk.fault, partial: read };
    if (walk.warning) read = { ...read, warnings: [...(read.warnings ?? []), walk.warning] };
  } else if (pixelData) {
    const missing = pixelData.dataOffset + pixelData.length - available;
    if (missing > 0) {
      return {
        ok: false,
        code: 'truncated',
        reason: `truncated file: Pixel Data (7FE0,0010) declares ${pixelData.length} bytes but the file ends ${missing} bytes early (dicom-parser would report a buffer overrun)`,
        partial: read,
      };
    }
  }
  const cut = endsEarly(dataSet, available);
  if (cut !== undefined) return complete ? { ok: false, code: 'truncated', reason: cut, partial: read } : needsMore(cut);
  const mediaClass = ascii({ ds: dataSet, notRead: [] }, TAG.MediaStorageSopClassUid);
  if (mediaClass === MEDIA_STORAGE_DIRECTORY_SOP_CLASS || dataSet.elements[TAG.DirectoryRecordSequence]) {
    return { ok: false, code: 'dicomdir', reason: 'DICOMDIR (media directory of a CD, not an image): nothing to index', partial: read };
  }
  if (read.sopClassUid !== undefined && IMAGE_STORAGE_SOP_CLASSES.has(read.sopClassUid) && !PIXEL_DATA_TAGS.some((t) => dataSet.elements[t])) {
    return {
      ok: false,
      code: 'truncated',
      reason:
        `truncated file: SOP class ${read.sopClassUid} is an image storage class, whose instances must have Pixel Data (7FE0,0010) ` +
        `(PS3.4 Annex B), but the file ends at byte ${available} without it`,
      partial: read,
    };
  }
  const missingUids = (['studyInstanceUid', 'seriesInstanceUid', 'sopInstanceUid', 'sopClassUid'] as const).filter((k) => !read[k]);
  if (missingUids.length > 0) {
    // A UID that is there but is no UID says so (its length, never its value: it may be built from an MRN).
    const invalid = missingUids.flatMap((k) => UID_TAGS[k].map((tag) => invalidUidReason(dataSet, tag)).find((r) => r !== undefined) ?? []);
    const absent = missingUids.filter((k) => !UID_TAGS[k].some((tag) => invalidUidReason(dataSet, tag) !== undefined));
    const unread = read.valuesNotRead && read.valuesNotRead.length > 0 ? ` (${read.valuesNotRead.join('; ')})` : '';
    if (invalid.length > 0) {
      const rest = absent.length > 0 ? `; no ${absent.join(', ')} in the data set${unread}` : '';
      return { ok: false, code: 'invalid-uid', reason: `${invalid.join('; ')}${rest}`, partial: read };
    }
    return { ok: false, code: 'missing-uid', reason: `no ${missingUids.join(', ')} in the data set${unread}`, partial: read };
  }
  return {
    ok: true,
    header: { ...read, transferSyntaxUid, studyInstanceUid: read.studyInstanceUid ?? '', seriesInstanceUid: read.seriesInstanceUid ?? '', sopInstanceUid: read.sopInstanceUid ?? '', sopClassUid: read.sopClassUid ?? '' } as DicomHeader,
  };
}

/**
 * dicom-parser's parse up to Pixel Data, each parse within the header read budget. dicom-parser 1.8.21
 * (the latest release) reads the length of an explicit VR element of a 64-bit VR (OV, SV, UV, added in
 * 2019) as 16 bits, where PS3.5 §7.1.2 gives them 2 reserved bytes and a 32-bit length
 * (cornerstonejs/dicomParser#284), and loses its way there. Such elements come just before Pixel Data:
 * the Extended Offset Table (7FE0,0001) and its Lengths (7FE0,0002), OV, and the Encapsulated Pixel
 * Data Value Total Length (7FE0,0003), UV. So when a parse fails or finds no Pixel Data and the bytes
 * hold such an element header, the data set is parsed again up to it (`untilTag`), and
 * {@link walkPixelGroup} reads the rest of group 7FE0 to Pixel Data. A valid file costs nothing more.
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/chapter_7.html#sect_7.1.2
 * @see https://github.com/cornerstonejs/dicomParser/issues/284
 */
function parseToPixelData(bytes: Uint8Array): DataSet {
  let fault: unknown;
  let parsed: DataSet | undefined;
  try {
    parsed = withHeaderReadBudget(() => dicomParser.parseDicom(bytes, { untilTag: TAG.PixelData, inflater }));
    if (parsed.elements[TAG.PixelData]) return parsed;
  } catch (err) {
    if (isHeaderReadBudgetExceeded(err) || isInflateLimitExceeded(err)) throw err;
    fault = err;
  }
  const untilTag = sixtyFourBitPixelGroupTag(bytes);
  if (untilTag !== undefined) {
    try {
      const ds = withHeaderReadBudget(() => dicomParser.parseDicom(bytes, { untilTag, inflater }));
      const el = ds.elements[untilTag];
      // Only a top-level element stops the parse at `untilTag`; elsewhere the bytes were a value's.
      if (el?.vr !== undefined && SIXTY_FOUR_BIT_VRS.has(el.vr)) {
        walkPixelGroup(ds, el.dataOffset - 8);
        return ds;
      }
    } catch (err) {
      if (isHeaderReadBudgetExceeded(err)) throw err;
    }
  }
  if (parsed) return parsed;
  throw fault;
}

/** VRs of 64-bit values (PS3.5 §6.2), whose explicit VR length dicom-parser 1.8.21 misreads. */
const SIXTY_FOUR_BIT_VRS: ReadonlySet<string> = new Set(['OV', 'SV', 'UV']);

/** Explicit VRs with 2 reserved bytes and a 32-bit length (PS3.5 §7.1.2, Table 7.1-1); the others have a 16-bit length. */
const LONG_LENGTH_VRS: ReadonlySet<string> = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/**
 * The tag (dicom-parser spelling) of the first explicit VR little endian header of (7FE0,0001),
 * (7FE0,0002) or (7FE0,0003) with a 64-bit VR in `bytes`, or undefined.
 */
function sixtyFourBitPixelGroupTag(bytes: Uint8Array): string | undefined {
  const buf = asBuffer(bytes);
  for (let at = buf.indexOf(PIXEL_GROUP_LE); at >= 0 && at + 6 <= buf.length; at = buf.indexOf(PIXEL_GROUP_LE, at + 1)) {
    const element = buf.readUInt16LE(at + 2);
    if (element >= 0x0001 && element <= 0x0003 && SIXTY_FOUR_BIT_VRS.has(buf.toString('latin1', at + 4, at + 6))) {
      return `x7fe0${element.toString(16).padStart(4, '0')}`;
    }
  }
  return undefined;
}

/** Group 7FE0, little endian. */
const PIXEL_GROUP_LE = Buffer.from([0xe0, 0x7f]);

/**
 * Reads the explicit VR little endian element headers of group 7FE0 from `start` (the header of the
 * element dicom-parser stopped at) to Pixel Data (7FE0,0010) included, into `ds.elements`, each with
 * its true length and value offset; only headers are read. Stops at anything else (the checks after
 * the parse then judge the data set: no Pixel Data, or a value past the end, is `truncated`); a header
 * cut by the end of the bytes adds an end-of-file warning, as dicom-parser's own.
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/chapter_7.html#sect_7.1.2
 */
function walkPixelGroup(ds: DataSet, start: number): void {
  const arr = ds.byteArray;
  for (let at = start; ; ) {
    if (at + 8 > arr.length) {
      if (at < arr.length) ds.warnings.push(`eof encountered inside the header of an element of group 7FE0 at byte ${at}`);
      return;
    }
    const view = new DataView(arr.buffer, arr.byteOffset + at, arr.length - at);
    const element = view.getUint16(2, true);
    if (view.getUint16(0, true) !== 0x7fe0 || element > 0x0010) return;
    const vr = String.fromCharCode(view.getUint8(4), view.getUint8(5));
    const longForm = LONG_LENGTH_VRS.has(vr);
    if (longForm && at + 12 > arr.length) {
      ds.warnings.push(`eof encountered inside the header of an element of group 7FE0 at byte ${at}`);
      return;
    }
    const length = longForm ? view.getUint32(8, true) : view.getUint16(6, true);
    const dataOffset = at + (longForm ? 12 : 8);
    const tag = `x7fe0${element.toString(16).padStart(4, '0')}`;
    ds.elements[tag] = { tag, vr, length, dataOffset, ...(length === UNDEFINED_LENGTH ? { hadUndefinedLength: true } : {}) };
    if (tag === TAG.PixelData || length === UNDEFINED_LENGTH) return;
    at = dataOffset + length;
  }
}

/** The elements that hold an image's pixels (PS3.3 C.7.6.3, C.7.6.24): one of them is required in an image SOP class. */
const PIXEL_DATA_TAGS = [TAG.PixelData, TAG.FloatPixelData, TAG.DoubleFloatPixelData] as const;

/** The start of dicom-parser's warnings when a data set, sequence or item runs into the end of the bytes. */
const PARSER_EOF_WARNING = /^eof encountered/;

/**
 * Why a data set read up to Pixel Data is cut short, or undefined. dicom-parser stops quietly at the
 * end of the bytes in places (its implicit VR loop never checks a value's length against them; a
 * sequence of undefined length that runs into the end is a warning), so each top-level element's
 * declared end (value offset + length, PS3.5 §7.1) must lie within `end`, and an end-of-file warning
 * is a cut. Pixel Data itself is checked by the caller. A cut exactly between two elements leaves
 * neither sign: the image SOP class check catches that one.
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/chapter_7.html#sect_7.1
 */
function endsEarly(ds: DataSet, end: number): string | undefined {
  for (const [tag, el] of Object.entries(ds.elements)) {
    if (tag === TAG.PixelData || el.length === UNDEFINED_LENGTH) continue;
    const missing = el.dataOffset + el.length - end;
    if (missing > 0) return `truncated file: ${tagName(tag)} declares ${el.length} bytes but the file ends ${missing} bytes early`;
  }
  const eof = (Array.isArray(ds.warnings) ? ds.warnings : []).find((w) => PARSER_EOF_WARNING.test(w));
  return eof === undefined ? undefined : `truncated file: the data set ends before the file says it should (dicom-parser: ${eof})`;
}

/** `x0028105a` → `(0028,105A)`. */
function tagName(tag: string): string {
  return `(${tag.slice(1, 5).toUpperCase()},${tag.slice(5, 9).toUpperCase()})`;
}

const ITEM_GROUP = 0xfffe;
const ITEM = 0xe000;
const SEQUENCE_DELIMITATION_ITEM = 0xe0dd;
const UNDEFINED_LENGTH = 0xffffffff;
/**
 * Most items (Basic Offset Table and fragments) of encapsulated Pixel Data walked: real files carry a
 * few per frame, a crafted one could carry a million empty fragments per 8 MB. Past it the file is
 * refused (`too-many-items`), so the walk is bounded whatever the file declares.
 */
export const MAX_ENCAPSULATED_ITEMS = 2 ** 20;

/**
 * Walks encapsulated Pixel Data from `start` (just after its element header) to its Sequence
 * Delimitation Item (FFFE,E0DD), item header by item header: the Basic Offset Table, then the fragments
 * (FFFE,E000), each with a defined length (PS3.5 §A.4). Only the 8-byte headers are read. A fragment
 * that runs past `end` (the end of the file), or a file that ends inside an item header, is truncated;
 * anything but an item there is malformed. A file that ends right after a fragment, without the
 * delimiter, is read with a warning (some writers leave it out).
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/sect_A.4.html
 */
function walkEncapsulatedPixelData(
  readAt: ReadAt,
  start: number,
  end: number,
): { readonly fault: string; readonly code: 'truncated' | 'malformed' | 'too-many-items' } | { readonly warning?: string } {
  const itemName = (n: number): string => (n === 0 ? 'Basic Offset Table' : `fragment ${n}`);
  for (let at = start, n = 0; ; n++) {
    if (at >= end) {
      return { warning: `encapsulated Pixel Data (7FE0,0010) has no Sequence Delimitation Item: the file may have been cut after ${itemName(n - 1)}` };
    }
    const head = readAt(at, 8);
    if (at + 8 > end || head.byteLength < 8) {
      return { code: 'truncated', fault: `truncated file: it ends inside the header of Pixel Data (7FE0,0010) ${itemName(n)}, at byte ${end}` };
    }
    const view = new DataView(head.buffer, head.byteOffset, 8);
    const group = view.getUint16(0, true);
    const element = view.getUint16(2, true);
    const length = view.getUint32(4, true);
    if (group === ITEM_GROUP && element === SEQUENCE_DELIMITATION_ITEM) return {};
    if (n >= MAX_ENCAPSULATED_ITEMS) {
      return {
        code: 'too-many-items',
        fault: `encapsulated Pixel Data (7FE0,0010) holds more than ${MAX_ENCAPSULATED_ITEMS} items (fragments): refused, not indexed`,
      };
    }
    if (group !== ITEM_GROUP || element !== ITEM || length === UNDEFINED_LENGTH) {
      return { code: 'malformed', fault: `malformed DICOM — encapsulated Pixel Data (7FE0,0010): no item of defined length where ${itemName(n)} should be, at byte ${at}` };
    }
    const missing = at + 8 + length - end;
    if (missing > 0) {
      return {
        code: 'truncated',
        fault: `truncated file: Pixel Data (7FE0,0010) ${itemName(n)} declares ${length} bytes but the file ends ${missing} bytes early`,
      };
    }
    at += 8 + length;
  }
}

/** A deflated data set inflates past {@link MAX_INFLATED_BYTES}: zlib stopped there. */
class InflateLimitExceeded extends Error {
  override readonly name = 'InflateLimitExceeded';
  constructor() {
    super(`deflated data set inflates past ${MAX_INFLATED_BYTES} bytes`);
  }
}

/** Whether `err` (or the exception dicom-parser wrapped in it) is {@link InflateLimitExceeded}. */
function isInflateLimitExceeded(err: unknown): boolean {
  if (err instanceof InflateLimitExceeded) return true;
  return typeof err === 'object' && err !== null && 'exception' in err && (err as { exception: unknown }).exception instanceof InflateLimitExceeded;
}

/**
 * dicom-parser's `inflater` hook: header bytes + the raw-deflated rest (PS3.5 §A.5), capped. zlib stops
 * as soon as the output passes {@link MAX_INFLATED_BYTES} ({@link InflateLimitExceeded}): that holds for
 * a prefix of the file as for the whole, so the file is not read further.
 */
function inflater(arr: Uint8Array, position: number): Buffer {
  const input = Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
  let inflated: Buffer;
  try {
    inflated = zlib.inflateRawSync(input.subarray(position), {
      // Tolerate a truncated stream (a prefix read, or a damaged file): return what inflates.
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      maxOutputLength: MAX_INFLATED_BYTES,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException | null)?.code === 'ERR_BUFFER_TOO_LARGE') throw new InflateLimitExceeded();
    throw err;
  }
  return Buffer.concat([input.subarray(0, position), inflated]);
}

/** A failed parse: classified reason, and the fields read before the fault. */
function failure(err: unknown): DicomParseResult {
  const text = describe(err);
  // Before the partial data set is read: it may hold millions of elements (see dicom-parse-budget.ts).
  if (isHeaderReadBudgetExceeded(err)) return { ok: false, code: 'too-large', reason: text };
  if (isInflateLimitExceeded(err)) return { ok: false, code: 'too-large', reason: text };
  const partialSet = partialDataSet(err);
  const partial = partialSet ? readHeader(partialSet, '') : undefined;
  const withPartial = partial && Object.values(partial).some((v) => typeof v === 'string') ? { partial } : {};
  if (/0002,0010/.test(text)) {
    return { ok: false, code: 'no-transfer-syntax', reason: `invalid Part 10 file: the File Meta Information has no Transfer Syntax UID (0002,0010) — ${text}` };
  }
  if (/ERR_BUFFER_TOO_LARGE|Cannot create a Buffer larger|maxOutputLength/i.test(text)) {
    return { ok: false, code: 'too-large', reason: `deflated data set inflates past ${MAX_INFLATED_BYTES} bytes` };
  }
  if (/overrun|past end|end of buffer|eof/i.test(text)) {
    return { ok: false, code: 'truncated', reason: `truncated file — ${text}`, ...withPartial };
  }
  return { ok: false, code: 'malformed', reason: `malformed DICOM — ${text}`, ...withPartial };
}

/** dicom-parser throws Errors, strings, or `{ exception, dataSet }`. */
function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  if (err && typeof err === 'object' && 'exception' in err) return describe((err as { exception: unknown }).exception);
  return String(err);
}

function partialDataSet(err: unknown): DataSet | undefined {
  if (err && typeof err === 'object' && 'dataSet' in err) {
    const ds = (err as { dataSet: unknown }).dataSet;
    if (ds && typeof ds === 'object' && 'elements' in ds && 'byteArray' in ds) return ds as DataSet;
  }
  return undefined;
}

type MutableHeader = { -readonly [K in keyof DicomHeader]?: DicomHeader[K] };

/**
 * Longest value, in characters, of each VR the header reader decodes (PS3.5 §6.2, Table 6.2-1). PN is
 * 64 per component group, three groups and two `=` delimiters (§6.2.1).
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/sect_6.2.html
 */
const VR_MAX_CHARACTERS = { AE: 16, AS: 4, CS: 16, DA: 8, DS: 16, DT: 26, IS: 12, LO: 64, PN: 3 * 64 + 2, SH: 16, TM: 14, UI: 64 } as const;

/** A VR of {@link VR_MAX_CHARACTERS}. */
export type BoundedVr = keyof typeof VR_MAX_CHARACTERS;

/**
 * Tolerance over the standard's maximum: up to 4 bytes a character (UTF-8, GB18030, ISO 2022 escape
 * sequences), times 4 for writers that overrun the limit or write several values where one is
 * expected (a multi-valued Specific Character Set). A real header stays far below; a value past it
 * is damage or an attack, and is not decoded.
 */
export const VALUE_LENGTH_TOLERANCE = 16;

/**
 * Most bytes of a value of `vr` the header reader decodes: {@link VALUE_LENGTH_TOLERANCE} × the PS3.5
 * §6.2 maximum (PN 3,104 bytes, LO and UI 1,024, SH and CS 256, DA 128). Checked against the length
 * the element declares, before a byte of it is read.
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/sect_6.2.html
 */
export function valueByteBound(vr: BoundedVr): number {
  return VR_MAX_CHARACTERS[vr] * VALUE_LENGTH_TOLERANCE;
}

/** The attributes the header reader decodes: tag, name (for reasons), VR by the data dictionary (PS3.6). */
const FIELDS: Readonly<Record<string, { readonly name: string; readonly vr: BoundedVr }>> = {
  [TAG.TransferSyntaxUid]: { name: 'Transfer Syntax UID (0002,0010)', vr: 'UI' },
  [TAG.MediaStorageSopClassUid]: { name: 'Media Storage SOP Class UID (0002,0002)', vr: 'UI' },
  [TAG.MediaStorageSopInstanceUid]: { name: 'Media Storage SOP Instance UID (0002,0003)', vr: 'UI' },
  [TAG.SpecificCharacterSet]: { name: 'Specific Character Set (0008,0005)', vr: 'CS' },
  [TAG.SopClassUid]: { name: 'SOP Class UID (0008,0016)', vr: 'UI' },
  [TAG.SopInstanceUid]: { name: 'SOP Instance UID (0008,0018)', vr: 'UI' },
  [TAG.StudyDate]: { name: 'Study Date (0008,0020)', vr: 'DA' },
  [TAG.StudyTime]: { name: 'Study Time (0008,0030)', vr: 'TM' },
  [TAG.AccessionNumber]: { name: 'Accession Number (0008,0050)', vr: 'SH' },
  [TAG.Modality]: { name: 'Modality (0008,0060)', vr: 'CS' },
  [TAG.TimezoneOffsetFromUtc]: { name: 'Timezone Offset From UTC (0008,0201)', vr: 'SH' },
  [TAG.StudyDescription]: { name: 'Study Description (0008,1030)', vr: 'LO' },
  [TAG.SeriesDescription]: { name: 'Series Description (0008,103E)', vr: 'LO' },
  [TAG.PatientName]: { name: "Patient's Name (0010,0010)", vr: 'PN' },
  [TAG.PatientId]: { name: 'Patient ID (0010,0020)', vr: 'LO' },
  [TAG.PatientBirthDate]: { name: "Patient's Birth Date (0010,0030)", vr: 'DA' },
  [TAG.PatientSex]: { name: "Patient's Sex (0010,0040)", vr: 'CS' },
  [TAG.BodyPartExamined]: { name: 'Body Part Examined (0018,0015)', vr: 'CS' },
  [TAG.StudyInstanceUid]: { name: 'Study Instance UID (0020,000D)', vr: 'UI' },
  [TAG.SeriesInstanceUid]: { name: 'Series Instance UID (0020,000E)', vr: 'UI' },
  [TAG.SeriesNumber]: { name: 'Series Number (0020,0011)', vr: 'IS' },
  [TAG.InstanceNumber]: { name: 'Instance Number (0020,0013)', vr: 'IS' },
  [TAG.NumberOfFrames]: { name: 'Number of Frames (0028,0008)', vr: 'IS' },
};

/**
 * The data set being read, and the fields left out of it for their length. Every decoding helper
 * gets its bytes through {@link valueBytes}, which enforces {@link valueByteBound}.
 */
interface Source {
  readonly ds: DataSet;
  readonly notRead: string[];
}

/** Reads every field it can; tolerant of absent and damaged elements. */
function readHeader(ds: DataSet, transferSyntaxUid: string): Partial<DicomHeader> {
  const warnings: string[] = [];
  const src: Source = { ds, notRead: [] };
  const charset = ascii(src, TAG.SpecificCharacterSet);
  if (charset !== undefined && !isKnownCharacterSet(charset)) warnings.push(`unknown Specific Character Set '${charset}': text read as latin1`);
  const decode = decoderFor(charset);
  const h: MutableHeader = {
    transferSyntaxUid,
    sopClassUid: uid(src, TAG.SopClassUid) ?? uid(src, TAG.MediaStorageSopClassUid),
    sopInstanceUid: uid(src, TAG.SopInstanceUid) ?? uid(src, TAG.MediaStorageSopInstanceUid),
    studyInstanceUid: uid(src, TAG.StudyInstanceUid),
    seriesInstanceUid: uid(src, TAG.SeriesInstanceUid),
    modality: ascii(src, TAG.Modality),
    studyDate: ascii(src, TAG.StudyDate),
    studyTime: ascii(src, TAG.StudyTime),
    timezoneOffsetFromUtc: ascii(src, TAG.TimezoneOffsetFromUtc),
    seriesNumber: integer(src, TAG.SeriesNumber),
    instanceNumber: integer(src, TAG.InstanceNumber),
    accessionNumber: text(src, TAG.AccessionNumber, decode),
    studyDescription: text(src, TAG.StudyDescription, decode),
    seriesDescription: text(src, TAG.SeriesDescription, decode),
    bodyPartExamined: ascii(src, TAG.BodyPartExamined),
    patientName: text(src, TAG.PatientName, decode),
    patientId: text(src, TAG.PatientId, decode),
    patientBirthDate: ascii(src, TAG.PatientBirthDate),
    patientSex: ascii(src, TAG.PatientSex),
    numberOfFrames: integer(src, TAG.NumberOfFrames),
    rows: uint16(ds, TAG.Rows),
    columns: uint16(ds, TAG.Columns),
    specificCharacterSet: charset,
    hasPixelData: ds.elements[TAG.PixelData] !== undefined,
    warnings: [...warnings, ...(Array.isArray(ds.warnings) ? ds.warnings.slice(0, 10) : [])],
    valuesNotRead: src.notRead.length > 0 ? [...new Set(src.notRead)] : undefined,
  };
  for (const key of Object.keys(h) as (keyof MutableHeader)[]) if (h[key] === undefined) delete h[key];
  return h as Partial<DicomHeader>;
}

/**
 * The value bytes of an element, clamped to the array; undefined when absent, empty or undefined-length.
 * A value declared longer than its VR's {@link valueByteBound} is undefined too, and noted in
 * `src.notRead`: its length is known from the element header, so not one byte of it is read.
 */
function valueBytes(src: Source, tag: string): Uint8Array | undefined {
  const { ds } = src;
  const el = ds.elements[tag];
  if (!el || !(el.length > 0) || el.length === 0xffffffff) return undefined;
  const field = FIELDS[tag];
  if (field && el.length > valueByteBound(field.vr)) {
    src.notRead.push(
      `${field.name} not read: its value is ${el.length} bytes, over the ${valueByteBound(field.vr)}-byte bound for ${field.vr} ` +
        `(${VALUE_LENGTH_TOLERANCE} × the ${VR_MAX_CHARACTERS[field.vr]}-character maximum of PS3.5 §6.2)`,
    );
    return undefined;
  }
  const start = el.dataOffset;
  const end = Math.min(start + el.length, ds.byteArray.length);
  if (!(start >= 0) || start >= end) return undefined;
  return ds.byteArray.subarray(start, end);
}

/**
 * The sentence a file's row carries when fields were left out for their length
 * ({@link DicomHeader.valuesNotRead}); undefined when none were.
 */
export function valuesNotReadReason(header: Pick<DicomHeader, 'valuesNotRead'>): string | undefined {
  const notes = header.valuesNotRead ?? [];
  return notes.length > 0 ? `values far longer than DICOM allows were left out: ${notes.join('; ')}` : undefined;
}

/**
 * A value without its padding. Padding is a trailing space (text) or NUL (UI); leading spaces are
 * insignificant for these VRs (DICOM PS3.5 §6.2). A NUL anywhere else (`Doe\0Archibald`) is made
 * storable where the metadata is written (`upload-repository.ts`, `util/storable-text.ts`).
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/sect_6.2.html
 */
function trimValue(value: string): string | undefined {
  const trimmed = value.replace(/[\0\s]+$/u, '').replace(/^[\s]+/u, '');
  return trimmed === '' ? undefined : trimmed;
}

/** A Buffer view of the same bytes (no copy): Buffer's latin1 decoding is much faster than TextDecoder's. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A default-repertoire value (UI, CS, DA, TM, IS…). */
function ascii(src: Source, tag: string): string | undefined {
  const bytes = valueBytes(src, tag);
  return bytes ? trimValue(asBuffer(bytes).toString('latin1')) : undefined;
}

/** Longest UID, in characters (PS3.5 §9.1). */
const MAX_UID_CHARACTERS = 64;
/** A UID as the reader accepts it: digits and dots, at most {@link MAX_UID_CHARACTERS} (PS3.5 §9.1). */
const UID_PATTERN = /^[0-9.]{1,64}$/;

function uid(src: Source, tag: string): string | undefined {
  const value = ascii(src, tag);
  return value && UID_PATTERN.test(value) ? value : undefined;
}

/** The elements a required UID of the header is read from, in order of preference (see {@link readHeader}). */
const UID_TAGS = {
  studyInstanceUid: [TAG.StudyInstanceUid],
  seriesInstanceUid: [TAG.SeriesInstanceUid],
  sopInstanceUid: [TAG.SopInstanceUid, TAG.MediaStorageSopInstanceUid],
  sopClassUid: [TAG.SopClassUid, TAG.MediaStorageSopClassUid],
} as const;

/**
 * Why the UID element `tag` is present but was not taken as a UID (log-safe: the attribute, the length
 * and what is wrong, never the value), or undefined when it is absent, valid, or too long to read at all
 * (that one is told by {@link DicomHeader.valuesNotRead}).
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/chapter_9.html (PS3.5 §9.1 UID encoding)
 */
function invalidUidReason(ds: DataSet, tag: string): string | undefined {
  const field = FIELDS[tag];
  if (!field) return undefined;
  const src: Source = { ds, notRead: [] };
  const value = ascii(src, tag);
  if (value === undefined || UID_PATTERN.test(value)) return undefined;
  const length = value.length;
  const faults = [
    `${length} character${length === 1 ? '' : 's'}`,
    ...(length > MAX_UID_CHARACTERS ? [`at most ${MAX_UID_CHARACTERS}`] : []),
    ...(/[^0-9.]/.test(value) ? ['characters other than digits and dots'] : []),
  ];
  return `${field.name} is present but not a valid UID (${faults.join('; ')})`;
}

function text(src: Source, tag: string, decode: TextDecode): string | undefined {
  const bytes = valueBytes(src, tag);
  return bytes ? trimValue(decode(bytes)) : undefined;
}

/**
 * An IS value (first value if multi-valued), where it fits a FHIR unsignedInt (0..2,147,483,647, what
 * series and instance numbers and frame counts become): DICOM allows `-1` or twelve digits.
 */
function integer(src: Source, tag: string): number | undefined {
  const value = ascii(src, tag)?.split('\\')[0]?.trim();
  if (!value || !/^[+-]?\d{1,12}$/.test(value)) return undefined;
  const n = Number.parseInt(value, 10);
  return n >= 0 && n <= 2_147_483_647 ? n : undefined;
}

function uint16(ds: DataSet, tag: string): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length < 2 || el.dataOffset + 2 > ds.byteArray.length) return undefined;
  try {
    return ds.uint16(tag);
  } catch {
    return undefined;
  }
}
