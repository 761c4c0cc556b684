import type { Intake } from '../../src/cases/intake-schema';

/** A complete, valid, eligible intake as a client would POST it (JSON-shaped). */
export function validIntakeJson(): Record<string, unknown> {
  return {
    patient: {
      name: { given: ['Emma', 'Rose'], family: 'Example' },
      birthDate: '2015-06-15',
      sex: 'female',
      address: {
        line: ['1200 Broadway', 'Apt 4'],
        city: 'Nashville',
        state: 'TN',
        postalCode: '37203',
        country: 'US',
        district: 'Davidson',
      },
    },
    requester: {
      name: 'Maria Example',
      relationship: 'MTH',
      phone: '+1 (615) 555-0134',
      email: 'maria@example.com',
      attestsLegalAuthority: true,
    },
    diagnosis: {
      text: 'Pilocytic astrocytoma of the cerebellum',
      codes: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'C71.6', display: 'Malignant neoplasm of cerebellum' }],
    },
    history: 'Headaches and vomiting for 3 months; MRI showed a 3 cm cerebellar mass; partial resection in March.',
    reason: 'We want to know whether a second surgery or chemotherapy is the better next step.',
    questions: ['Is further surgery advisable?', 'Would you recommend chemotherapy now or watchful waiting?'],
    urgent: false,
    referringPhysician: { name: 'Dr. Alan Smith', npi: '1234567893', organization: 'Nashville Pediatric Neurology' },
  };
}

/** A parsed intake (what the domain functions receive). */
export function validIntake(overrides: (intake: Intake) => void = () => undefined): Intake {
  const intake = structuredClone(validIntakeJson()) as unknown as Intake;
  overrides(intake);
  return intake;
}
