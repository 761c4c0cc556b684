/**
 * How much of a DICOM file to read before parsing its header again: a geometric series from a small
 * head (64 KiB by default) up to the whole file.
 *
 * A Part 10 file is the preamble, the File Meta Information and the data set, read in order
 * (PS3.10 §7.1); in the data set every element declares its length before its value (PS3.5 §7.1), so the
 * header the service reads ends where Pixel Data (7FE0,0010) starts, and a prefix that reaches that
 * element is enough. Most headers end in the first 64 KiB; some (large private CSA headers, icon
 * images, overlays) run to a few MiB. Growing the prefix ×{@link PREFIX_GROWTH} at each step reads at
 * most {@link PREFIX_GROWTH} × the header (a 2 MiB header: a 16 MiB read), never the whole of a
 * multi-frame image of hundreds of MB; the parses that came short cost together less than one
 * fifteenth of the last. A file whose header has no end before the file's (no Pixel Data: an
 * encapsulated PDF, a structured report; or a deflated data set) is read to its end, as it must be, up
 * to the cap of `dicom-file-prefix.ts` (`MAX_HEADER_PREFIX_BYTES`, 64 MiB): the caller passes the
 * smaller of the file's size and the cap.
 *
 * @see https://dicom.nema.org/medical/dicom/current/output/html/part10.html#sect_7.1 (PS3.10 §7.1 file format)
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/chapter_7.html (PS3.5 §7 data set encoding)
 * @packageDocumentation
 */

/** Factor between one prefix and the next. */
export const PREFIX_GROWTH = 16;

/**
 * The prefix sizes to try for a file of `size` bytes, first `head` (at least 1), each
 * {@link PREFIX_GROWTH} × the previous, the last exactly `size`. Strictly increasing; `[0]` for an empty
 * file.
 */
export function prefixSteps(size: number, head: number): number[] {
  const steps: number[] = [];
  for (let want = Math.max(1, Math.floor(head)); ; want *= PREFIX_GROWTH) {
    const step = Math.min(want, size);
    steps.push(step);
    if (step >= size) return steps;
  }
}
