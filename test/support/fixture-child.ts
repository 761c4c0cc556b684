import fs from 'node:fs';
import path from 'node:path';
import type { Bundle } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';

const FIXTURES = path.resolve(__dirname, '../../fixtures');

interface Manifest {
  child: { name: { family: string; given: string[] }; birthDate: string; sex: string; address: Intake['patient']['address']; guardian: { name: string; phone: string; email: string } };
  files: Record<string, { patient: { reference: string; identifier: { system: string; value: string } }; resourceCounts: Record<string, number> }>;
}

export const fixtureManifest = (): Manifest => JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as Manifest;

export function fixtureBundle(name: 'care-team-a' | 'care-team-b' | 'referring-ehr'): Bundle {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')) as Bundle;
}

/** The fixture child's patient id at a care team. */
export function fixturePatientId(name: 'care-team-a' | 'care-team-b' | 'referring-ehr'): string {
  return fixtureManifest().files[`fixtures/${name}.json`]?.patient.reference.split('/')[1] ?? '';
}

/** The fixture child's intake, as her mother would submit it. */
export function fixtureIntake(): Intake {
  const { child } = fixtureManifest();
  return {
    patient: { name: child.name, birthDate: child.birthDate, sex: child.sex as Intake['patient']['sex'], address: child.address },
    requester: { name: child.guardian.name, relationship: 'MTH', phone: child.guardian.phone, email: child.guardian.email, attestsLegalAuthority: true },
    diagnosis: { text: 'Type 1 diabetes with worsening control; celiac disease' },
    history: 'Diagnosed with type 1 diabetes in DKA in 2023 and celiac disease in 2025; HbA1c rising.',
    reason: 'Second opinion on insulin regimen and growth.',
    questions: ['Should she move to an insulin pump?', 'Is her growth slowing because of celiac disease?'],
    urgent: false,
    referringPhysician: { name: 'Dr. Referring' },
  } as Intake;
}
