import type { ReportFacts } from '../../src/delivery/report-resources';
import { planWrite, type WritePlan } from '../../src/delivery/report-writer';

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

/** What a recipient offers of each resource the report is written as: create (conditional too), update, read, search. */
const EVERY_INTERACTION = { interactions: ['create', 'update', 'read', 'search-type'], searchParams: [], operations: [], conditionalCreate: true };

/** How the report is written to a recipient offering `systemInteractions` and {@link EVERY_INTERACTION} of the three resources. */
const writePlanFor = (systemInteractions: string[]): WritePlan =>
  planWrite({ resources: { DiagnosticReport: EVERY_INTERACTION, DocumentReference: EVERY_INTERACTION, Communication: EVERY_INTERACTION }, patientEverything: false, systemInteractions });

/** The report written one by one: a recipient offering no `transaction`. */
export const SEQUENTIAL_WRITE_PLAN: WritePlan = writePlanFor([]);

/** The report written as one transaction Bundle. */
export const TRANSACTION_WRITE_PLAN: WritePlan = writePlanFor(['transaction']);
