/**
 * Schema and loader for `mappings/eligibility.json`: who may ask, for whom, and from where.
 *
 * Relationship codes are HL7 v3 RoleCode codes
 * ({@link https://terminology.hl7.org/CodeSystem-v3-RoleCode.html}) plus a small
 * program code system for what v3 lacks (in loco parentis, personal
 * representative, court-appointed guardian). Each entry says whether that
 * requester can consent for a minor and for an adult patient.
 * @packageDocumentation
 */
import { z } from 'zod';
import { defaultMappingsDir, readMappingFile } from './mappings-dir';
import { isUsPostalStateCode } from './us-places';

/** File name of the eligibility rules inside the mappings directory. */
export const ELIGIBILITY_FILE = 'eligibility.json';

const comment = z.string().optional();

const RelationshipRule = z.strictObject({
  code: z.string().regex(/^[A-Za-z][A-Za-z0-9-]*$/),
  /** Key into `relationshipSystems`. */
  system: z.enum(['v3', 'local']),
  display: z.string().min(1),
  canConsentForMinor: z.boolean(),
  canConsentForAdult: z.boolean(),
  /** How the requester is named in a refusal; `{patient}` is replaced. Default `{patient}'s {display}`. */
  requesterPhrase: z.string().min(1).optional(),
  /** A sentence added to a refusal telling the family what to choose instead; `{patient}` is replaced. */
  hint: z.string().min(1).optional(),
  $comment: comment,
});
export type RelationshipRule = z.infer<typeof RelationshipRule>;

const StateCode = z.string().refine(isUsPostalStateCode, { error: 'not a USPS state or territory code' });

/** A USPS state or territory code written as addresses are stored: two upper-case letters. */
const UpperStateCode = z
  .string()
  .regex(/^[A-Z]{2}$/, { error: 'must be a 2-letter upper-case USPS state code, like MS', abort: true })
  .refine(isUsPostalStateCode, { error: 'not a USPS state or territory code' });

const ExcludedState = z.strictObject({
  state: StateCode,
  /** Name used in the refusal sentence ("who live in {name}"). */
  name: z.string().min(1),
  /** Why, completing "because …"; defaults to `defaultExclusionReason`. */
  reason: z.string().min(1).optional(),
  $comment: comment,
});
export type ExcludedState = z.infer<typeof ExcludedState>;

const ZipPrefixRange = z
  .strictObject({
    /** First prefix of the range (3 to 5 digits); ZIP codes are compared on that many leading digits. */
    from: z.string().regex(/^\d{3,5}$/),
    /** Last prefix, inclusive, same length as `from`. */
    to: z.string().regex(/^\d{3,5}$/),
    note: z.string().optional(),
  })
  .refine((r) => r.from.length === r.to.length && r.from <= r.to, {
    error: '`from` and `to` must have the same number of digits and from ≤ to',
  });
export type ZipPrefixRange = z.infer<typeof ZipPrefixRange>;

const LocalRegion = z.strictObject({
  /** Named in the refusal sentence ("Because {patient} lives in {name} …"). */
  name: z.string().min(1),
  state: StateCode,
  /** County names without the word "County". */
  counties: z.array(z.string().min(1)),
  zipPrefixes: z.array(ZipPrefixRange),
  $comment: comment,
});
export type LocalRegion = z.infer<typeof LocalRegion>;

/** Validates `mappings/eligibility.json`. */
export const EligibilityRulesSchema = z
  .strictObject({
    $comment: comment,
    version: z.string().min(1),
    /** IANA zone in which a patient's age on the request date is computed. */
    timeZone: z.string().refine(
      (tz) => {
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      },
      { error: 'not an IANA time zone' },
    ),
    /** Age from which a patient is an adult (18 in every US state but AL, NE and MS); see `adultAgeByState`. */
    adultAge: z.int().min(1).max(25),
    /**
     * Age of majority where it is not `adultAge`, by the USPS code of the patient's (US) address
     * state: `{ "AL": 19, "NE": 19, "MS": 21 }`. Optional (empty when absent); read by `adult-age.ts`.
     */
    adultAgeByState: z.record(UpperStateCode, z.int().min(1).max(25)).default({}),
    relationshipSystems: z.strictObject({ v3: z.url(), local: z.url() }),
    relationships: z.array(RelationshipRule).min(1),
    excludedStates: z.array(ExcludedState),
    defaultExclusionReason: z.string().min(1),
    localArea: z.strictObject({ $comment: comment, regions: z.array(LocalRegion) }),
  })
  .superRefine((rules, ctx) => {
    const seen = new Set<string>();
    rules.relationships.forEach((r, i) => {
      const key = r.code.toUpperCase();
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['relationships', i, 'code'], message: `duplicate code ${r.code}` });
      seen.add(key);
    });
    const states = new Set<string>();
    rules.excludedStates.forEach((s, i) => {
      if (states.has(s.state)) ctx.addIssue({ code: 'custom', path: ['excludedStates', i, 'state'], message: `duplicate state ${s.state}` });
      states.add(s.state);
    });
    rules.localArea.regions.forEach((region, i) => {
      if (states.has(region.state)) {
        ctx.addIssue({
          code: 'custom',
          path: ['localArea', 'regions', i, 'state'],
          message: `${region.state} is both excluded and part of the local area`,
        });
      }
    });
  });

/** Validated eligibility rules. */
export type EligibilityRules = z.infer<typeof EligibilityRulesSchema>;

/**
 * Loads and validates the eligibility rules.
 * @param dir - the mappings directory; defaults to {@link defaultMappingsDir}
 * @throws MappingsError when the file is missing or invalid
 */
export function loadEligibilityRules(dir: string = defaultMappingsDir()): EligibilityRules {
  return readMappingFile(dir, ELIGIBILITY_FILE, EligibilityRulesSchema);
}
