/**
 * Safe, streaming extraction of a zip a family uploaded (typically a CD export: a DICOMDIR tree).
 *
 * Approach: the central directory is read first, in full, without extracting anything; archive-wide
 * limits (entry count, total inflated size, inflation ratio) are checked there and a breach stops the
 * whole archive ({@link ZipLimitError}) before a byte is written. Then each accepted entry is streamed
 * to disk (yauzl with `validateEntrySizes`, so an entry cannot inflate past its declared size), hashed
 * (SHA-256, the blob store key) and CRC-checked on the way, and sniffed by content. Entries that are
 * unsafe or unusable (absolute paths, `..`, symlinks and other non-regular files, encrypted entries,
 * unknown compression, over the per-entry limit, corrupt data) are refused one by one with a reason; the
 * rest of the archive proceeds.
 *
 * An entry whose name an earlier entry has (zips allow it; some tools append instead of replacing) is
 * extracted too, since files are written under numbers: when its content differs it is kept under a
 * distinct name, `a/IM1 (2)` ({@link ExtractedFile.sameNameAs}), for ingest to flag; when its content
 * is the same it is refused as a duplicate, which loses nothing (the blob store is content-addressed:
 * the earlier entry's file is those bytes).
 *
 * A failure of the machine (a full disk, ENOSPC; a failing one, EIO; too many open files) is no verdict
 * on the archive or an entry: it is thrown as it came ({@link isSystemError}), after removing what was
 * written, so the caller retries later instead of refusing the family's file.
 *
 * Files are written under numbers (`<destDir>/<n>`), never under their entry names: a CD's folder
 * names may be the child's name, birth date or MRN, and a path is what file system errors, and so
 * logs and failed-job reasons, quote. The entry name is kept as data ({@link ExtractedFile.name}).
 *
 * @see https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT
 * @see https://github.com/thejoshwolfe/yauzl
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { type FileKind, SNIFF_BYTES, sniffFileKind } from './sniff';
import { checkEntryName } from './zip-entry-name';
import { forEachLimited } from '../util/for-each-limited';
import { isSystemError } from '../util/system-error';

/** Limits of one archive. */
export interface ZipLimits {
  /** Most entries (files and folders) in the central directory; more stops the archive. */
  readonly maxEntries: number;
  /** Most inflated bytes over all extracted entries; more stops the archive. */
  readonly maxTotalBytes: number;
  /** Highest inflated/compressed ratio, per entry and for the archive; higher stops the archive (zip bomb). */
  readonly maxRatio: number;
  /** Largest single entry; a larger entry is refused, the rest proceeds. */
  readonly maxEntryBytes: number;
  /**
   * The ratio is only judged on entries (and archives) that inflate to at least this many bytes
   * (default 1 MiB): a small file of zeros legitimately compresses 1000:1 and harms no one.
   */
  readonly ratioFloorBytes?: number;
}

/** One extracted file. */
export interface ExtractedFile {
  /** The normalised entry name (relative, `/`-separated). */
  readonly name: string;
  /** Absolute path of the extracted file: `destDir/<n>`, n counting the archive's files (no part of the entry name). */
  readonly path: string;
  readonly size: number;
  /** SHA-256 of the content, hex. */
  readonly sha256: string;
  /**
   * SHA-1 of the content, base64: FHIR `Attachment.hash`, computed in the same pass as the SHA-256 so that
   * no file (not even one too large to inspect) reaches a DocumentReference without it.
   * @see https://hl7.org/fhir/R4/datatypes.html#Attachment
   */
  readonly sha1Base64: string;
  /** The kind sniffed from its first bytes. */
  readonly kind: FileKind;
  /**
   * The entry name as the archive gives it, when an earlier entry has that name with other content: the
   * file is listed under a distinct {@link name} (`a/IM1 (2)`). Absent for the first entry of a name.
   */
  readonly sameNameAs?: string;
}

