import type { ReportFacts } from '../../src/delivery/report-resources';

/** A signed version's facts as the delivery builds its FHIR resources from them: version 1, final. */
export const SAMPLE_REPORT_FACTS: ReportFacts = {
  caseId: '6f1c2f43-7a55-4f3e-9a55-2b1d1c0c5e11',
  version: 1,
  status: 'final',
  content: { summary: 'S', diagnosisAssessment: 'a', recommendations: 'r', answers: [{ question: 'Q?', answer: 'A.' }], followUp: 'f' },
  specialist: { sub: 'spec-1', name: 'Dr. S' },
  signedAt: new Date('2027-01-01T00:00:00Z'),
  pdf: Buffer.from('%PDF-1.7\n'),
  pdfSha1Base64: 'x',
  title: 'T',
  patientId: 'p-1',
  programName: 'P',
};
