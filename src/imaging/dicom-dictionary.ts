/**
 * The few DICOM tags and UIDs the header parser reads, in dicom-parser's `xGGGGEEEE` spelling.
 *
 * @see https://dicom.nema.org/medical/dicom/current/output/html/part06.html (PS3.6 data dictionary)
 * @see https://dicom.nema.org/medical/dicom/current/output/html/part05.html#chapter_10 (PS3.5 §10 transfer syntaxes)
 * @packageDocumentation
 */

export const TAG = {
  MediaStorageSopClassUid: 'x00020002',
  MediaStorageSopInstanceUid: 'x00020003',
  TransferSyntaxUid: 'x00020010',
  DirectoryRecordSequence: 'x00041220',
  SpecificCharacterSet: 'x00080005',
  SopClassUid: 'x00080016',
  SopInstanceUid: 'x00080018',
  StudyDate: 'x00080020',
  StudyTime: 'x00080030',
  AccessionNumber: 'x00080050',
  Modality: 'x00080060',
  TimezoneOffsetFromUtc: 'x00080201',
  StudyDescription: 'x00081030',
  SeriesDescription: 'x0008103e',
  PatientName: 'x00100010',
  PatientId: 'x00100020',
  PatientBirthDate: 'x00100030',
  PatientSex: 'x00100040',
  BodyPartExamined: 'x00180015',
  StudyInstanceUid: 'x0020000d',
  SeriesInstanceUid: 'x0020000e',
  SeriesNumber: 'x00200011',
  InstanceNumber: 'x00200013',
  NumberOfFrames: 'x00280008',
  Rows: 'x00280010',
  Columns: 'x00280011',
  PixelData: 'x7fe00010',
} as const;

/** Media Storage Directory Storage: the SOP class of a DICOMDIR (PS3.10 §8.6, PS3.3 F.2). */
export const MEDIA_STORAGE_DIRECTORY_SOP_CLASS = '1.2.840.10008.1.3.10';

/** Transfer syntaxes this service meets on CDs, by UID (PS3.5 §10, PS3.6 Table A-1). */
export const TRANSFER_SYNTAXES: Readonly<Record<string, string>> = {
  '1.2.840.10008.1.2': 'Implicit VR Little Endian',
  '1.2.840.10008.1.2.1': 'Explicit VR Little Endian',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian (retired)',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline (Process 1)',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (Process 2 & 4)',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless, Non-Hierarchical (Process 14)',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless, First-Order Prediction (Process 14, SV1)',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Lossy (Near-Lossless)',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 (Lossless Only)',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.4.100': 'MPEG2 Main Profile / Main Level',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 AVC/H.264 High Profile / Level 4.1',
  '1.2.840.10008.1.2.4.201': 'High-Throughput JPEG 2000 (Lossless Only)',
  '1.2.840.10008.1.2.4.203': 'High-Throughput JPEG 2000',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
};

export const DEFLATED_EXPLICIT_LITTLE_ENDIAN = '1.2.840.10008.1.2.1.99';
