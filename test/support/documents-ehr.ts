import type { FhirResource } from 'fhir/r4';
import { intakeForChild } from './intake';

/**
 * A small record for the document-download tests: one child (Ada Quill, `Patient/p1`) and her PDF
 * documents, each a DocumentReference whose attachment points at its own Binary.
 */

/** The intake of the child the record holds. */
export const adaIntake = () => intakeForChild('Ada', 'Quill', '2016-01-02');

/** The child's id at the sandbox EHR. */
export const ADA_PATIENT_ID = 'p1';

/** A sandbox fault: a redirect off the endpoint's origin is refused for good, so a download fails at once and no breaker trips. */
export const OFF_ORIGIN = { kind: 'redirect', location: 'https://elsewhere.example/x' } as const;

/**
 * Patient/p1 and `count` documents: `DocumentReference/doc<n>` → `Binary/b<n>` for n = 1…count, each
 * a tiny PDF whose comment line is `note`.
 */
export function adaWithPdfDocuments(count: number, note: string): FhirResource[] {
  const data = Buffer.from(`%PDF-1.4\n% ${note}\n%%EOF\n`).toString('base64');
  const numbers = Array.from({ length: count }, (_, i) => i + 1);
  return [
    { resourceType: 'Patient', id: ADA_PATIENT_ID, name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' },
    ...numbers.map((n): FhirResource => ({ resourceType: 'Binary', id: `b${n}`, contentType: 'application/pdf', data })),
    ...numbers.map(
      (n): FhirResource => ({
        resourceType: 'DocumentReference',
        id: `doc${n}`,
        status: 'current',
        subject: { reference: `Patient/${ADA_PATIENT_ID}` },
        content: [{ attachment: { contentType: 'application/pdf', url: `Binary/b${n}` } }],
      }),
    ),
  ];
}
