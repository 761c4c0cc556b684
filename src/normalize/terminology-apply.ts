/**
 * Terminology applied: mapped codings appended to a resource's concepts and unmapped codes tallied,
 * over rule data already loaded (`terminology.ts` loads and validates it, and re-exports all of
 * this). Apart from the loader so that the assembly thread, which only applies rules, does not load
 * zod (~20 MB of RSS per thread start). See `terminology.ts` for the rules themselves.
 * @see https://hl7.org/fhir/R4/conceptmap.html
 * @packageDocumentation
 */
import type { Coding, Extension } from 'fhir/r4';
import { MAPPED_CODING_EXTENSION } from './mapped-coding';
import type { QuantityRule } from './terminology';
import type { UnmappedCode } from './types';

/* Builtins bound once: hot loops then read module constants, not globals (much cheaper inside vm contexts such as jest's). */
const { isArray } = Array;

/** The target code systems of mappings. */
export const TARGET_SYSTEMS = {
  loinc: 'http://loinc.org',
  snomed: 'http://snomed.info/sct',
  rxnorm: 'http://www.nlm.nih.gov/research/umls/rxnorm',
  cvx: 'http://hl7.org/fhir/sid/cvx',
  icd10cm: 'http://hl7.org/fhir/sid/icd-10-cm',
} as const;

/** Equivalences whose target is implied by the source concept, hence safe to append. */
export const APPLIED_EQUIVALENCES: ReadonlySet<string> = new Set(['equivalent', 'equal', 'wider', 'subsumes']);

/** One mapping target, ready to append. */
export interface MappedTarget {
  readonly system: string;
  readonly code: string;
  readonly display: string;
  readonly equivalence: string;
  /** `url|version` of the ConceptMap. */
  readonly mappedBy: string;
}

/** A loaded ConceptMap, summarized (for Provenance: which rules were applied). */
export interface ConceptMapSummary {
  readonly file: string;
  readonly url: string;
  readonly version: string;
  readonly groups: readonly { readonly source: string; readonly target: string; readonly elements: number }[];
}

/** Terminology rule data, loaded and indexed. Build with {@link loadTerminologyMappings}. */
export interface TerminologyMappings {
  readonly dir: string;
  readonly conceptMaps: readonly ConceptMapSummary[];
  /** `system|code` → targets (all equivalences; {@link APPLIED_EQUIVALENCES} decides). */
  readonly targets: ReadonlyMap<string, readonly MappedTarget[]>;
  /** `system|code` → how its results are reported. */
  readonly quantityRules: ReadonlyMap<string, QuantityRule>;
  /** The same two tables as system → code → entry (the hot path looks up without building keys). */
  readonly bySystem: ReadonlyMap<string, ReadonlyMap<string, { readonly targets: readonly MappedTarget[]; readonly quantity?: QuantityRule }>>;
  readonly standardSystems: ReadonlySet<string>;
  readonly standardPrefixes: readonly string[];
  /** Unit string → UCUM code. */
  readonly ucumAliases: ReadonlyMap<string, string>;
}

const LOINC_TERM = /^(\d{1,7})-(\d)$/;
const LOINC_PART = /^L[APGL]\d{1,8}-\d$/;

