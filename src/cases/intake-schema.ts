/**
 * The public intake contract: what a parent or legal guardian POSTs to open a
 * second-opinion case.
 *
 * Every string is trimmed and length-limited; every error message names the
 * problem in plain words (the API turns each zod issue into an RFC 9457
 * problem+json entry with the field path). The schema has no transforms other
 * than zod's in-place string overwrites (trim, upper-case), so
 * {@link intakeJsonSchema} converts it for the OpenAPI document.
 *
 * Business rules that refuse a well-formed request (age, relationship, address,
 * urgency) live in `eligibility.ts`, not here: a request that parses is a
 * request the case manager can read and answer.
 * @packageDocumentation
 */
import { z } from 'zod';
import { fhirControlRefusal, fhirStringControlsIn } from '../fhir/fhir-text';
import { isValidNpi } from './npi';
import { isUnitedStates, isUsPostalStateCode, US_ZIP_PATTERN } from './us-places';
import { addDays, type CivilDate } from './zoned-date';

/** Maximum lengths, in characters, after trimming. */
export const INTAKE_LIMITS = {
  name: 100,
  givenNames: 5,
  addressLine: 200,
  addressLines: 4,
  city: 100,
  /** A region or province of an address outside the United States (free text). */
  state: 100,
  postalCode: 20,
  country: 60,
  district: 100,
  phone: 30,
  email: 254,
  relationship: 64,
  diagnosisText: 1000,
  diagnosisCodes: 20,
  codeSystem: 255,
  code: 64,
  codeDisplay: 255,
  history: 20_000,
  reason: 5_000,
  question: 1_000,
  questions: 10,
  organization: 200,
} as const;

/** Earliest accepted birth date. */
export const EARLIEST_BIRTH_DATE: CivilDate = '1900-01-01';

type Clock = () => Date;

function missingOr(label: string, kind: string) {
  return (issue: { input?: unknown }): string =>
    issue.input === undefined ? `${label} is required` : `${label} must be ${kind}`;
}

/*
 * zod runs length checks even after a type error (they carry a `when` guard), and runs a check
 * after a failed regex unless told to abort. The guards and `abort: true` below keep one clear
 * message per problem: "must be text" alone, not also "must not be empty".
 */
type Payload = { value: unknown };
const isString = (payload: Payload): boolean => typeof payload.value === 'string';
const isArray = (payload: Payload): boolean => Array.isArray(payload.value);

/**
 * Adds zod's runtime `when` guard to check params. zod supports `when` on every check but its
 * public param types only list it for refinements, hence this typed helper (covered by tests).
 */
function guarded<T extends object>(params: T, when: (payload: Payload) => boolean): T {
  return Object.assign({}, params, { when });
}

/** An optional, trimmed string of at most `max` characters that may be blank (checked, and a blank dropped, by its section). */
function blankableText(label: string, max: number) {
  return z
    .string({ error: missingOr(label, 'text') })
    .trim()
    .max(max, guarded({ error: `${label} must be at most ${max} characters`, abort: true }, isString))
    .optional();
}

/** A required, trimmed, non-empty string of at most `max` characters. */
function text(label: string, max: number) {
  return z
    .string({ error: missingOr(label, 'text') })
    .trim()
    .min(1, guarded({ error: `${label} must not be empty`, abort: true }, isString))
    .max(max, guarded({ error: `${label} must be at most ${max} characters`, abort: true }, isString));
}

function flag(label: string) {
  return z.boolean({ error: missingOr(label, 'true or false') });
}

function list<T extends z.ZodType>(label: string, item: T, min: number, max: number, itemWord: string) {
  return z
    .array(item, { error: missingOr(label, 'a list') })
    .min(min, guarded({ error: `${label} must have at least ${min} ${itemWord}${min === 1 ? '' : 's'}` }, isArray))
    .max(max, guarded({ error: `${label} must have at most ${max} ${itemWord}s` }, isArray));
}

/**
 * The latest calendar date in effect anywhere on Earth at `now` (UTC+14), so a
 * baby born "today" in any time zone is never "in the future".
 */
function latestDateOnEarth(now: Date): CivilDate {
  return addDays(now.toISOString().slice(0, 10), now.getUTCHours() >= 10 ? 1 : 0);
}

function birthDate(clock: Clock) {
  return z
    .iso.date({ error: missingOr('Birth date', 'a real calendar date written as YYYY-MM-DD'), abort: true })
    .refine((date) => date >= EARLIEST_BIRTH_DATE, { error: `Birth date must not be before ${EARLIEST_BIRTH_DATE}` })
    .refine((date) => date <= latestDateOnEarth(clock()), { error: 'Birth date cannot be in the future' })
    .meta({ description: 'Date of birth, YYYY-MM-DD; a real date, not in the future.' });
}

