/** Paths of the shared DICOM corpus (`../shared/data/dicom`, read-only) and its expected metadata. */
import fs from 'node:fs';
import path from 'node:path';
import { element } from '../../src/imaging/synthetic-dicom';
import { SHARED_DATA } from '../support/synthea';

export const DICOM_DIR = path.join(SHARED_DATA, 'dicom');

export interface ExpectedFile {
  readonly bytes: number;
  readonly agreed?: Readonly<Record<string, string>>;
  readonly values?: Readonly<Record<string, string>>;
  readonly parserErrors?: Readonly<Record<string, string | null>>;
}

export function expectedMetadata(): Record<string, ExpectedFile> {
  const json = JSON.parse(fs.readFileSync(path.join(DICOM_DIR, 'expected-metadata.json'), 'utf8')) as { files: Record<string, ExpectedFile> };
  return json.files;
}

/** Every file of the corpus except the JSON, sorted. */
export function corpusFiles(): string[] {
  return fs
    .readdirSync(DICOM_DIR)
    .filter((f) => !f.endsWith('.json'))
    .sort();
}

export function readCorpus(name: string): Buffer {
  return fs.readFileSync(path.join(DICOM_DIR, name));
}

export { element, syntheticDicom, type SyntheticInstance } from '../../src/imaging/synthetic-dicom';

/** An implicit VR little endian element (PS3.5 §7.1.3): tag, 32-bit length, value padded to even length. */
export function implicitElement(group: number, elementNumber: number, value: string | Buffer, pad = 0x20): Buffer {
  let data = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (data.length % 2 === 1) data = Buffer.concat([data, Buffer.from([pad])]);
  const head = Buffer.alloc(8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(elementNumber, 2);
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data]);
}

/** What {@link implicitVrDicom} writes; a Buffer value is written as given (e.g. one of many MB). */
export interface ImplicitInstance {
  readonly studyUid?: string | Buffer;
  readonly sopUid?: string;
  readonly patientName?: string | Buffer;
  readonly patientId?: string;
  readonly birthDate?: string;
  readonly studyDescription?: string | Buffer;
}

/**
 * A Part 10 file in Implicit VR Little Endian (1.2.840.10008.1.2), the syntax where any value may
 * declare a 32-bit length: File Meta Information (explicit VR, as PS3.10 requires), then the data set,
 * then 16 bytes of Pixel Data.
 */
export function implicitVrDicom(i: ImplicitInstance = {}): Buffer {
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  const sop = i.sopUid ?? '1.2.826.0.1.3680043.2.1143.88.1';
  const sopClass = '1.2.840.10008.5.1.4.1.1.7';
  const meta = Buffer.concat([element(0x0002, 0x0002, 'UI', sopClass), element(0x0002, 0x0003, 'UI', sop), element(0x0002, 0x0010, 'UI', '1.2.840.10008.1.2')]);
  const uid = (g: number, e: number, v: string): Buffer => implicitElement(g, e, v, 0);
  const parts = [uid(0x0008, 0x0016, sopClass), uid(0x0008, 0x0018, sop), implicitElement(0x0008, 0x0020, '20240102'), implicitElement(0x0008, 0x0060, 'OT')];
  if (i.studyDescription !== undefined) parts.push(implicitElement(0x0008, 0x1030, i.studyDescription));
  if (i.patientName !== undefined) parts.push(implicitElement(0x0010, 0x0010, i.patientName));
  if (i.patientId !== undefined) parts.push(implicitElement(0x0010, 0x0020, i.patientId));
  if (i.birthDate !== undefined) parts.push(implicitElement(0x0010, 0x0030, i.birthDate));
  const study = i.studyUid ?? '1.2.826.0.1.3680043.2.1143.88';
  parts.push(typeof study === 'string' ? uid(0x0020, 0x000d, study) : implicitElement(0x0020, 0x000d, study, 0));
  parts.push(uid(0x0020, 0x000e, '1.2.826.0.1.3680043.2.1143.88.0'));
  const pixelHead = Buffer.alloc(8);
  pixelHead.writeUInt16LE(0x7fe0, 0);
  pixelHead.writeUInt16LE(0x0010, 2);
  pixelHead.writeUInt32LE(16, 4);
  return Buffer.concat([preamble, meta, ...parts, pixelHead, Buffer.alloc(16)]);
}

/** `count` distinct empty private elements (explicit VR `LO`, length 0): 8 bytes each, ~60 bytes of parser heap and 3 read-budget reads each. */
export function tinyPrivateElements(count: number): Buffer {
  const out = Buffer.alloc(count * 8);
  for (let i = 0; i < count; i++) {
    const at = i * 8;
    out.writeUInt16LE(0x0009 + 2 * Math.floor(i / 0xe000), at);
    out.writeUInt16LE(0x1000 + (i % 0xe000), at + 2);
    out.write('LO', at + 4, 'latin1');
  }
  return out;
}

/**
 * A Part 10 file (explicit VR little endian) of one Secondary Capture image whose header is padded with
 * `count` empty private elements ({@link tinyPrivateElements}), then 16 bytes of Pixel Data. Its study
 * is `uidRoot`, its series `uidRoot.0`, its instance `uidRoot.1`.
 */
/**
 * The start of an explicit VR file: the 128-byte preamble and `DICM`, the File Meta Information
 * (SOP class and instance, `transferSyntax`) and the SOP class and instance again in the data set;
 * the caller appends the rest, in tag order.
 */
export function explicitVrFileHead(sopClass: string, sop: string, transferSyntax = '1.2.840.10008.1.2.1'): Buffer {
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  return Buffer.concat([
    preamble,
    element(0x0002, 0x0002, 'UI', sopClass),
    element(0x0002, 0x0003, 'UI', sop),
    element(0x0002, 0x0010, 'UI', transferSyntax),
    element(0x0008, 0x0016, 'UI', sopClass),
    element(0x0008, 0x0018, 'UI', sop),
  ]);
}

/** An explicit VR little endian element in the long form (PS3.5 §7.1.2): tag, VR, 2 reserved bytes, 32-bit length. */
export function longElement(group: number, elementNumber: number, vr: string, value: Buffer, length = value.length): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(elementNumber, 2);
  head.write(vr, 4, 'latin1');
  head.writeUInt32LE(length, 8);
  return Buffer.concat([head, value]);
}

export function manyElementsDicom(count: number, uidRoot: string): Buffer {
  return Buffer.concat([
    explicitVrFileHead('1.2.840.10008.5.1.4.1.1.7', `${uidRoot}.1`),
    tinyPrivateElements(count),
    element(0x0020, 0x000d, 'UI', uidRoot),
    element(0x0020, 0x000e, 'UI', `${uidRoot}.0`),
    longElement(0x7fe0, 0x0010, 'OW', Buffer.alloc(16)),
  ]);
}
