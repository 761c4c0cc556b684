/**
 * Large DICOM files written to disk in a moment: a real header (here padded by one big private element,
 * as CSA headers and icon images pad real ones), then Pixel Data of hundreds of MB left as a hole in a
 * sparse file (`ftruncate`), so nothing of that size is ever built in memory.
 */
import fs from 'node:fs';
import { element } from '../../src/imaging/synthetic-dicom';

export interface LargeDicom {
  /** Study UID; the series is `uidRoot.0`, the instance `uidRoot.1`. */
  readonly uidRoot: string;
  /** Bytes of the private (0019,1010) OB value before Pixel Data. */
  readonly privateBytes: number;
  /** Native Pixel Data of this many bytes (even), or encapsulated: `fragments` of `fragmentBytes`. */
  readonly pixel: { readonly bytes: number } | { readonly fragments: number; readonly fragmentBytes: number };
  readonly frames: number;
}

/** Where things are in a file written by {@link writeLargeDicom}. */
export interface LargeDicomLayout {
  readonly size: number;
  /** Offset of the Pixel Data element: the header is the bytes before it. */
  readonly pixelDataAt: number;
  /** Offsets of the 8-byte item headers of encapsulated Pixel Data (BOT, fragments, delimiter). */
  readonly itemsAt: readonly number[];
}

const SOP_CLASS = '1.2.840.10008.5.1.4.1.1.7';
const EXPLICIT_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
const RLE_LOSSLESS = '1.2.840.10008.1.2.5';

/** Writes the file (explicit VR little endian, or RLE for encapsulated Pixel Data, PS3.5 §A.4). */
export function writeLargeDicom(file: string, d: LargeDicom): LargeDicomLayout {
  const encapsulated = 'fragments' in d.pixel;
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  const privateHead = Buffer.alloc(12);
  privateHead.writeUInt16LE(0x0019, 0);
  privateHead.writeUInt16LE(0x1010, 2);
  privateHead.write('OB', 4, 'latin1');
  privateHead.writeUInt32LE(d.privateBytes, 8);
  const pixelHead = Buffer.alloc(12);
  pixelHead.writeUInt16LE(0x7fe0, 0);
  pixelHead.writeUInt16LE(0x0010, 2);
  pixelHead.write(encapsulated ? 'OB' : 'OW', 4, 'latin1');
  pixelHead.writeUInt32LE('bytes' in d.pixel ? d.pixel.bytes : 0xffffffff, 8);
  const sop = `${d.uidRoot}.1`;
  const header = Buffer.concat([
    preamble,
    element(0x0002, 0x0002, 'UI', SOP_CLASS),
    element(0x0002, 0x0003, 'UI', sop),
    element(0x0002, 0x0010, 'UI', encapsulated ? RLE_LOSSLESS : EXPLICIT_LITTLE_ENDIAN),
    element(0x0008, 0x0016, 'UI', SOP_CLASS),
    element(0x0008, 0x0018, 'UI', sop),
    element(0x0008, 0x0060, 'CS', 'OT'),
    element(0x0010, 0x0020, 'LO', 'MRN-LARGE'),
    privateHead,
    Buffer.alloc(d.privateBytes, 0x41),
    element(0x0020, 0x000d, 'UI', d.uidRoot),
    element(0x0020, 0x000e, 'UI', `${d.uidRoot}.0`),
    element(0x0028, 0x0008, 'IS', String(d.frames)),
  ]);
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, header);
    fs.writeSync(fd, pixelHead);
    const itemsAt: number[] = [];
    let end = header.length + pixelHead.length;
    if ('bytes' in d.pixel) {
      end += d.pixel.bytes;
    } else {
      const item = (elementNumber: number, length: number): void => {
        const head = Buffer.alloc(8);
        head.writeUInt16LE(0xfffe, 0);
        head.writeUInt16LE(elementNumber, 2);
        head.writeUInt32LE(length, 4);
        fs.writeSync(fd, head, 0, 8, end);
        itemsAt.push(end);
        end += 8 + length;
      };
      item(0xe000, 0);
      for (let i = 0; i < d.pixel.fragments; i++) item(0xe000, d.pixel.fragmentBytes);
      item(0xe0dd, 0);
    }
    fs.ftruncateSync(fd, end);
    return { size: end, pixelDataAt: header.length, itemsAt };
  } finally {
    fs.closeSync(fd);
  }
}
