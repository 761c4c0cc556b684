import type { ReportInput } from '../../src/report/report-pdf';

/** A signed report's input (one question answered); tests override what they look at. */
export const SAMPLE_REPORT: ReportInput = {
  caseId: '0b7e2c1a-5d7f-4c0e-9a55-3e2d1f0a9b8c',
  version: 1,
  status: 'final',
  patient: { name: 'Adán Núñez', birthDate: '2016-05-02', sex: 'male' },
  referringPhysician: 'Dr. Hannah Whitfield',
  diagnosis: 'Refractory focal epilepsy',
  summary: 'The diagnosis is supported by the records.',
  diagnosisAssessment: 'Assessment text.',
  recommendations: 'Continue the current medication.',
  answers: [{ question: 'Is he a candidate for surgery?', answer: 'Not at this time.' }],
  followUp: 'Review in three months.',
  specialist: { name: 'Dr. Zoë Ångström', npi: '1234567893' },
  signedAt: new Date('2027-03-04T15:00:00Z'),
  timeZone: 'America/New_York',
};