/** An object schema whose "missing / wrong type" message names the section. */
function section<T extends z.ZodRawShape>(label: string, kind: string, shape: T) {
  return z.object(shape, { error: missingOr(label, kind) });
}

/** The message of a US address whose state is not two letters. */
const US_STATE_FORMAT = 'State must be a 2-letter code, like OH';

const Address = section('Address', 'an object', {
  line: list('Address lines', text('Address line', INTAKE_LIMITS.addressLine), 1, INTAKE_LIMITS.addressLines, 'line'),
  city: text('City', INTAKE_LIMITS.city),
  state: blankableText('State', INTAKE_LIMITS.state).meta({
    description:
      'For an address in the United States (required there): its USPS 2-letter state, territory or APO/FPO code, like OH ' +
      '(upper-cased). Elsewhere optional free text (region, province; FHIR Address.state is 0..1); blank is taken as absent.',
  }),
  postalCode: blankableText('Postal code', INTAKE_LIMITS.postalCode).meta({
    description:
      'For an address in the United States (required there): its ZIP code, 5 digits or ZIP+4. Elsewhere optional ' +
      '(many countries have no postal codes; FHIR Address.postalCode is 0..1); blank is taken as absent.',
  }),
  country: text('Country', INTAKE_LIMITS.country).meta({ description: 'Country; "US" (ISO 3166) for the United States.' }),
  district: text('County', INTAKE_LIMITS.district).optional().meta({ description: 'County (FHIR Address.district).' }),
})
  // In-place normalization (no transform): a US state is upper-cased; elsewhere a blank state or
  // postal code is left out.
  .overwrite((address) => {
    if (isUnitedStates(address.country)) return address.state === undefined ? address : { ...address, state: address.state.toUpperCase() };
    if (address.state !== '' && address.postalCode !== '') return address;
    const { state, postalCode, ...rest } = address;
    return { ...rest, ...(state ? { state } : {}), ...(postalCode ? { postalCode } : {}) };
  })
  .superRefine((address, ctx) => {
    if (!isUnitedStates(address.country)) return;
    if (address.postalCode === undefined || address.postalCode === '') {
      ctx.addIssue({ code: 'custom', path: ['postalCode'], message: 'Postal code is required for a US address: its ZIP code, like 45229' });
    } else if (!US_ZIP_PATTERN.test(address.postalCode)) {
      ctx.addIssue({
        code: 'custom',
        path: ['postalCode'],
        message: 'Postal code must be a US ZIP code: 5 digits, or ZIP+4 like 45229-3026',
      });
    }
    const state = address.state;
    if (state === undefined || state === '') {
      ctx.addIssue({ code: 'custom', path: ['state'], message: 'State is required for a US address: its 2-letter code, like OH' });
    } else if (!/^[A-Z]{2}$/.test(state)) {
      ctx.addIssue({ code: 'custom', path: ['state'], message: US_STATE_FORMAT });
    } else if (!isUsPostalStateCode(state)) {
      ctx.addIssue({
        code: 'custom',
        path: ['state'],
        message: `State "${state}" is not a US state, territory or APO/FPO code`,
      });
    }
  });

const HumanName = section('Name', 'an object with given and family', {
  given: list('Given names', text('Given name', INTAKE_LIMITS.name), 1, INTAKE_LIMITS.givenNames, 'name'),
  family: text('Family name', INTAKE_LIMITS.name),
});

const Phone = text('Phone', INTAKE_LIMITS.phone)
  .regex(/^\+?[0-9()./\s-]+$/, { error: 'Phone may contain only digits, spaces, +, -, ., / and parentheses', abort: true })
  .refine(
    (phone) => {
      const digits = phone.replace(/\D/g, '').length;
      return digits >= 7 && digits <= 15;
    },
    { error: 'Phone must have between 7 and 15 digits' },
  );

const Email = text('Email', INTAKE_LIMITS.email).regex(z.regexes.email, {
  error: 'Email must be a valid email address, like name@example.com',
  abort: true,
});

const Npi = z
  .string({ error: missingOr('NPI', 'text') })
  .trim()
  .regex(/^\d{10}$/, { error: 'NPI must be exactly 10 digits', abort: true })
  .refine(isValidNpi, {
    error: 'NPI is not valid: it must start with 1 or 2 and end with the correct check digit',
  })
  .meta({ description: 'National Provider Identifier: 10 digits with a Luhn check digit (80840 prefix rule).' });

