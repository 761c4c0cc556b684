/**
 * Terminology: local and secondary codes mapped to LOINC, SNOMED CT, RxNorm, CVX and ICD-10-CM by
 * rule data in `mappings/terminology/`, appended beside the original coding (never replacing it).
 *
 * Rule data (validated with zod when loaded, loaded once per directory):
 * - `conceptmap-*.json`: ConceptMap-like tables (R4 names: `url`, `version`, `group.source`,
 *   `group.target`, `element.code`, `element.target[].code/display/equivalence`) plus one member R4
 *   lacks, `element.quantity` (the UCUM unit results of this code are reported in, the UCUM units
 *   converted `from`, with a molecular weight for mass ↔ molar conversion and the decimals to round
 *   to; see `units.ts`);
 * - `systems.json`: code systems that count as standard (not reported as unmapped);
 * - `ucum-units.json`: unit strings seen in the wild → UCUM codes.
 *
 * Applied to the CodeableConcepts in `code`, `vaccineCode`, `medicationCodeableConcept`,
 * `valueCodeableConcept`, `category`, and `component[].code` / `component[].valueCodeableConcept`.
 * A target is appended only when its equivalence is `equivalent`, `equal`, `wider` or `subsumes`
 * (the source concept implies it); `narrower`/`inexact`/… rows are loaded but not applied.
 *
 * Decision on marking: an appended coding has `userSelected: false` (R4: "not chosen directly by the
 * user") and the extension `https://second-opinion.example.org/fhir/StructureDefinition/mapped-coding`
 * whose `valueCanonical` is the ConceptMap `url|version` that produced it: per coding (a resource-level
 * `meta.tag` could not say which coding was derived) and traceable to the rule version.
 *
 * Unmapped: a coding whose system is neither standard nor mapped is counted per source, resource
 * type, system and code. A code under `http://loinc.org` that is not LOINC, or under
 * `http://snomed.info/sct` that is not an SCTID (Synthea-HIV's OpenMRS concept ids like
 * `5089AAAA…` under both), is counted too and warned about (`invalid-loinc-code`,
 * `invalid-snomed-code`), not fixed.
 * @see https://hl7.org/fhir/R4/datatypes.html#CodeableConcept
 * @see https://hl7.org/fhir/R4/datatypes-definitions.html#Coding.userSelected
 * @see https://hl7.org/fhir/R4/conceptmap.html
 * @see https://hl7.org/fhir/R4/valueset-concept-map-equivalence.html
 * @see https://loinc.org/kb/users-guide/calculating-mod-10-check-digits/
 * @see https://confluence.ihtsdotools.org/display/DOCRELFMT/6.1+SCTID+Data+Type (SCTID, Verhoeff check digit)
 * @packageDocumentation
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Coding, Extension } from 'fhir/r4';
import { z } from 'zod';
import { defaultMappingsDir, MappingsError, readMappingFile } from '../cases/mappings-dir';
import { MAPPED_CODING_EXTENSION } from './mapped-coding';
import type { UnmappedCode } from './types';
import { convertUcum, isDimensionlessSwap, isUcumCode } from './units';

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

export { MAPPED_CODING_EXTENSION } from './mapped-coding';

/** Equivalences whose target is implied by the source concept, hence safe to append. */
export const APPLIED_EQUIVALENCES: ReadonlySet<string> = new Set(['equivalent', 'equal', 'wider', 'subsumes']);

const comment = z.string().optional();
const Equivalence = z.enum(['relatedto', 'equivalent', 'equal', 'wider', 'subsumes', 'narrower', 'specializes', 'inexact', 'unmatched', 'disjoint']);

const TargetSchema = z.strictObject({
  code: z.string().min(1),
  display: z.string().min(1),
  equivalence: Equivalence,
  comment,
});

const QuantityRuleSchema = z.strictObject({
  /** UCUM code results are normalized to. */
  unit: z.string().min(1),
  /** Human-readable unit (Quantity.unit) after conversion; default the UCUM code. */
  display: z.string().min(1).optional(),
  /** g/mol, for mass ↔ molar conversion. */
  molecularWeight: z.number().positive().optional(),
  /** Decimal places of a converted value; default 6 significant digits. */
  decimals: z.number().int().min(0).max(12).optional(),
  /**
   * UCUM codes a reported value is converted from (allow-list; none when absent): a value in another
   * unit is kept as reported with the warning `unit-conversion-refused` (see `units.ts`).
   */
  from: z.array(z.string().min(1)).optional(),
  $comment: comment,
});
/** How results coded with a concept are reported (see `units.ts`). */
export type QuantityRule = z.infer<typeof QuantityRuleSchema>;