/** The reason a zip entry refused for repeating an earlier entry's name and content gives. */
export const DUPLICATE_ENTRY_REASON = 'duplicate entry name: the same content as an earlier entry of that name, which is kept';

/** An entry that was not extracted, and why. */
export interface RefusedEntry {
  readonly name: string;
  readonly reason: string;
}

/** What {@link extractZip} did. */
export interface ZipExtraction {
  readonly files: ExtractedFile[];
  readonly refused: RefusedEntry[];
}

/** Why a whole archive was stopped. */
export type ZipLimitCode = 'too-many-entries' | 'too-large' | 'ratio' | 'invalid-zip';

/** The whole archive is refused: a limit of {@link ZipLimits} or an unreadable zip. Nothing is left extracted. */
export class ZipLimitError extends Error {
  override readonly name = 'ZipLimitError';
  constructor(
    readonly code: ZipLimitCode,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULT_RATIO_FLOOR = 1024 * 1024;

/**
 * Entries extracted at once. One at a time, a CD's files waited on each chunk's inflate and write in
 * turn: bench:dicom's zip row (340 entries, 28 MB) spent ~0.5–0.8 s unzipping.
 */
const EXTRACT_CONCURRENCY = 4;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const MADE_BY_UNIX = 3;

/**
 * Extracts `zipPath` into `destDir` (created if missing; should be a fresh, empty folder) within `limits`.
 * @throws {ZipLimitError} when the archive breaks an archive-wide limit or is not a readable zip; files
 *   already written are removed.
 * @throws the system error itself ({@link isSystemError}: disk full or failing) when reading the archive
 *   or writing an entry fails; files already written, and the one being written, are removed.
 */
export async function extractZip(zipPath: string, destDir: string, limits: ZipLimits): Promise<ZipExtraction> {
  const root = path.resolve(destDir);
  let zip: ZipFile;
  try {
    zip = await openZip(zipPath);
  } catch (err) {
    if (isSystemError(err)) throw err;
    throw new ZipLimitError('invalid-zip', `not a readable zip archive: ${message(err)}`);
  }
  const written: string[] = [];
  /** The archive as opened for each extraction lane (lane 0 reads through the first; see below). */
  const zips: ZipFile[] = [zip];
  try {
    if (zip.entryCount > limits.maxEntries) {
      throw new ZipLimitError('too-many-entries', `the archive has ${zip.entryCount} entries; at most ${limits.maxEntries} are accepted`);
    }
    const entries = await readCentralDirectory(zip);
    const plan = planExtraction(entries, limits, zip.fileSize);
    fs.mkdirSync(root, { recursive: true });
    const files: ExtractedFile[] = [];
    const refused = [...plan.refused];
    // Extracted a few at a time (each entry's inflate and writes wait on the thread pool), then judged in
    // the archive's order, as if one after another: the first of a name keeps it.
    const items = plan.accepted.filter((item) => !item.isDirectory);
    const outcomes = new Array<Awaited<ReturnType<typeof extractEntry>> | undefined>(items.length);
    // Each lane reads its entries through an opened archive of its own: yauzl's streams of one opened
    // archive queue their reads on it, and one destroyed while its read waits in that queue (its entry's
    // write failed: a full disk) makes the read throw where nobody can catch it ("Cannot read properties
    // of null (reading 'fd')" in yauzl's fd-slicer), which would end the process.
    await forEachLimited([...items.keys()], EXTRACT_CONCURRENCY, async (n, lane) => {
      const item = items[n] as PlannedEntry;
      const laneZip = (zips[lane] ??= await openZip(zipPath));
      const outcome = await extractEntry(laneZip, item.entry, path.join(root, String(n)));
      if (!('reason' in outcome)) written.push(path.join(root, String(n)));
      outcomes[n] = outcome;
    });
    /** Contents (SHA-256) extracted under each entry name. */
    const contents = new Map<string, Set<string>>();
    for (const [n, item] of items.entries()) {
      const target = path.join(root, String(n));
      const outcome = outcomes[n];
      if (outcome === undefined) throw new Error(`entry ${n} was not extracted`);
      if ('reason' in outcome) {
        refused.push({ name: item.relativePath, reason: outcome.reason });
        continue;
      }
      let seen = contents.get(item.relativePath);
      if (!seen) contents.set(item.relativePath, (seen = new Set()));
      if (seen.has(outcome.sha256)) {
        fs.rmSync(target, { force: true });
        refused.push({ name: item.relativePath, reason: DUPLICATE_ENTRY_REASON });
        continue;
      }
      seen.add(outcome.sha256);
      // The first file of a name keeps it; a later one of other content gets the next free `name (n)`.
      const renamed = seen.size > 1;
      const name = renamed ? plan.names.next(item.relativePath) : item.relativePath;
      files.push({ name, path: target, ...outcome, ...(renamed ? { sameNameAs: item.relativePath } : {}) });
    }
    return { files, refused };
  } catch (err) {
    for (const file of written) fs.rmSync(file, { force: true });
    if (err instanceof ZipLimitError || isSystemError(err)) throw err;
    throw new ZipLimitError('invalid-zip', `unreadable zip archive: ${message(err)}`);
  } finally {
    for (const opened of zips) opened.close();
  }
}

/** The archive opened for reading its central directory or its entries; closed by the caller (`autoClose: false`). */
function openZip(zipPath: string): Promise<ZipFile> {
  return yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false, validateEntrySizes: true, decodeStrings: false, strictFileNames: false });
}

