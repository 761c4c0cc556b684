/**
 * Small, valid DICOM Part 10 files built in code (explicit VR little endian, 16 bytes of pixel
 * data): for tests of the header parser and for the demo's family upload, where no real study can
 * be shipped. Not a general DICOM writer.
 * @packageDocumentation
 */

/** An explicit VR little endian element with a 16-bit length; the value is padded to even length. */
export function element(group: number, elementNumber: number, vr: string, value: string | Buffer): Buffer {
  let data = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (data.length % 2 === 1) data = Buffer.concat([data, Buffer.from(vr === 'UI' ? [0] : [0x20])]);
  const head = Buffer.alloc(8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(elementNumber, 2);
  head.write(vr, 4, 'latin1');
  head.writeUInt16LE(data.length, 6);
  return Buffer.concat([head, data]);
}

export interface SyntheticInstance {
  readonly studyUid?: string;
  readonly seriesUid?: string;
  readonly sopUid?: string;
  readonly charset?: string;
  readonly patientName?: string | Buffer;
  readonly patientId?: string;
  readonly birthDate?: string;
  readonly modality?: string;
  readonly studyDescription?: string | Buffer;
  /** Series Number and Instance Number (IS) as written. */
  readonly seriesNumber?: string;
  readonly instanceNumber?: string;
  /** Extra bytes of a private element before Pixel Data (to make long headers). */
  readonly padding?: number;
}

/** A small explicit VR little endian Part 10 file with the given fields and 16 bytes of pixel data. */
export function syntheticDicom(i: SyntheticInstance = {}): Buffer {
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  const sop = i.sopUid ?? '1.2.3.4.5.6.1';
  const meta = Buffer.concat([
    element(0x0002, 0x0002, 'UI', '1.2.840.10008.5.1.4.1.1.7'),
    element(0x0002, 0x0003, 'UI', sop),
    element(0x0002, 0x0010, 'UI', '1.2.840.10008.1.2.1'),
  ]);
  const parts: Buffer[] = [];
  if (i.charset !== undefined) parts.push(element(0x0008, 0x0005, 'CS', i.charset));
  parts.push(element(0x0008, 0x0016, 'UI', '1.2.840.10008.5.1.4.1.1.7'), element(0x0008, 0x0018, 'UI', sop));
  parts.push(element(0x0008, 0x0020, 'DA', '20240102'), element(0x0008, 0x0030, 'TM', '101500'));
  parts.push(element(0x0008, 0x0060, 'CS', i.modality ?? 'OT'));
  if (i.studyDescription !== undefined) parts.push(element(0x0008, 0x1030, 'LO', i.studyDescription));
  if (i.patientName !== undefined) parts.push(element(0x0010, 0x0010, 'PN', i.patientName));
  if (i.patientId !== undefined) parts.push(element(0x0010, 0x0020, 'LO', i.patientId));
  if (i.birthDate !== undefined) parts.push(element(0x0010, 0x0030, 'DA', i.birthDate));
  if (i.padding) {
    const head = Buffer.alloc(12);
    head.writeUInt16LE(0x0019, 0);
    head.writeUInt16LE(0x1010, 2);
    head.write('OB', 4, 'latin1');
    head.writeUInt32LE(i.padding, 8);
    parts.push(head, Buffer.alloc(i.padding, 0x41));
  }
  parts.push(element(0x0020, 0x000d, 'UI', i.studyUid ?? '1.2.3.4.5'), element(0x0020, 0x000e, 'UI', i.seriesUid ?? '1.2.3.4.5.6'));
  if (i.seriesNumber !== undefined) parts.push(element(0x0020, 0x0011, 'IS', i.seriesNumber));
  if (i.instanceNumber !== undefined) parts.push(element(0x0020, 0x0013, 'IS', i.instanceNumber));
  const pixelHead = Buffer.alloc(12);
  pixelHead.writeUInt16LE(0x7fe0, 0);
  pixelHead.writeUInt16LE(0x0010, 2);
  pixelHead.write('OW', 4, 'latin1');
  pixelHead.writeUInt32LE(16, 8);
  return Buffer.concat([preamble, meta, ...parts, pixelHead, Buffer.alloc(16)]);
}
