import type { Intake } from '../../src/cases/intake-schema';

/**
 * A complete, eligible intake: a 9-year-old in Colorado (outside the program's local area),
 * asked for by her mother. Every string is distinctive so tests can search logs for it.
 */
export function sampleIntake(overrides: Partial<Intake> = {}): Intake {
  return {
    patient: {
      name: { given: ['Zinnia', 'Quillon'], family: 'Marrowvale' },
      birthDate: '2017-03-14',
      sex: 'female',
      address: {
        line: ['4417 Juniper Hollow Road'],
        city: 'Pueblo',
        state: 'CO',
        postalCode: '81003',
        country: 'US',
      },
    },
    requester: {
      name: 'Orla Marrowvale',
      relationship: 'MTH',
      phone: '+1 719 555 0142',
      email: 'orla.marrowvale@example.com',
      attestsLegalAuthority: true,
    },
    diagnosis: {
      text: 'Refractory focal epilepsy with suspected cortical dysplasia',
      codes: [{ system: 'http://snomed.info/sct', code: '230381009', display: 'Partial epilepsy' }],
    },
    history: 'Seizures since age six despite levetiracetam and oxcarbazepine; MRI at Pueblo Memorial.',
    reason: 'We want to know whether epilepsy surgery should be considered.',
    questions: ['Is she a candidate for epilepsy surgery?', 'Should we try a ketogenic diet first?'],
    urgent: false,
    referringPhysician: { name: 'Dr. Thaddeus Brightwater', npi: '1234567893', organization: 'Pueblo Pediatric Neurology' },
    ...overrides,
  } as Intake;
}

/** Strings from {@link sampleIntake} that are PHI and must never reach a log line. */
export const SAMPLE_PHI_STRINGS = [
  'Zinnia',
  'Quillon',
  'Marrowvale',
  '2017-03-14',
  '4417 Juniper Hollow Road',
  'Juniper',
  'Pueblo',
  '81003',
  'Orla',
  '719 555 0142',
  'orla.marrowvale@example.com',
  'cortical dysplasia',
  'levetiracetam',
  'epilepsy surgery',
  'ketogenic',
  'Brightwater',
  '1234567893',
];

/** The sample intake for another child (tests whose sandbox holds that child). */
export function intakeForChild(given: string, family: string, birthDate: string): Intake {
  const base = sampleIntake();
  return sampleIntake({ patient: { ...base.patient, name: { given: [given], family }, birthDate } });
}