interface PlannedEntry {
  readonly entry: Entry;
  readonly relativePath: string;
  readonly isDirectory: boolean;
}

/**
 * Distinct names for entries that repeat an earlier entry's name: `a/IM1 (2)`, `a/IM1 (3)`…, never a
 * name another entry of the archive has.
 */
class DistinctNames {
  private readonly taken: Set<string>;
  constructor(names: Iterable<string>) {
    this.taken = new Set(names);
  }
  next(name: string): string {
    for (let n = 2; ; n++) {
      const candidate = `${name} (${n})`;
      if (!this.taken.has(candidate)) {
        this.taken.add(candidate);
        return candidate;
      }
    }
  }
}

function readCentralDirectory(zip: ZipFile): Promise<Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: Entry[] = [];
    zip.on('entry', (entry: Entry) => {
      entries.push(entry);
      zip.readEntry();
    });
    zip.once('end', () => resolve(entries));
    zip.once('error', reject);
    zip.readEntry();
  });
}

/** Decides per entry, and checks the archive-wide limits on what would be extracted. */
function planExtraction(entries: readonly Entry[], limits: ZipLimits, archiveBytes: number): { accepted: PlannedEntry[]; refused: RefusedEntry[]; names: DistinctNames } {
  const floor = limits.ratioFloorBytes ?? DEFAULT_RATIO_FLOOR;
  const accepted: PlannedEntry[] = [];
  const refused: RefusedEntry[] = [];
  /** Every accepted name of the archive: a distinct name for a repeated one is none of them. */
  const names: string[] = [];
  let total = 0;
  for (const entry of entries) {
    const rawName = entryName(entry);
    const checked = checkEntryName(rawName);
    if (!checked.ok) {
      // The raw name is what was refused, NUL bytes and all: kept readable and storable (U+FFFD for them).
      refused.push({ name: rawName, reason: checked.reason });
      continue;
    }
    const name = checked.relativePath;
    names.push(name);
    const type = unixFileType(entry);
    if (type === S_IFLNK) {
      refused.push({ name, reason: 'symbolic link refused' });
      continue;
    }
    const isDirectory = checked.isDirectory || type === S_IFDIR;
    if (type !== undefined && type !== S_IFREG && type !== S_IFDIR) {
      refused.push({ name, reason: 'not a regular file' });
      continue;
    }
    if (isDirectory) {
      accepted.push({ entry, relativePath: name, isDirectory });
      continue;
    }
    if (entry.isEncrypted()) {
      refused.push({ name, reason: 'encrypted entry (password-protected zip)' });
      continue;
    }
    if (!entry.canDecodeFileData()) {
      refused.push({ name, reason: `unsupported compression method ${entry.compressionMethod}` });
      continue;
    }
    if (entry.uncompressedSize > limits.maxEntryBytes) {
      refused.push({ name, reason: `entry inflates to ${entry.uncompressedSize} bytes; at most ${limits.maxEntryBytes} per file` });
      continue;
    }
    // A name seen before is extracted all the same (under a number): its content decides (extractZip).
    const ratio = entry.uncompressedSize / Math.max(entry.compressedSize, 1);
    if (entry.uncompressedSize >= floor && ratio > limits.maxRatio) {
      throw new ZipLimitError('ratio', `entry ${name} inflates ${ratio.toFixed(0)}:1; at most ${limits.maxRatio}:1 (zip bomb?)`);
    }
    total += entry.uncompressedSize;
    if (total > limits.maxTotalBytes) {
      throw new ZipLimitError('too-large', `the archive inflates to more than ${limits.maxTotalBytes} bytes`);
    }
    accepted.push({ entry, relativePath: name, isDirectory: false });
  }
  const archiveRatio = total / Math.max(archiveBytes, 1);
  if (total >= floor && archiveRatio > limits.maxRatio) {
    throw new ZipLimitError('ratio', `the archive inflates ${archiveRatio.toFixed(0)}:1; at most ${limits.maxRatio}:1 (zip bomb?)`);
  }
  return { accepted, refused, names: new DistinctNames(names) };
}