const ElementSchema = z.strictObject({
  code: z.string().min(1),
  display: z.string().min(1).optional(),
  target: z.array(TargetSchema).min(1),
  quantity: QuantityRuleSchema.optional(),
  $comment: comment,
});

const GroupSchema = z.strictObject({
  source: z.string().min(1),
  target: z.enum(Object.values(TARGET_SYSTEMS) as [string, ...string[]]),
  element: z.array(ElementSchema).min(1),
  $comment: comment,
});

const ConceptMapSchema = z.strictObject({
  resourceType: z.literal('ConceptMap'),
  url: z.url(),
  version: z.string().min(1),
  name: z.string().regex(/^[A-Z][A-Za-z0-9_]{0,254}$/),
  title: z.string().min(1),
  status: z.enum(['draft', 'active', 'retired', 'unknown']),
  description: z.string().optional(),
  group: z.array(GroupSchema).min(1),
  $comment: comment,
});
type ConceptMapFile = z.infer<typeof ConceptMapSchema>;

const SystemsSchema = z.strictObject({
  $comment: comment,
  standard: z.array(z.strictObject({ system: z.string().min(1), name: z.string().min(1) })).min(1),
  standardPrefixes: z.array(z.strictObject({ prefix: z.string().min(1), name: z.string().min(1) })),
});

const UcumUnitsSchema = z.strictObject({
  $comment: comment,
  aliases: z.array(z.strictObject({ unit: z.string().min(1), ucum: z.string().min(1), $comment: comment })),
});

/** File names inside the terminology directory. */
export const TERMINOLOGY_FILES = { systems: 'systems.json', ucumUnits: 'ucum-units.json', conceptMapPattern: /^conceptmap-.+\.json$/ } as const;

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
const CODE_SYNTAX: ReadonlyMap<string, { readonly valid: (code: string) => boolean; readonly warning: string; readonly what: string }> = new Map([
  [TARGET_SYSTEMS.loinc, { valid: isValidLoincCode, warning: 'invalid-loinc-code', what: 'a LOINC code (digits, hyphen, check digit)' }],
  [TARGET_SYSTEMS.snomed, { valid: isValidSnomedCode, warning: 'invalid-snomed-code', what: 'a SNOMED CT identifier (6-18 digits, Verhoeff check digit)' }],
]);

/**
 * Problems of a row's quantity rule: its unit must be UCUM, and each unit it converts `from` must be
 * UCUM, convertible to it (with the row's molecular weight) and not a dimensionless unit of another
 * scale ({@link isDimensionlessSwap}: e.g. HbA1c mmol/mol is not convertible to %).
 */
function quantityRuleProblems(code: string, rule: QuantityRule): string[] {
  if (!isUcumCode(rule.unit)) return [`${code}: quantity unit "${rule.unit}" is not UCUM`];
  const problems: string[] = [];
  for (const from of rule.from ?? []) {
    if (!isUcumCode(from)) problems.push(`${code}: quantity source unit "${from}" is not UCUM`);
    else if (from === rule.unit) problems.push(`${code}: quantity source unit "${from}" is the rule unit itself`);
    else if (isDimensionlessSwap(from, rule.unit)) problems.push(`${code}: quantity source unit "${from}" and "${rule.unit}" are different dimensionless scales`);
    else {
      const converted = convertUcum(1, from, rule.unit, rule.molecularWeight);
      if ('error' in converted) problems.push(`${code}: quantity source unit "${from}" does not convert to "${rule.unit}": ${converted.error}`);
    }
  }
  return problems;
}

function loadConceptMap(dir: string, file: string): ConceptMapFile {
  const map = readMappingFile(dir, file, ConceptMapSchema);
  const problems: string[] = [];
  for (const group of map.group) {
    for (const element of group.element) {
      for (const target of element.target) {
        const syntax = CODE_SYNTAX.get(group.target);
        if (syntax && !syntax.valid(target.code)) problems.push(`${element.code} → ${target.code} is not ${syntax.what}`);
      }
      if (element.quantity) problems.push(...quantityRuleProblems(element.code, element.quantity));
    }
  }
  if (problems.length > 0) throw new MappingsError(`Rule data ${path.join(dir, file)} is invalid:\n  ${problems.join('\n  ')}`, path.join(dir, file));
  return map;
}

