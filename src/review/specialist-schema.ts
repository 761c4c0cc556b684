/**
 * Request bodies of the specialist directory (`/api/specialists`). Specialty codes are NUCC
 * taxonomy codes; the service also checks they are among the specialties of
 * `mappings/specialty-matching.json` (see {@link unknownSpecialties}), so a specialist can always
 * be matched.
 * @packageDocumentation
 */
import { z } from 'zod';
import { isValidNpi } from '../cases/npi';
import type { SpecialtyMatching } from './specialty-matching';

/** A NUCC Health Care Provider Taxonomy code. */
export const NuccCode = z.string().regex(/^[0-9A-Z]{9}X$/, { error: 'must be a NUCC taxonomy code like 2080P0205X' });

const NpiSchema = z
  .string({ error: 'npi must be the 10-digit National Provider Identifier' })
  .trim()
  .regex(/^\d{10}$/, { error: 'npi must be exactly 10 digits', abort: true })
  .refine(isValidNpi, { error: 'npi is not valid: it must start with 1 or 2 and end with the correct check digit' });

const NamePart = (what: string) =>
  z.string({ error: `${what} must be text` }).trim().min(1, { error: `${what} must not be empty` }).max(100, { error: `${what} must be at most 100 characters` });

const NameSchema = z.strictObject(
  {
    family: NamePart('name.family'),
    given: z.array(NamePart('name.given[]')).min(1, { error: 'name.given needs at least one given name' }).max(5),
    prefix: z.array(NamePart('name.prefix[]')).max(3).optional(),
    suffix: z.array(NamePart('name.suffix[]')).max(5).optional(),
  },
  { error: 'name must be {family, given[], prefix[]?, suffix[]?}' },
);

/** A specialist's name (FHIR HumanName subset). */
export type SpecialistName = z.infer<typeof NameSchema>;

const UserSub = z.string().trim().min(1).max(200, { error: 'userSub must be at most 200 characters' });

const Specialties = z
  .array(z.string().regex(/^[0-9A-Z]{9}X$/, { error: 'specialties must be NUCC taxonomy codes like 2080P0205X' }))
  .min(1, { error: 'specialties needs at least one specialty code' })
  .max(10, { error: 'specialties takes at most 10 codes' });

/** Body of `POST /api/specialists`. */
export const NewSpecialistSchema = z.strictObject({
  npi: NpiSchema,
  name: NameSchema,
  specialties: Specialties,
  active: z.boolean({ error: 'active must be true or false' }).default(true),
  userSub: UserSub.optional(),
});

/** Body of `PATCH /api/specialists/:id`. */
export const SpecialistPatchSchema = z
  .strictObject({
    active: z.boolean({ error: 'active must be true or false' }).optional(),
    specialties: Specialties.optional(),
    userSub: UserSub.nullable().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, { error: 'send at least one of active, specialties, userSub' });

/** A validated new specialist. */
export type NewSpecialistBody = z.infer<typeof NewSpecialistSchema>;
/** A validated change to a specialist. */
export type SpecialistPatchBody = z.infer<typeof SpecialistPatchSchema>;

/** Index and code of each specialty the matching rules do not list. */
export function unknownSpecialties(matching: SpecialtyMatching, codes: readonly string[]): { index: number; code: string }[] {
  const known = new Set(matching.specialties.map((s) => s.code));
  return codes.map((code, index) => ({ index, code })).filter((c) => !known.has(c.code));
}
