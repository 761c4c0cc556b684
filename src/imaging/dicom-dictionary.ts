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
  FloatPixelData: 'x7fe00008',
  DoubleFloatPixelData: 'x7fe00009',
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

/**
 * Storage SOP classes whose IOD requires the Image Pixel module, so an instance without Pixel Data
 * (7FE0,0010), Float Pixel Data (7FE0,0008) or Double Float Pixel Data (7FE0,0009) is not a valid
 * instance of them: the image SOP classes of PS3.4 Annex B (Table B.5-1), by UID (PS3.6 Annex A),
 * retired ones still met on old CDs included. Deliberately a list of known classes, not a rule on the
 * UID's shape: a class missing here is never called truncated for lacking pixels, and the instances
 * that validly have none (SR, presentation states, KOS, raw data, waveforms, RT plans, encapsulated
 * PDF, MR spectroscopy, DICOMDIR) are not on it.
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part04/sect_B.5.html
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part06/chapter_A.html
 */
export const IMAGE_STORAGE_SOP_CLASSES: ReadonlySet<string> = new Set([
  '1.2.840.10008.5.1.4.1.1.1', // Computed Radiography Image
  '1.2.840.10008.5.1.4.1.1.1.1', // Digital X-Ray Image – For Presentation
  '1.2.840.10008.5.1.4.1.1.1.1.1', // Digital X-Ray Image – For Processing
  '1.2.840.10008.5.1.4.1.1.1.2', // Digital Mammography X-Ray Image – For Presentation
  '1.2.840.10008.5.1.4.1.1.1.2.1', // Digital Mammography X-Ray Image – For Processing
  '1.2.840.10008.5.1.4.1.1.1.3', // Digital Intra-Oral X-Ray Image – For Presentation
  '1.2.840.10008.5.1.4.1.1.1.3.1', // Digital Intra-Oral X-Ray Image – For Processing
  '1.2.840.10008.5.1.4.1.1.2', // CT Image
  '1.2.840.10008.5.1.4.1.1.2.1', // Enhanced CT Image
  '1.2.840.10008.5.1.4.1.1.2.2', // Legacy Converted Enhanced CT Image
  '1.2.840.10008.5.1.4.1.1.3', // Ultrasound Multi-frame Image (retired)
  '1.2.840.10008.5.1.4.1.1.3.1', // Ultrasound Multi-frame Image
  '1.2.840.10008.5.1.4.1.1.4', // MR Image
  '1.2.840.10008.5.1.4.1.1.4.1', // Enhanced MR Image
  '1.2.840.10008.5.1.4.1.1.4.3', // Enhanced MR Color Image
  '1.2.840.10008.5.1.4.1.1.4.4', // Legacy Converted Enhanced MR Image
  '1.2.840.10008.5.1.4.1.1.5', // Nuclear Medicine Image (retired)
  '1.2.840.10008.5.1.4.1.1.6', // Ultrasound Image (retired)
  '1.2.840.10008.5.1.4.1.1.6.1', // Ultrasound Image
  '1.2.840.10008.5.1.4.1.1.6.2', // Enhanced US Volume
  '1.2.840.10008.5.1.4.1.1.7', // Secondary Capture Image
  '1.2.840.10008.5.1.4.1.1.7.1', // Multi-frame Single Bit Secondary Capture Image
  '1.2.840.10008.5.1.4.1.1.7.2', // Multi-frame Grayscale Byte Secondary Capture Image
  '1.2.840.10008.5.1.4.1.1.7.3', // Multi-frame Grayscale Word Secondary Capture Image
  '1.2.840.10008.5.1.4.1.1.7.4', // Multi-frame True Color Secondary Capture Image
  '1.2.840.10008.5.1.4.1.1.12.1', // X-Ray Angiographic Image
  '1.2.840.10008.5.1.4.1.1.12.1.1', // Enhanced XA Image
  '1.2.840.10008.5.1.4.1.1.12.2', // X-Ray Radiofluoroscopic Image
  '1.2.840.10008.5.1.4.1.1.12.2.1', // Enhanced XRF Image
  '1.2.840.10008.5.1.4.1.1.13.1.1', // X-Ray 3D Angiographic Image
  '1.2.840.10008.5.1.4.1.1.13.1.2', // X-Ray 3D Craniofacial Image
  '1.2.840.10008.5.1.4.1.1.13.1.3', // Breast Tomosynthesis Image
  '1.2.840.10008.5.1.4.1.1.20', // Nuclear Medicine Image
  '1.2.840.10008.5.1.4.1.1.30', // Parametric Map (Float or Double Float Pixel Data)
  '1.2.840.10008.5.1.4.1.1.66.4', // Segmentation
  '1.2.840.10008.5.1.4.1.1.77.1.1', // VL Endoscopic Image
  '1.2.840.10008.5.1.4.1.1.77.1.1.1', // Video Endoscopic Image
  '1.2.840.10008.5.1.4.1.1.77.1.2', // VL Microscopic Image
  '1.2.840.10008.5.1.4.1.1.77.1.2.1', // Video Microscopic Image
  '1.2.840.10008.5.1.4.1.1.77.1.3', // VL Slide-Coordinates Microscopic Image
  '1.2.840.10008.5.1.4.1.1.77.1.4', // VL Photographic Image
  '1.2.840.10008.5.1.4.1.1.77.1.4.1', // Video Photographic Image
  '1.2.840.10008.5.1.4.1.1.77.1.5.1', // Ophthalmic Photography 8 Bit Image
  '1.2.840.10008.5.1.4.1.1.77.1.5.2', // Ophthalmic Photography 16 Bit Image
  '1.2.840.10008.5.1.4.1.1.77.1.5.4', // Ophthalmic Tomography Image
  '1.2.840.10008.5.1.4.1.1.77.1.6', // VL Whole Slide Microscopy Image
  '1.2.840.10008.5.1.4.1.1.128', // Positron Emission Tomography Image
  '1.2.840.10008.5.1.4.1.1.128.1', // Legacy Converted Enhanced PET Image
  '1.2.840.10008.5.1.4.1.1.130', // Enhanced PET Image
  '1.2.840.10008.5.1.4.1.1.481.1', // RT Image
]);

export const DEFLATED_EXPLICIT_LITTLE_ENDIAN = '1.2.840.10008.1.2.1.99';