/** LOINC's mod-10 check digit of the numeric part of a code (same as Luhn). */
export function loincCheckDigit(digits: string): number {
  let sum = 0;
  for (let i = digits.length - 1, double = true; i >= 0; i--, double = !double) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

/**
 * Whether `code` is a LOINC code: a term (`\d{1,7}-\d` with a correct mod-10 check digit), or a
 * LOINC answer, part, group or answer-list code (`LA…`, `LP…`, `LG…`, `LL…`).
 */
export function isValidLoincCode(code: string): boolean {
  const m = LOINC_TERM.exec(code);
  if (m) return loincCheckDigit(m[1] ?? '') === Number(m[2]);
  return LOINC_PART.test(code);
}

const SCTID = /^[1-9]\d{5,17}$/;
/* Verhoeff tables: multiplication in the dihedral group D5, and the position permutation. */
const VERHOEFF_D = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
  [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1], [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
  [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const VERHOEFF_P = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2], [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
  [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1], [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

/**
 * Whether `code` is a SNOMED CT identifier: 6 to 18 digits, no leading zero, a valid Verhoeff check
 * digit (last digit). Post-coordinated expressions are not SCTIDs and fail.
 */
export function isValidSnomedCode(code: string): boolean {
  if (!SCTID.test(code)) return false;
  let c = 0;
  for (let i = 0; i < code.length; i++) {
    const digit = code.charCodeAt(code.length - 1 - i) - 48;
    c = VERHOEFF_D[c]?.[VERHOEFF_P[i % 8]?.[digit] ?? 0] ?? 0;
  }
  return c === 0;
}

/** Code systems whose code syntax is checked, with the check and the warning code. */
export const CODE_SYNTAX: ReadonlyMap<string, { readonly valid: (code: string) => boolean; readonly warning: string; readonly what: string }> = new Map([
  [TARGET_SYSTEMS.loinc, { valid: isValidLoincCode, warning: 'invalid-loinc-code', what: 'a LOINC code (digits, hyphen, check digit)' }],
  [TARGET_SYSTEMS.snomed, { valid: isValidSnomedCode, warning: 'invalid-snomed-code', what: 'a SNOMED CT identifier (6-18 digits, Verhoeff check digit)' }],
]);

/** Whether codes of `system` need no mapping (standard, or HL7-defined). */
export function isStandardSystem(mappings: TerminologyMappings, system: string): boolean {
  if (mappings.standardSystems.has(system)) return true;
  for (const prefix of mappings.standardPrefixes) if (system.startsWith(prefix)) return true;
  return false;
}

/** Counts per source/type/system/code, and the number of appended codings, across resources. */
export class TerminologyTally {
  mappedCodings = 0;
  private readonly unmapped = new Map<string, { sourceId: string; resourceType: string; system: string; code: string; count: number }>();
  private readonly standard = new Map<string, boolean>();

  /** The resource being mapped (set by {@link applyTerminology}). */
  sourceId = '';
  resourceType = '';
  /** Invalid codes of the resource being mapped, by system. */
  invalidCodes: Map<string, string[]> | undefined;

  constructor(readonly mappings: TerminologyMappings) {}

  resetInvalidCodes(): void {
    this.invalidCodes = undefined;
  }

  /** Memoized {@link isStandardSystem}. */
  isStandard(system: string): boolean {
    let s = this.standard.get(system);
    if (s === undefined) {
      s = isStandardSystem(this.mappings, system);
      this.standard.set(system, s);
    }
    return s;
  }

  countUnmapped(sourceId: string, resourceType: string, system: string, code: string): void {
    const key = `${sourceId}\u0000${resourceType}\u0000${system}\u0000${code}`;
    const entry = this.unmapped.get(key);
    if (entry) entry.count++;
    else this.unmapped.set(key, { sourceId, resourceType, system, code, count: 1 });
  }

  /** Unmapped codes sorted by source, type, system, code. */
  unmappedCodes(): UnmappedCode[] {
    const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
    return [...this.unmapped.values()].sort(
      (a, b) => cmp(a.sourceId, b.sourceId) || cmp(a.resourceType, b.resourceType) || cmp(a.system, b.system) || cmp(a.code, b.code),
    );
  }
}

/** The CodeableConcept-valued elements mapped (each may also be a list). */
export const CONCEPT_ELEMENTS = ['code', 'vaccineCode', 'medicationCodeableConcept', 'valueCodeableConcept', 'category'] as const;

type Obj = Record<string, unknown>;
type Warn = (code: string, message: string) => void;

function hasCoding(codings: readonly unknown[], system: string, code: string): boolean {
  for (const c of codings) if (typeof c === 'object' && c !== null && (c as Coding).system === system && (c as Coding).code === code) return true;
  return false;
}

/** The coding appended for a mapping target. */
export function mappedCoding(target: MappedTarget): Coding {
  const marker: Extension = { url: MAPPED_CODING_EXTENSION, valueCanonical: target.mappedBy };
  return { extension: [marker], system: target.system, code: target.code, display: target.display, userSelected: false };
}

function mapConcept(concept: unknown, tally: TerminologyTally): void {
  if (typeof concept !== 'object' || concept === null) return;
  const codings = (concept as Obj)['coding'];
  if (!isArray(codings)) return;
  const { sourceId, resourceType } = tally;
  const n = codings.length;
  for (let i = 0; i < n; i++) {
    const c: unknown = codings[i];
    if (typeof c !== 'object' || c === null) continue;
    const code = (c as Obj)['code'];
    if (typeof code !== 'string') continue;
    const rawSystem = (c as Obj)['system'];
    const system = typeof rawSystem === 'string' ? rawSystem : '';
    const syntax = CODE_SYNTAX.get(system);
    if (syntax && !syntax.valid(code)) {
      tally.countUnmapped(sourceId, resourceType, system, code);
      const invalid = (tally.invalidCodes ??= new Map<string, string[]>());
      invalid.set(system, [...(invalid.get(system) ?? []), code]);
      continue;
    }
    const targets = tally.mappings.bySystem.get(system)?.get(code)?.targets;
    let applied = false;
    if (targets) {
      for (const t of targets) {
        if (!APPLIED_EQUIVALENCES.has(t.equivalence)) continue;
        applied = true;
        if (hasCoding(codings, t.system, t.code)) continue;
        codings.push(mappedCoding(t));
        tally.mappedCodings++;
      }
    }
    if (!applied && !tally.isStandard(system)) tally.countUnmapped(sourceId, resourceType, system, code);
  }
}

function mapElements(holder: Obj, tally: TerminologyTally): void {
  for (const name of CONCEPT_ELEMENTS) {
    const value = holder[name];
    if (isArray(value)) for (const item of value as unknown[]) mapConcept(item, tally);
    else if (value !== undefined) mapConcept(value, tally);
  }
}

/**
 * Appends mapped codings to a (copied) resource, in place, and tallies unmapped codes.
 * Warns `invalid-loinc-code` (`invalid-snomed-code`) once per resource with codes under the LOINC
 * (SNOMED CT) system that are not LOINC codes (SCTIDs).
 */
export function applyTerminology(resource: Obj, sourceId: string, tally: TerminologyTally, warn: Warn): void {
  tally.sourceId = sourceId;
  tally.resourceType = typeof resource['resourceType'] === 'string' ? resource['resourceType'] : '';
  tally.resetInvalidCodes();
  mapElements(resource, tally);
  const components = resource['component'];
  if (isArray(components)) {
    for (const component of components as unknown[]) if (typeof component === 'object' && component !== null) mapElements(component as Obj, tally);
  }
  const invalid = tally.invalidCodes;
  if (invalid) {
    for (const [system, codes] of invalid) {
      const syntax = CODE_SYNTAX.get(system);
      if (!syntax) continue;
      warn(syntax.warning, `code ${codes.map((c) => `"${c}"`).join(', ')} under ${system} is not ${syntax.what}; kept as sent, counted as unmapped`);
    }
  }
}
