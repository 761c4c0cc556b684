/**
 * Terminology: local and secondary codes mapped to LOINC, SNOMED CT, RxNorm, CVX and ICD-10-CM by
 * rule data in `mappings/terminology/`, appended beside the original coding (never replacing it).
 *
 * Rule data (validated with zod when loaded, loaded once per directory):
 * - `conceptmap-*.json`: ConceptMap-like tables (R4 names: `url`, `version`, `group.source`,
 *   `group.target`, `element.code`, `element.target[].code/display/equivalence`) plus one member R4
 *   lacks, `element.quantity` (the UCUM unit results of this code are reported in, the UCUM units
 *   converted `from`, with a molecular weight for mass ↔ molar conversion, the decimals to round
 *   to and the `plausible` range of values in that unit, `low` below `high`; see `units.ts`);
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
import { z } from 'zod';
import { defaultMappingsDir, MappingsError, readMappingFile } from '../cases/mappings-dir';
import { CODE_SYNTAX, TARGET_SYSTEMS, type ConceptMapSummary, type MappedTarget, type TerminologyMappings } from './terminology-apply';
import { convertUcum, isDimensionlessSwap, isUcumCode } from './units';

export { MAPPED_CODING_EXTENSION } from './mapped-coding';
export * from './terminology-apply';


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
  /**
   * Values a result can take, in `unit` (inclusive): one outside is not converted and is warned
   * `quantity-implausible` (see `units.ts`). The bounds are read as they are and checked by
   * {@link plausibleRangeOf}, so that an error names the row, not only its place in the file.
   */
  plausible: z.strictObject({ low: z.unknown().optional(), high: z.unknown().optional(), $comment: comment }).optional(),
  $comment: comment,
});
/** A quantity rule as read from the rule data, before its plausible range is checked. */
type QuantityRuleData = z.infer<typeof QuantityRuleSchema>;

/**
 * The values a result can take, in its rule's unit, bounds included: from the smallest neonate to
 * the largest adult for the growth vitals. Not a reference range (what is normal) but what a
 * measurement of this kind can be at all, so that a value outside tells a unit recorded wrongly
 * (a Celsius reading labelled `[degF]`, grams labelled `kg`).
 */
export interface PlausibleRange {
  readonly low: number;
  readonly high: number;
}

/** How results coded with a concept are reported (see `units.ts`). */
export type QuantityRule = Omit<QuantityRuleData, 'plausible'> & { readonly plausible?: PlausibleRange };

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

/**
 * Problems of a row's quantity rule: its unit must be UCUM, and each unit it converts `from` must be
 * UCUM, convertible to it (with the row's molecular weight) and not a dimensionless unit of another
 * scale ({@link isDimensionlessSwap}: e.g. HbA1c mmol/mol is not convertible to %).
 */
function quantityRuleProblems(code: string, rule: QuantityRuleData): string[] {
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

/**
 * The checked plausible range of row `code`'s quantity rule, or the problem with it (naming the
 * row): both bounds finite numbers, `low` below `high`.
 */
function plausibleRangeOf(code: string, plausible: NonNullable<QuantityRuleData['plausible']>, unit: string): PlausibleRange | { problem: string } {
  const { low, high } = plausible;
  const notNumber = (side: string, v: unknown) => `${code}: quantity plausible ${side} ${v === undefined ? 'missing' : JSON.stringify(v)} is not a number (in ${unit})`;
  if (typeof low !== 'number' || !Number.isFinite(low)) return { problem: notNumber('low', low) };
  if (typeof high !== 'number' || !Number.isFinite(high)) return { problem: notNumber('high', high) };
  if (low >= high) return { problem: `${code}: quantity plausible low ${low} is not below high ${high} (${unit})` };
  return { low, high };
}

/** A row of a concept map as read. */
type ElementData = ConceptMapFile['group'][number]['element'][number];

/** A row of a concept map read and checked: its group's systems, the row, and its checked quantity rule. */
interface CheckedRow {
  readonly source: string;
  readonly target: string;
  readonly element: ElementData;
  readonly rule: QuantityRule | undefined;
}

/** A concept map read and checked, its rows in file order. */
interface LoadedConceptMap {
  readonly map: ConceptMapFile;
  readonly rows: readonly CheckedRow[];
}

/** The checked quantity rule of a row (its problems appended to `problems`), or undefined when it has none or it is invalid. */
function checkedRuleOf(element: ElementData, problems: string[]): QuantityRule | undefined {
  if (!element.quantity) return undefined;
  problems.push(...quantityRuleProblems(element.code, element.quantity));
  const { plausible, ...rule } = element.quantity;
  if (plausible === undefined) return rule;
  const range = plausibleRangeOf(element.code, plausible, rule.unit);
  if ('problem' in range) {
    problems.push(range.problem);
    return undefined;
  }
  return { ...rule, plausible: range };
}

function loadConceptMap(dir: string, file: string): LoadedConceptMap {
  const map = readMappingFile(dir, file, ConceptMapSchema);
  const problems: string[] = [];
  const rows: CheckedRow[] = [];
  for (const group of map.group) {
    for (const element of group.element) {
      for (const target of element.target) {
        const syntax = CODE_SYNTAX.get(group.target);
        if (syntax && !syntax.valid(target.code)) problems.push(`${element.code} → ${target.code} is not ${syntax.what}`);
      }
      rows.push({ source: group.source, target: group.target, element, rule: checkedRuleOf(element, problems) });
    }
  }
  if (problems.length > 0) throw new MappingsError(`Rule data ${path.join(dir, file)} is invalid:\n  ${problems.join('\n  ')}`, path.join(dir, file));
  return { map, rows };
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
    const { map, rows } = loadConceptMap(dir, file);
    const mappedBy = `${map.url}|${map.version}`;
    for (const { source, target, element, rule } of rows) {
      const key = `${source}|${element.code}`;
      const previous = owner.get(`${key}→${target}`);
      if (previous) throw new MappingsError(`Rule data ${file}: ${key} → ${target} is also mapped in ${previous}`, path.join(dir, file));
      owner.set(`${key}→${target}`, file);
      const list = targets.get(key) ?? [];
      for (const t of element.target) list.push({ system: target, code: t.code, display: t.display, equivalence: t.equivalence, mappedBy });
      targets.set(key, list);
      if (rule) {
        if (quantityRules.has(key)) throw new MappingsError(`Rule data ${file}: ${key} has a quantity rule in two maps`, path.join(dir, file));
        quantityRules.set(key, rule);
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
