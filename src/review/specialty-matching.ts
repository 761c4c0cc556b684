/**
 * Which specialty reviews a case: `mappings/specialty-matching.json` maps diagnosis codes
 * (SNOMED CT exactly, ICD-10 / ICD-10-CM by prefix) to NUCC taxonomy specialties.
 *
 * Ranking of a case's specialties: a specialty matched by the intake's diagnosis (what the family
 * asks about) comes before one matched only by Conditions in the assembled records; then more
 * matching codes first; then the order of the rules in the file.
 * @packageDocumentation
 */
import { z } from 'zod';
import { defaultMappingsDir, readMappingFile } from '../cases/mappings-dir';
import { isValidSnomedCode } from '../normalize/terminology';

/** File name of the matching rules inside the mappings directory. */
export const SPECIALTY_MATCHING_FILE = 'specialty-matching.json';

/** SNOMED CT. */
export const SNOMED_SYSTEM = 'http://snomed.info/sct';
/** ICD-10 code systems whose codes are matched by prefix. */
export const ICD10_SYSTEMS: readonly string[] = ['http://hl7.org/fhir/sid/icd-10-cm', 'http://hl7.org/fhir/sid/icd-10'];

const Icd10Prefix = z.string().regex(/^[A-Z](\d([0-9A-Z](\.?[0-9A-Z]{1,4})?)?)?$/, { error: 'must be an ICD-10 code or prefix like G40 or E34.3' });
const Snomed = z.string().refine(isValidSnomedCode, { error: 'must be a SNOMED CT identifier with a valid check digit' });

/** Validates `mappings/specialty-matching.json`. */
export const SpecialtyMatchingSchema = z
  .strictObject({
    $comment: z.string().optional(),
    version: z.string().min(1),
    specialtySystem: z.url(),
    specialties: z.array(z.strictObject({ code: z.string().regex(/^[0-9A-Z]{9}X$/, { error: 'must be a NUCC taxonomy code' }), display: z.string().min(1) })).min(1),
    rules: z.array(
      z.strictObject({
        specialty: z.string(),
        display: z.string().optional(),
        snomed: z.array(Snomed).default([]),
        icd10: z.array(Icd10Prefix).default([]),
      }),
    ),
  })
  .superRefine((data, ctx) => {
    const codes = data.specialties.map((s) => s.code);
    codes.forEach((code, i) => {
      if (codes.indexOf(code) !== i) ctx.addIssue({ code: 'custom', path: ['specialties', i, 'code'], message: `specialty ${code} is listed twice` });
    });
    data.rules.forEach((rule, i) => {
      if (!codes.includes(rule.specialty)) {
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'specialty'], message: `unknown specialty ${rule.specialty}; list it under specialties` });
      }
      if (rule.snomed.length + rule.icd10.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['rules', i], message: 'a rule needs at least one snomed or icd10 code' });
      }
    });
  });

/** Validated matching rules. */
export type SpecialtyMatching = z.infer<typeof SpecialtyMatchingSchema>;

/**
 * Loads and validates the matching rules.
 * @throws MappingsError when the file is missing or invalid
 */
export function loadSpecialtyMatching(dir: string = defaultMappingsDir()): SpecialtyMatching {
  return readMappingFile(dir, SPECIALTY_MATCHING_FILE, SpecialtyMatchingSchema);
}

/** A diagnosis code of a case and where it came from. */
export interface CaseDiagnosisCode {
  readonly system: string;
  readonly code: string;
  readonly from: 'intake' | 'records';
}

/** A specialty that fits the case, with the codes that made it fit. */
export interface RankedSpecialty {
  readonly code: string;
  readonly display: string;
  readonly fromIntake: boolean;
  /** `system|code` of each matching diagnosis code. */
  readonly matchedCodes: string[];
}

const normalizeIcd = (code: string): string => code.toUpperCase().replace(/\./g, '');

function ruleMatches(rule: SpecialtyMatching['rules'][number], code: CaseDiagnosisCode): boolean {
  if (code.system === SNOMED_SYSTEM) return rule.snomed.includes(code.code);
  if (ICD10_SYSTEMS.includes(code.system)) {
    const value = normalizeIcd(code.code);
    return rule.icd10.some((prefix) => value.startsWith(normalizeIcd(prefix)));
  }
  return false;
}

/** The specialties that fit `codes`, best first (see the module comment for the order). */
export function rankSpecialties(matching: SpecialtyMatching, codes: readonly CaseDiagnosisCode[]): RankedSpecialty[] {
  const found = new Map<string, { fromIntake: boolean; matched: Set<string>; order: number }>();
  matching.rules.forEach((rule, order) => {
    for (const code of codes) {
      if (!ruleMatches(rule, code)) continue;
      const entry = found.get(rule.specialty) ?? { fromIntake: false, matched: new Set<string>(), order };
      entry.fromIntake ||= code.from === 'intake';
      entry.matched.add(`${code.system}|${code.code}`);
      entry.order = Math.min(entry.order, order);
      found.set(rule.specialty, entry);
    }
  });
  return [...found.entries()]
    .sort(([, a], [, b]) => Number(b.fromIntake) - Number(a.fromIntake) || b.matched.size - a.matched.size || a.order - b.order)
    .map(([code, entry]) => ({
      code,
      display: matching.specialties.find((s) => s.code === code)?.display ?? code,
      fromIntake: entry.fromIntake,
      matchedCodes: [...entry.matched],
    }));
}