function buildMappings(dir: string): TerminologyMappings {
  const systems = readMappingFile(dir, TERMINOLOGY_FILES.systems, SystemsSchema);
  const units = readMappingFile(dir, TERMINOLOGY_FILES.ucumUnits, UcumUnitsSchema);
  const ucumAliases = new Map<string, string>();
  for (const a of units.aliases) {
    if (!isUcumCode(a.ucum)) throw new MappingsError(`Rule data ${TERMINOLOGY_FILES.ucumUnits}: "${a.ucum}" (for "${a.unit}") is not UCUM`, path.join(dir, TERMINOLOGY_FILES.ucumUnits));
    if (ucumAliases.has(a.unit)) throw new MappingsError(`Rule data ${TERMINOLOGY_FILES.ucumUnits}: unit "${a.unit}" listed twice`);
    ucumAliases.set(a.unit, a.ucum);
  }
  const files = fs.readdirSync(dir).filter((f) => TERMINOLOGY_FILES.conceptMapPattern.test(f)).sort();
  const targets = new Map<string, MappedTarget[]>();
  const quantityRules = new Map<string, QuantityRule>();
  const conceptMaps: ConceptMapSummary[] = [];
  const owner = new Map<string, string>();
  for (const file of files) {
    const map = loadConceptMap(dir, file);
    const mappedBy = `${map.url}|${map.version}`;
    for (const group of map.group) {
      for (const element of group.element) {
        const key = `${group.source}|${element.code}`;
        const previous = owner.get(`${key}→${group.target}`);
        if (previous) throw new MappingsError(`Rule data ${file}: ${key} → ${group.target} is also mapped in ${previous}`, path.join(dir, file));
        owner.set(`${key}→${group.target}`, file);
        const list = targets.get(key) ?? [];
        for (const t of element.target) list.push({ system: group.target, code: t.code, display: t.display, equivalence: t.equivalence, mappedBy });
        targets.set(key, list);
        if (element.quantity) {
          if (quantityRules.has(key)) throw new MappingsError(`Rule data ${file}: ${key} has a quantity rule in two maps`, path.join(dir, file));
          quantityRules.set(key, element.quantity);
        }
      }
    }
    conceptMaps.push({
      file,
      url: map.url,
      version: map.version,
      groups: map.group.map((g) => ({ source: g.source, target: g.target, elements: g.element.length })),
    });
  }
  const bySystem = new Map<string, Map<string, { targets: readonly MappedTarget[]; quantity?: QuantityRule }>>();
  for (const [key, list] of targets) {
    const bar = key.indexOf('|');
    const system = key.slice(0, bar);
    const codes = bySystem.get(system) ?? new Map<string, { targets: readonly MappedTarget[]; quantity?: QuantityRule }>();
    const quantity = quantityRules.get(key);
    codes.set(key.slice(bar + 1), quantity ? { targets: list, quantity } : { targets: list });
    bySystem.set(system, codes);
  }
  return {
    dir,
    conceptMaps,
    targets,
    quantityRules,
    bySystem,
    standardSystems: new Set(systems.standard.map((s) => s.system)),
    standardPrefixes: systems.standardPrefixes.map((p) => p.prefix),
    ucumAliases,
  };
}

const loaded = new Map<string, TerminologyMappings>();

/** `mappings/terminology` of the repository (or image). */
export function defaultTerminologyDir(): string {
  return path.join(defaultMappingsDir(), 'terminology');
}

/**
 * Loads and validates the terminology rule data of `dir` (default `mappings/terminology`); each
 * directory is read once per process.
 * @throws MappingsError naming the file and the problems
 */
export function loadTerminologyMappings(dir: string = defaultTerminologyDir()): TerminologyMappings {
  const key = path.resolve(dir);
  let mappings = loaded.get(key);
  if (!mappings) {
    mappings = buildMappings(key);
    loaded.set(key, mappings);
  }
  return mappings;
}

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
