import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, Patient } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';

/** The shared public data, read in place (never copied into the project). */
export const SHARED_DATA = path.resolve(__dirname, '../../../shared/data');

export function readBundle(relative: string): Bundle {
  return JSON.parse(fs.readFileSync(path.join(SHARED_DATA, relative), 'utf8')) as Bundle;
}

/** Jorge Brekke, 8 years old at his last record: a Synthea child with allergies, imaging, conditions. */
export const JORGE = 'fhir/synthea-smart/Jorge_Brekke_ac7921e0-c949-4b42-97f2-fad5d171cd01.json';

export function patientOf(bundle: Bundle): Patient {
  const patient = bundle.entry?.find((e) => e.resource?.resourceType === 'Patient')?.resource as Patient | undefined;
  if (!patient) throw new Error('bundle has no Patient');
  return patient;
}

const US_STATE_CODES: Record<string, string> = { Massachusetts: 'MA', 'New York': 'NY', California: 'CA', Texas: 'TX' };

/** An intake for the bundle's patient, as the family would fill it in. */
export function intakeFor(patient: Patient): Intake {
  const name = patient.name?.find((n) => n.use === 'official') ?? patient.name?.[0];
  const address = patient.address?.[0];
  return {
    patient: {
      name: { given: name?.given ?? ['Child'], family: name?.family ?? 'Unknown' },
      birthDate: patient.birthDate ?? '2015-01-01',
      sex: patient.gender ?? 'unknown',
      address: {
        line: address?.line ?? ['1 Main St'],
        city: address?.city ?? 'Boston',
        state: US_STATE_CODES[address?.state ?? ''] ?? address?.state ?? 'MA',
        postalCode: (address?.postalCode ?? '02110').slice(0, 5).padStart(5, '0'),
        country: 'US',
      },
    },
    requester: { name: 'Parent of the child', relationship: 'MTH', attestsLegalAuthority: true },
    diagnosis: { text: 'Recurrent symptoms needing a specialist view' },
    history: 'Seen by two local care teams.',
    reason: 'A second opinion on the treatment plan.',
    questions: ['Is the current treatment right?'],
    urgent: false,
    referringPhysician: { name: 'Dr. Local' },
  } as Intake;
}
