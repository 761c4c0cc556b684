/**
 * Body Part Examined (0018,0015) defined terms to SNOMED CT, after DICOM PS3.16 Annex L
 * ("Correspondence of Anatomic Region Codes and Body Part Examined Defined Terms", CID 4031).
 * Only common regions; any other term is kept as the Coding's display.
 *
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part16/chapter_L.html
 * @packageDocumentation
 */
import type { Coding } from 'fhir/r4';

export const SNOMED_SYSTEM = 'http://snomed.info/sct';

const BODY_PARTS: Readonly<Record<string, readonly [code: string, display: string]>> = {
  ABDOMEN: ['818981001', 'Abdomen'],
  ANKLE: ['70258002', 'Ankle joint'],
  BRAIN: ['12738006', 'Brain'],
  CHEST: ['816094009', 'Chest'],
  CSPINE: ['122494005', 'Cervical spine'],
  ELBOW: ['16953009', 'Elbow joint'],
  EXTREMITY: ['66019005', 'Extremity'],
  FEMUR: ['71341001', 'Femur'],
  FOOT: ['56459004', 'Foot'],
  FOREARM: ['14975008', 'Forearm'],
  HAND: ['85562004', 'Hand'],
  HEAD: ['69536005', 'Head'],
  HEADNECK: ['774007', 'Head and Neck'],
  HEART: ['80891009', 'Heart'],
  HIP: ['29836001', 'Hip'],
  KNEE: ['72696002', 'Knee'],
  LEG: ['30021000', 'Lower leg'],
  LSPINE: ['122496007', 'Lumbar spine'],
  NECK: ['45048000', 'Neck'],
  PELVIS: ['816092008', 'Pelvis'],
  SACRUM: ['54735007', 'Sacrum'],
  SHOULDER: ['16982005', 'Shoulder'],
  SKULL: ['89546000', 'Skull'],
  SPINE: ['421060004', 'Spine'],
  TSPINE: ['122495006', 'Thoracic spine'],
  WHOLEBODY: ['38266002', 'Entire body'],
};

/** The FHIR `ImagingStudy.series.bodySite` for a Body Part Examined value. */
export function bodySiteCoding(bodyPartExamined: string): Coding {
  const key = bodyPartExamined.trim().toUpperCase();
  const known = BODY_PARTS[key];
  return known ? { system: SNOMED_SYSTEM, code: known[0], display: known[1] } : { display: bodyPartExamined.trim() };
}
