/**
 * A bound on what one dicom-parser parse may build in memory.
 *
 * dicom-parser keeps an object for every element and sequence item it reads (a DataSet and an element
 * map per item), about 30–60 bytes of V8 heap per 16-bit read of the file. A data set of millions of
 * tiny elements or empty items (8 bytes each in the file: a 32 MB file holds 4 million) therefore needs
 * more heap than the parsing thread has (`DicomWorkerPool`: 256 MB). dicom-parser has no option to
 * limit this, and running out of heap in a worker thread does not reliably end only the thread: a large
 * allocation that fails aborts the whole process ("FATAL ERROR: … JavaScript heap out of memory",
 * https://github.com/nodejs/node/issues/47224), i.e. the ingest worker, and the API with it in role
 * `all` — and the upload is queued again at start.
 *
 * So every parse runs with a budget of 16-bit reads ({@link MAX_HEADER_READS}): each element or item
 * header costs two to four of them (its tag, a short length, a peek at the next tag), scanning for a
 * delimiter one per two bytes. The budget is counted in `ByteStream.prototype.readUint16`, the only way
 * dicom-parser 1.8 reads a tag (`readTag`), whichever transfer syntax and nesting, the File Meta
 * Information included; it is wrapped once, here, and counts only inside {@link withHeaderReadBudget}.
 * Past the budget the parse stops with {@link HeaderReadBudgetExceeded}: a verdict on the file, never a
 * retry.
 *
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/chapter_7.html (PS3.5 §7: data set, elements, items)
 * @see https://github.com/cornerstonejs/dicomParser/blob/master/src/readTag.js
 * @packageDocumentation
 */
import dicomParser from 'dicom-parser';

/**
 * Most 16-bit reads of one parse: at the worst measured cost (about 63 bytes of heap per read, a data
 * set of empty sequences) some 130 MB, half the parsing thread's heap. A genuine header stays far
 * below: 650,000 plain elements, or an enhanced multi-frame object of several thousand frames with
 * their per-frame functional groups.
 */
export const MAX_HEADER_READS = 2_000_000;

/** The parse read more than its budget: the header is too large to index safely. */
export class HeaderReadBudgetExceeded extends Error {
  override readonly name = 'HeaderReadBudgetExceeded';
  constructor(readonly budget: number) {
    super(`the data set holds more elements and items than a DICOM header of an image has (over ${budget} reads before Pixel Data); not indexed, to bound memory`);
  }
}

/** Reads left in the parse under way; undefined outside {@link withHeaderReadBudget}. */
let readsLeft: number | undefined;
let budgetOfParse = MAX_HEADER_READS;

const originalReadUint16 = dicomParser.ByteStream.prototype.readUint16;
dicomParser.ByteStream.prototype.readUint16 = function readUint16Metered(this: dicomParser.ByteStream): number {
  if (readsLeft !== undefined && --readsLeft < 0) throw new HeaderReadBudgetExceeded(budgetOfParse);
  return originalReadUint16.call(this);
};

/**
 * Runs a synchronous dicom-parser call with a budget of 16-bit reads.
 * @throws {HeaderReadBudgetExceeded} (possibly wrapped by dicom-parser as `{ exception, dataSet }`)
 *   when the call reads more.
 */
export function withHeaderReadBudget<T>(parse: () => T, budget: number = MAX_HEADER_READS): T {
  const outer = readsLeft;
  const outerBudget = budgetOfParse;
  readsLeft = budget;
  budgetOfParse = budget;
  try {
    return parse();
  } finally {
    readsLeft = outer;
    budgetOfParse = outerBudget;
  }
}

/** Whether `err` (or the exception dicom-parser wrapped in it) is {@link HeaderReadBudgetExceeded}. */
export function isHeaderReadBudgetExceeded(err: unknown): err is HeaderReadBudgetExceeded | { exception: HeaderReadBudgetExceeded } {
  if (err instanceof HeaderReadBudgetExceeded) return true;
  return typeof err === 'object' && err !== null && 'exception' in err && (err as { exception: unknown }).exception instanceof HeaderReadBudgetExceeded;
}