/** The entry name: Info-ZIP Unicode Path field, else UTF-8 (flag bit 11) or CP437, as yauzl decodes it. */
function entryName(entry: Entry): string {
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
}

/** The Unix file type from the external attributes, when the entry was made on Unix. */
function unixFileType(entry: Entry): number | undefined {
  if (entry.versionMadeBy >> 8 !== MADE_BY_UNIX) return undefined;
  const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
  if (mode === 0) return undefined;
  return mode & S_IFMT;
}

/**
 * Streams one entry to `target`, hashing and CRC-checking it; refuses (and removes) it on corrupt data.
 * A system error (the disk full or failing, the archive unreadable) removes it and is thrown: no verdict.
 */
async function extractEntry(
  zip: ZipFile,
  entry: Entry,
  target: string,
): Promise<{ size: number; sha256: string; sha1Base64: string; kind: FileKind } | { reason: string }> {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  // `target` is a fresh number in our own folder: failing to create it is the machine's fault (thrown).
  const handle = await fs.promises.open(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  const hash = createHash('sha256');
  const sha1 = createHash('sha1');
  const head: Buffer[] = [];
  let headBytes = 0;
  let crc = 0;
  let size = 0;
  try {
    const stream = await zip.openReadStreamPromise(entry);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      sha1.update(chunk);
      crc = crc32(chunk, crc);
      if (headBytes < SNIFF_BYTES) {
        head.push(chunk.subarray(0, SNIFF_BYTES - headBytes));
        headBytes += Math.min(chunk.length, SNIFF_BYTES - headBytes);
      }
      size += chunk.length;
      await handle.write(chunk);
    }
    if (crc >>> 0 !== entry.crc32 >>> 0) throw new Error('CRC-32 mismatch: the entry is corrupt');
    await handle.close();
    return { size, sha256: hash.digest('hex'), sha1Base64: sha1.digest('base64'), kind: sniffFileKind(Buffer.concat(head)) };
  } catch (err) {
    await handle.close().catch(() => undefined);
    fs.rmSync(target, { force: true });
    if (isSystemError(err)) throw err;
    return { reason: `corrupt entry: ${message(err)}` };
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
