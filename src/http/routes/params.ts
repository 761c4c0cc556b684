import { z } from 'zod';

/** `:id` of every `/api/cases/:id/…` route. */
export const CaseParams = z.object({ id: z.uuid({ error: 'Case id must be a UUID' }) });
export type CaseParams = z.infer<typeof CaseParams>;

const FhirId = (label: string) => z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/, { error: `${label} must be a FHIR id` });

/** How to find the child at an endpoint: by id, by identifier, or by name + exact birth date. */
export const PatientSelectorSchema = z.union(
  [
    z.object({ id: FhirId('patient.id') }).strict(),
    z.object({ identifier: z.object({ system: z.string().min(1).max(500), value: z.string().min(1).max(200) }).strict() }).strict(),
    z.object({ match: z.literal(true) }).strict(),
  ],
  { error: 'patient must be {id}, {identifier: {system, value}} or {match: true}' },
);

/** The case manager's choice of the child's Patient at an endpoint (a source or a recipient). */
export const ChoosePatientBody = z.object({ patientId: FhirId('patientId') });