const Coding = section('Diagnosis code', 'an object with system and code', {
  system: text('Code system', INTAKE_LIMITS.codeSystem).regex(/^(?:https?:\/\/|urn:(?:oid|uuid):)\S+$/, {
    error: 'Code system must be a URI, like http://hl7.org/fhir/sid/icd-10-cm',
    abort: true,
  }),
  code: text('Code', INTAKE_LIMITS.code).regex(/^\S+( \S+)*$/, {
    error: 'Code must not contain tabs, line breaks or double spaces',
    abort: true,
  }),
  display: text('Code display', INTAKE_LIMITS.codeDisplay).optional(),
});

const Sex = z
  .enum(['male', 'female', 'other', 'unknown'], { error: 'Sex must be one of male, female, other or unknown' })
  .meta({ description: 'Administrative sex (FHIR administrative-gender).' });

const Requester = section('Requester', 'an object', {
  name: text('Requester name', INTAKE_LIMITS.name),
  relationship: text('Relationship', INTAKE_LIMITS.relationship)
    .regex(/^[A-Za-z][A-Za-z0-9-]*$/, {
      error: 'Relationship must be a relationship code, like MTH, FTH or GUARD',
      abort: true,
    })
    .meta({
      description:
        "Requester's relationship to the patient: an HL7 v3 RoleCode (e.g. MTH, FTH, GUARD, HPOWATT) or a program code " +
        '(in-loco-parentis, personal-representative, court-appointed-guardian).',
    }),
  phone: Phone.optional(),
  email: Email.optional(),
  attestsLegalAuthority: flag('Legal authority attestation').meta({
    description: 'The requester confirms they have legal authority to make health care decisions for the patient.',
  }),
});

const Diagnosis = section('Diagnosis', 'an object with text', {
  text: text('Diagnosis', INTAKE_LIMITS.diagnosisText),
  codes: list('Diagnosis codes', Coding, 0, INTAKE_LIMITS.diagnosisCodes, 'code').optional(),
});

const ReferringPhysician = section('Referring physician', 'an object with a name', {
  name: text('Referring physician name', INTAKE_LIMITS.name),
  npi: Npi.optional(),
  organization: text('Organization', INTAKE_LIMITS.organization).optional(),
});

/** Options for {@link createIntakeSchema}. */
export interface IntakeSchemaOptions {
  /** Clock used for "birth date is not in the future"; defaults to the system clock. */
  now?: () => Date;
}

/**
 * Builds the intake schema. Use {@link IntakeSchema} in production; tests pass a fixed clock.
 */
export function createIntakeSchema(options: IntakeSchemaOptions = {}) {
  const clock: Clock = options.now ?? (() => new Date());
  return z
    .object({
      patient: section('Patient', 'an object', {
        name: HumanName,
        birthDate: birthDate(clock),
        sex: Sex.optional(),
        address: Address,
      }),
      requester: Requester,
      diagnosis: Diagnosis,
      history: text('History', INTAKE_LIMITS.history),
      reason: text('Reason', INTAKE_LIMITS.reason),
      questions: list('Questions', text('Question', INTAKE_LIMITS.question), 1, INTAKE_LIMITS.questions, 'question'),
      urgent: flag('Urgent'),
      referringPhysician: ReferringPhysician,
    })
    // Every intake string becomes FHIR text (the case's Patient, Consent and ServiceRequest, the
    // record's Composition, the report's PDF): a control character FHIR cannot carry is refused,
    // naming the field, rather than make every resource built from it invalid.
    .superRefine((intake, ctx) => {
      for (const found of fhirStringControlsIn(intake)) {
        ctx.addIssue({
          code: 'custom',
          path: found.path,
          message: fhirControlRefusal(found.path.join('.'), found.character),
        });
      }
    })
    .meta({
      title: 'Intake',
      description: "A parent or legal guardian's request for a specialist's written second opinion on a child's diagnosis.",
    });
}

/** The intake contract, with the system clock. */
export const IntakeSchema = createIntakeSchema();

/** A parsed intake (strings trimmed, a US state upper-cased; `patient.address.state` absent for some addresses abroad). */
export type Intake = z.infer<typeof IntakeSchema>;

/**
 * JSON Schema (draft 2020-12) of the intake request body, for the OpenAPI
 * document. Uses the input side of the schema (what clients send).
 */
export function intakeJsonSchema(): z.core.JSONSchema.BaseSchema {
  return z.toJSONSchema(IntakeSchema, { io: 'input' });
}
