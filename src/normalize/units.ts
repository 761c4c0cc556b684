/**
 * Units of Observation quantities: UCUM codes filled in, and conversion to the unit a mapping row
 * asks for, computed by the UCUM library `@lhncbc/ucum-lhc` (no hand-written factors).
 *
 * Per Quantity of an Observation (`valueQuantity`, `referenceRange.low/high`, and the same in each
 * `component`):
 * 1. Missing `system`/`code` with a `unit` string: the code comes from the UCUM alias table of the
 *    mappings (`K/uL` → `10*3/uL`: note that `K/uL` *is* valid UCUM, kelvin per microliter, which is
 *    why the aliases are consulted first; `C` → `Cel`, not coulomb), else from the unit itself when it
 *    is valid UCUM — except a bare one-letter unit (`m`: metre, minute or month?), which is taken only
 *    through an alias and otherwise left as `unit` alone with the warning `unit-ambiguous`. A unit that
 *    is neither gives the warning `unit-not-ucum`, as does an invalid code under the UCUM system; those
 *    are not "fixed" (the source said what it said).
 * 2. When the Observation's code was mapped by a concept-map row with a `quantity` rule and the
 *    quantity's UCUM code differs from the rule's unit, the value is converted (mass ↔ molar with the
 *    row's molecular weight) and rounded to the row's `decimals` (else to 6 significant digits, which
 *    only removes floating-point noise); the reference range is converted with it so the two agree
 *    ({@link rangesFollowValue}): a bound without a unit (valid in R4: it is read in the value's unit)
 *    takes the value's reported unit and is converted with it, and when a range cannot follow — its
 *    text states numbers, or a bound is in a unit that is not UCUM or does not convert — the value is
 *    not converted either (warning `unit-conversion-refused`), so value and range never disagree.
 *    A conversion UCUM can compute is still refused (warning `unit-conversion-refused`, value kept as
 *    reported) when it would change what the number means ({@link conversionRefusal}): between two
 *    different dimensionless units, from a unit the rule does not list in `from`, or to another kind of
 *    quantity than the source's own codes state.
 * 3. When the rule has a `plausible` range (in its unit) and the value — as converted, or as reported
 *    when already in the rule's unit — lies outside it, nothing of the Observation or component is
 *    converted (value and reference range stay as reported, so they still agree) and the warning
 *    `quantity-implausible` says what the value would be, the range, and the unit the number would be
 *    plausible in ({@link implausibility}): "37 [degF] would be 2.8 Cel, outside 25–45 Cel for Body
 *    temperature (8310-5): not converted, kept as reported; was it recorded in Cel?". A unit recorded
 *    wrongly is then shown as the source sent it, flagged, instead of as a converted number that looks
 *    measured. The range is what such a measurement can be at all (the growth vitals: the smallest
 *    neonate to the largest adult), not a reference range.
 *
 * Decision on the original value: FHIR R4 has no element for "the quantity as reported before unit
 * conversion" (`originalText` is for strings; `Observation.note` is free text, not computable). The
 * converted Quantity carries the original, unchanged, as a program extension
 * `https://second-opinion.example.org/fhir/StructureDefinition/original-quantity` (`valueQuantity`) on
 * the Quantity itself (Quantity is an Element, so it may carry extensions; the same works for
 * reference-range SimpleQuantities). Readers that ignore extensions see the normalized value; the
 * reported value and unit stay computable and auditable, and the raw store keeps the resource as sent.
 * @see https://hl7.org/fhir/R4/datatypes.html#Quantity
 * @see https://hl7.org/fhir/R4/observation.html#units
 * @see https://ucum.org/ucum
 * @see https://lhncbc.github.io/ucum-lhc/
 * @packageDocumentation
 */
import type { Extension, Quantity } from 'fhir/r4';
import { cloneJson, type JsonObject } from './dedupe/json';
import { isMappedCoding } from './mapped-coding';
import type { MappedTarget, PlausibleRange, QuantityRule, TerminologyMappings } from './terminology';
import type { MatchCoding } from './types';

/* Builtins bound once: hot loops then read module constants, not globals (much cheaper inside vm contexts such as jest's). */
const { isArray } = Array;

/** UCUM code system URI. */
export const UCUM_SYSTEM = 'http://unitsofmeasure.org';

/** Extension on a converted Quantity holding the Quantity as the source reported it. */
export const ORIGINAL_QUANTITY_EXTENSION = 'https://second-opinion.example.org/fhir/StructureDefinition/original-quantity';

/**
 * The part of a ucum-lhc unit object read here (`getSpecifiedUnit(…).unit`, also returned by
 * `convertUnitTo` "for additional data"): dimension vector, and the exponents of mol and eq, which
 * UCUM itself counts as pure numbers (mol = 6.0221367 × 10²³) but the library tracks apart.
 */
interface UcumUnit {
  readonly name_?: string;
  readonly dim_?: { readonly dimVec_?: readonly number[] } | null;
  readonly moleExp_?: number;
  readonly equivalentExp_?: number;
  readonly isArbitrary_?: boolean;
}

/** The part of `@lhncbc/ucum-lhc` used here (the package ships no type declarations). */
interface UcumLhcUtils {
  validateUnitString(unit: string, suggest?: boolean): { status: 'valid' | 'invalid' | 'error'; ucumCode: string | null };
  getSpecifiedUnit(unit: string, valConv: 'validate', suggest?: boolean): { status: string; unit?: UcumUnit | null };
  convertUnitTo(
    from: string,
    value: number,
    to: string,
    options?: { molecularWeight?: number },
  ): { status: 'succeeded' | 'failed' | 'error'; toVal: number | null; msg: string[] };
}

let utils: UcumLhcUtils | undefined;

/** The UCUM library, loaded on first use (about 0.1 s: it parses the UCUM tables). */
function ucum(): UcumLhcUtils {
  if (!utils) {
    const lib = require('@lhncbc/ucum-lhc') as { UcumLhcUtils: { getInstance(): UcumLhcUtils } };
    utils = lib.UcumLhcUtils.getInstance();
  }
  return utils;
}

const validity = new Map<string, boolean>();

/** Whether `code` is a valid case-sensitive UCUM expression (memoized: units repeat). */
export function isUcumCode(code: string): boolean {
  let valid = validity.get(code);
  if (valid === undefined) {
    valid = code.trim() !== '' && ucum().validateUnitString(code).status === 'valid';
    validity.set(code, valid);
  }
  return valid;
}

/** What a UCUM unit measures, as far as deciding whether a conversion is safe needs it. */
export interface UnitKind {
  /** The unit's UCUM name (`m` → "meter", `C` → "Coulomb"). */
  readonly name: string;
  /**
   * A pure number: every base dimension 0 and no mol or eq (`%`, `1`, `{ratio}`, `mmol/mol`,
   * `mg/g`, `L/L`). UCUM converts any two of these by a power of ten.
   */
  readonly dimensionless: boolean;
  /** Exponent of mol (amount of substance): 1 for `mmol/L`, 0 for `mg/dL` and for `mmol/mol`. */
  readonly substance: number;
  /** Exponent of eq (equivalents): 1 for `meq/L`. */
  readonly equivalents: number;
}

const kinds = new Map<string, UnitKind | null>();

/**
 * The {@link UnitKind} of a valid UCUM code (memoized), or undefined when it is not UCUM.
 * @see https://ucum.org/ucum (§ 2.3 "the unity", dimensionless units; § 4.3.2 mole)
 */
export function unitKind(code: string): UnitKind | undefined {
  let kind = kinds.get(code);
  if (kind === undefined) {
    const unit = isUcumCode(code) ? ucum().getSpecifiedUnit(code, 'validate').unit : undefined;
    kind = unit ? kindOf(unit) : null;
    kinds.set(code, kind);
  }
  return kind ?? undefined;
}

function kindOf(unit: UcumUnit): UnitKind {
  const substance = unit.moleExp_ ?? 0;
  const equivalents = unit.equivalentExp_ ?? 0;
  const dims = unit.dim_?.dimVec_ ?? [];
  const dimensionless = unit.isArbitrary_ !== true && substance === 0 && equivalents === 0 && dims.every((d) => d === 0);
  return { name: unit.name_ ?? '', dimensionless, substance, equivalents };
}

/**
 * Whether `from` → `to` goes between two different dimensionless units. UCUM treats `%`,
 * `mmol/mol`, `1` and `{ratio}` alike as pure numbers, so it "converts" HbA1c 48 mmol/mol (IFCC) to
 * 4.8 % — but HbA1c in % is the NGSP/DCCT scale (≈ 0.0915 × IFCC + 2.15, i.e. 6.5 %): a different
 * measurement, not a different unit. Such pairs are never converted.
 * @see https://ucum.org/ucum
 * @see https://ngsp.org/ifccngsp.asp (IFCC–NGSP master equation)
 */
export function isDimensionlessSwap(from: string, to: string): boolean {
  if (from === to) return false;
  return unitKind(from)?.dimensionless === true && unitKind(to)?.dimensionless === true;
}

/**
 * Whether `from` → `to` changes the kind of quantity: amount of substance or equivalents ↔ mass
 * (`mmol/L` → `mg/dL`), which UCUM computes only with a molecular weight.
 */
export function changesKind(from: string, to: string): boolean {
  const a = unitKind(from);
  const b = unitKind(to);
  return a !== undefined && b !== undefined && (a.substance !== b.substance || a.equivalents !== b.equivalents);
}

/**
 * Converts `value` from UCUM `from` to UCUM `to` with the UCUM library.
 * @param molecularWeight - g/mol, for mass ↔ amount-of-substance conversions
 * @returns the converted value, or the library's reason when it cannot convert
 */
export function convertUcum(value: number, from: string, to: string, molecularWeight?: number): { value: number } | { error: string } {
  const result = ucum().convertUnitTo(from, value, to, molecularWeight === undefined ? {} : { molecularWeight });
  if (result.status === 'succeeded' && typeof result.toVal === 'number' && Number.isFinite(result.toVal)) return { value: result.toVal };
  return { error: result.msg.join(' ') || `cannot convert ${from} to ${to}` };
}

/** Rounds to `decimals` places, or to 6 significant digits when not given. */
export function roundConverted(value: number, decimals?: number): number {
  if (decimals === undefined) return Number(value.toPrecision(6));
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

type Warn = (code: string, message: string) => void;
type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !isArray(v);
}

/** Whether `text` is a single ASCII letter (`m`, `C`, `g`…). */
function isBareLetter(text: string): boolean {
  if (text.length !== 1) return false;
  const c = text.charCodeAt(0) | 0x20; /* lower case */
  return c >= 97 && c <= 122;
}

/**
 * The UCUM code of a unit text: its alias, else the text itself when it is valid UCUM and not a bare
 * one-letter unit. A single letter in a clinical feed is too often another unit than its UCUM meaning
 * (`C` for °C is coulomb, `m` for months or minutes is metre), so one is taken only through the alias
 * table, which lists the unambiguous ones (`C` → `Cel`, `F` → `[degF]`, `g`, `L`, `h`…).
 * @returns the code, or why there is none
 */
function ucumCodeOf(text: string, mappings: TerminologyMappings): { code: string } | { ambiguous: string } | undefined {
  const alias = mappings.ucumAliases.get(text);
  if (alias !== undefined) return { code: alias };
  if (!isUcumCode(text)) return undefined;
  if (isBareLetter(text)) return { ambiguous: unitKind(text)?.name ?? text };
  return { code: text };
}

/** The warning for a unit text with no UCUM code (`what` names it in the message). */
function warnNoCode(found: { ambiguous: string } | undefined, what: string, warn: Warn): void {
  if (found) {
    warn('unit-ambiguous', `${what} is a bare one-letter unit with no alias (as UCUM it would be ${found.ambiguous}); left without a code`);
  } else warn('unit-not-ucum', `${what} is not UCUM and has no alias; left without a code`);
}

/** Fills `system`/`code` of a Quantity from its `unit` (step 1); warns on non-UCUM and ambiguous units. */
function fillUcum(q: Obj, mappings: TerminologyMappings, warn: Warn): void {
  const { system, code, unit } = q;
  if (system === undefined && code === undefined) {
    if (typeof unit !== 'string') return;
    const found = ucumCodeOf(unit, mappings);
    if (found !== undefined && 'code' in found) {
      q['system'] = UCUM_SYSTEM;
      q['code'] = found.code;
    } else warnNoCode(found, `unit "${unit}"`, warn);
    return;
  }
  if (system === undefined && typeof code === 'string') {
    const found = ucumCodeOf(code, mappings);
    if (found !== undefined && 'code' in found) {
      q['system'] = UCUM_SYSTEM;
      q['code'] = found.code;
    } else warnNoCode(found, `unit code "${code}" (no system)`, warn);
    return;
  }
  if (system === UCUM_SYSTEM) {
    if (typeof code === 'string' && !isUcumCode(code)) warn('unit-not-ucum', `"${code}" is not a valid UCUM code`);
    else if (code === undefined && typeof unit === 'string') {
      const found = ucumCodeOf(unit, mappings);
      if (found !== undefined && 'code' in found) q['code'] = found.code;
      else warnNoCode(found, `unit "${unit}" under the UCUM system`, warn);
    }
  }
}

/** The quantity rule of a measured holder, with what deciding on a conversion needs besides. */
export interface RuleContext {
  readonly rule: QuantityRule;
  /** The targets of the rule's concept-map row (their property is the rule unit's kind). */
  readonly targets: readonly MappedTarget[];
  /** The holder's `code` (CodeableConcept). */
  readonly concept: Obj;
  readonly mappings: TerminologyMappings;
}

/**
 * Codings of `concept` that state the kind of quantity reported: codes of a standard terminology
 * (LOINC, SNOMED CT… per `systems.json`) that are not targets of the rule's row. A LOINC term's
 * Property (`MCnc` mass concentration, `SCnc` substance concentration…) is part of the code, so a
 * source that sent 14749-6 "Glucose [Moles/volume]" stated that its value is molar. The row's own
 * targets are excluded: their property is the rule unit's by construction (whether the source or the
 * mapping put them there).
 * @see https://loinc.org/kb/users-guide/major-parts-of-a-loinc-term/ (Property)
 */
function kindStatingCodings(ctx: RuleContext): string[] {
  const codings = ctx.concept['coding'];
  if (!isArray(codings)) return [];
  const out: string[] = [];
  for (const c of codings as unknown[]) {
    if (!isObj(c) || typeof c['system'] !== 'string' || typeof c['code'] !== 'string') continue;
    const { system, code } = c;
    if (!ctx.mappings.standardSystems.has(system)) continue;
    if (ctx.targets.some((t) => t.system === system && t.code === code)) continue;
    out.push(`${system}|${code}`);
  }
  return out;
}

/** "amount of substance", "equivalents" or "mass/other": the kind a unit measures, for messages. */
function kindName(code: string): string {
  const kind = unitKind(code);
  if (kind?.substance) return 'amount of substance';
  if (kind?.equivalents) return 'equivalents';
  return 'mass';
}

/**
 * Why converting a Quantity in UCUM `code` to the rule's unit must not be done although UCUM can
 * compute it, or undefined when it may be. In order:
 * 1. both units are dimensionless and differ ({@link isDimensionlessSwap}): another scale, not
 *    another unit (HbA1c mmol/mol ↔ %);
 * 2. the conversion changes the kind of quantity (molar ↔ mass, {@link changesKind}) and the source
 *    coded the result with a code that states the reported kind ({@link kindStatingCodings}).
 *    Decision: the value is then kept as reported. FHIR reads `Observation.code` and `value[x]`
 *    together ("all code-value pairs need to be taken into account"), and the codings of one
 *    CodeableConcept are alternative codes for the same thing; mapping only ever appends codings and
 *    never removes the source's, so converting 10.1 mmol/L to 182 mg/dL would leave LOINC 14749-6
 *    (Moles/volume) coding a mass value — a reader that trusts the code over the unit would take 182
 *    for mmol/L. The value kept as reported agrees with every code the source chose (its UCUM unit
 *    says molar), stays computable, and de-duplication compares it with mass values through the
 *    analyte's molar mass. Converting remains right when nothing but a local code (no property) and
 *    the row's own targets code the result: then the converted value matches every code;
 * 3. the rule lists the units it converts from (`from`) and `code` is not one of them. Decision:
 *    an allow-list, deny by default — a rule with no `from` converts nothing, because "UCUM can
 *    compute it" is not "it is the same measurement" (1. and 2. are the known cases; an allow-list,
 *    checked against the rule unit when the rule data is loaded, catches the unknown ones).
 * @see https://hl7.org/fhir/R4/observation.html#code
 * @see https://hl7.org/fhir/R4/datatypes.html#CodeableConcept
 * @see https://ucum.org/ucum
 */
export function conversionRefusal(code: string, ctx: RuleContext): string | undefined {
  const { rule } = ctx;
  if (isDimensionlessSwap(code, rule.unit)) {
    return `${code} and ${rule.unit} are both dimensionless in UCUM, which would only shift the decimal point, but they are different measurement scales (e.g. HbA1c IFCC mmol/mol vs NGSP %), not units of one scale`;
  }
  if (changesKind(code, rule.unit)) {
    const stating = kindStatingCodings(ctx);
    if (stating.length > 0) {
      return `it changes the kind of quantity (${kindName(code)} → ${kindName(rule.unit)}) and the source coded the result ${stating.join(', ')}, which states the reported kind`;
    }
  }
  const from = rule.from ?? [];
  if (!from.includes(code)) {
    return from.length > 0 ? `the rule converts only from ${from.join(', ')}` : 'the rule lists no unit to convert from';
  }
  return undefined;
}

/** A conversion to the rule's unit: the converted value (rounded), or why it cannot or must not be done. */
type Conversion = { readonly value: number } | { readonly failed: string } | { readonly refused: string };

/** How `value` in UCUM `code` converts to the rule's unit (UCUM first, then {@link conversionRefusal}). */
function conversionOf(value: number, code: string, ctx: RuleContext): Conversion {
  const { rule } = ctx;
  const result = convertUcum(value, code, rule.unit, rule.molecularWeight);
  if ('error' in result) return { failed: result.error };
  const refusal = conversionRefusal(code, ctx);
  return refusal === undefined ? { value: roundConverted(result.value, rule.decimals) } : { refused: refusal };
}

/**
 * The value Quantity of a holder that step 2 would convert ({@link convertibleCode}) and how it
 * converts: computed once per holder, read by the plausibility check, the reference ranges and the
 * conversion itself.
 */
interface ValueConversion {
  readonly code: string;
  readonly conversion: Conversion;
}

/** {@link ValueConversion} of the value Quantity `q`, or undefined when step 2 would not convert it. */
function valueConversionOf(q: Obj | undefined, ctx: RuleContext): ValueConversion | undefined {
  const code = q ? convertibleCode(q, ctx.rule) : undefined;
  return q && code !== undefined ? { code, conversion: conversionOf(q['value'] as number, code, ctx) } : undefined;
}

/** Whether `value` lies in `range`, bounds included. */
function isWithin(value: number, range: PlausibleRange): boolean {
  return value >= range.low && value <= range.high;
}

/** What the rule's row measures, for messages: its first target's display and code ("Body temperature (8310-5)"). */
function measuredName(ctx: RuleContext): string {
  const target = ctx.targets[0];
  return target ? `${target.display} (${target.code})` : 'this result';
}

/**
 * Why the value `q` of a holder is implausible for the rule's row (step 3), or undefined when it is
 * plausible or cannot be judged. Judged is the value as it would be shown: converted to the rule's
 * unit (rounded as step 2 would), or as reported when it is in that unit already; a value the rule
 * will not convert (not UCUM, a unit not listed in `from`, a conversion refused or failing) is left
 * to the warnings of step 2. The message says the value, what it would be, the `plausible` range
 * and, as a question, the unit the reported number is plausible in: the rule's unit for a converted
 * value (37 [degF] → 2.8 Cel: was it Cel?), the rule's `from` units for a value in the rule's unit
 * (98.6 Cel: was it [degF]?). Only the value is judged, not its reference range.
 * @see https://hl7.org/fhir/R4/datatypes.html#Quantity
 * @see https://hl7.org/fhir/R4/observation-vitalsigns.html (vital signs: the codes and units)
 */
function implausibility(q: Obj | undefined, ctx: RuleContext, valueConversion: ValueConversion | undefined): string | undefined {
  const { rule } = ctx;
  const range = rule.plausible;
  if (range === undefined || q === undefined) return undefined;
  const { value, system, code } = q;
  if (system !== UCUM_SYSTEM || typeof code !== 'string' || typeof value !== 'number') return undefined;
  const outside = `outside ${range.low}–${range.high} ${rule.unit} for ${measuredName(ctx)}`;
  if (code === rule.unit) {
    if (isWithin(value, range)) return undefined;
    const units = (rule.from ?? []).filter((from) => {
      const c = conversionOf(value, from, ctx);
      return 'value' in c && isWithin(c.value, range);
    });
    return `${value} ${code} is ${outside}: kept as reported${units.length > 0 ? `; was it recorded in ${units.join(' or ')}?` : ''}`;
  }
  const conversion = valueConversion?.conversion;
  if (conversion === undefined || !('value' in conversion) || isWithin(conversion.value, range)) return undefined;
  return `${value} ${code} would be ${conversion.value} ${rule.unit}, ${outside}: not converted, kept as reported${isWithin(value, range) ? `; was it recorded in ${rule.unit}?` : ''}`;
}

/**
 * Whether the value `q` of a holder is plausible for the rule's row ({@link implausibility}); when it
 * is not, warns `quantity-implausible` and returns false: nothing of the holder is then converted.
 */
function isPlausible(q: Obj | undefined, ctx: RuleContext, warn: Warn, valueConversion: ValueConversion | undefined): boolean {
  const why = implausibility(q, ctx, valueConversion);
  if (why === undefined) return true;
  warn('quantity-implausible', why);
  return false;
}

/** The UCUM code of a Quantity step 2 would convert: a number in a UCUM unit other than the rule's. */
function convertibleCode(q: Obj, rule: QuantityRule): string | undefined {
  const { value, system, code } = q;
  return system === UCUM_SYSTEM && typeof code === 'string' && typeof value === 'number' && code !== rule.unit ? code : undefined;
}

/**
 * Converts a Quantity in place to the rule's unit (step 2); `original` is the Quantity as sent,
 * `known` its conversion when already computed (the holder's value: {@link valueConversionOf}).
 */
function convert(q: Obj, original: Quantity, ctx: RuleContext, warn: Warn, known?: ValueConversion): boolean {
  const { rule } = ctx;
  const code = known?.code ?? convertibleCode(q, rule);
  if (code === undefined) return false;
  const value = q['value'] as number;
  const conversion = known?.conversion ?? conversionOf(value, code, ctx);
  if ('failed' in conversion) {
    warn('unit-conversion-failed', `${value} ${code} → ${rule.unit}: ${conversion.failed}; kept as reported`);
    return false;
  }
  if ('refused' in conversion) {
    warn('unit-conversion-refused', `${code} → ${rule.unit} refused: ${conversion.refused}; kept as reported`);
    return false;
  }
  q['value'] = conversion.value;
  q['code'] = rule.unit;
  q['unit'] = rule.display ?? rule.unit;
  const marker: Extension = { url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: original };
  q['extension'] = [...(isArray(q['extension']) ? (q['extension'] as unknown[]) : []), marker];
  return true;
}

/**
 * The Quantity as sent, without its extensions (deep: `_value` etc. must not be shared). A JSON copy
 * (`cloneJson`): the Quantity is parsed JSON, and `structuredClone` costs several times more per call.
 */
function snapshot(q: Obj): Quantity {
  const { extension: _ignored, ...rest } = q;
  return cloneJson(rest as JsonObject) as unknown as Quantity;
}

/** A Quantity of an Observation after step 1, with the Quantity as sent when a rule may convert it. */
interface FilledQuantity {
  readonly q: Obj;
  readonly original: Quantity | undefined;
}

/** Step 1 on one Quantity held at `holder[key]` (the Quantity as sent kept first when `ctx` may convert it). */
function fillQuantity(holder: Obj, key: string, ctx: RuleContext | undefined, mappings: TerminologyMappings, warn: Warn): FilledQuantity | undefined {
  const q = holder[key];
  if (!isObj(q)) return undefined;
  const original = ctx ? snapshot(q) : undefined;
  fillUcum(q, mappings, warn);
  return { q, original };
}

const RANGE_BOUNDS = ['low', 'high'] as const;

/** Whether a Quantity states no unit at all (no `unit`, `system` or `code`). */
function isUnitless(q: Obj): boolean {
  return q['unit'] === undefined && q['system'] === undefined && q['code'] === undefined;
}

/**
 * Why the reference ranges cannot be converted with a value converted from UCUM `from`, or
 * undefined when each can: a range whose `text` states numbers (it reads in the reported unit and
 * text is not converted), or a bound (with a value) in a unit that is not UCUM or that does not
 * convert to the rule's unit. A bound without a unit reads in the value's unit, so it follows.
 * @see https://hl7.org/fhir/R4/observation-definitions.html#Observation.referenceRange
 */
function rangeHindrance(ranges: readonly Obj[], from: string, ctx: RuleContext): string | undefined {
  for (const range of ranges) {
    const text = range['text'];
    if (typeof text === 'string' && /\d/.test(text)) return 'a reference range is given as text stating numbers, which cannot be converted with the value';
    for (const side of RANGE_BOUNDS) {
      const bound = range[side];
      if (!isObj(bound) || typeof bound['value'] !== 'number' || isUnitless(bound)) continue;
      if (bound['system'] === UCUM_SYSTEM && bound['code'] === ctx.rule.unit) continue;
      const code = convertibleCode(bound, ctx.rule);
      if (code === undefined) return `the reference range's ${side} is not in a UCUM unit, so it cannot be converted with the value (${from})`;
      const conversion = conversionOf(bound['value'], code, ctx);
      if (!('value' in conversion)) {
        return `the reference range's ${side} in ${code} cannot be converted with the value (${'failed' in conversion ? conversion.failed : conversion.refused})`;
      }
    }
  }
  return undefined;
}

/**
 * Whether the reference ranges may be converted along with the value (step 2), so the two agree.
 * When the value will be converted: its unitless bounds take its reported unit (R4 reads them in
 * it) to be converted with it, unless a range cannot follow ({@link rangeHindrance}): then the
 * conversion of the value is refused (warning `unit-conversion-refused`) and false is returned —
 * nothing of the holder is converted, value and range stay as reported, in agreement. A value that
 * is not converted leaves each bound to be converted on its own, as its unit allows.
 * @see https://hl7.org/fhir/R4/datatypes.html#SimpleQuantity
 */
function rangesFollowValue(ranges: readonly Obj[], ctx: RuleContext, warn: Warn, valueConversion: ValueConversion | undefined): boolean {
  if (valueConversion === undefined || !('value' in valueConversion.conversion)) return true;
  const from = valueConversion.code;
  const hindrance = rangeHindrance(ranges, from, ctx);
  if (hindrance !== undefined) {
    warn('unit-conversion-refused', `${from} → ${ctx.rule.unit} refused: ${hindrance}; kept as reported`);
    return false;
  }
  for (const range of ranges) {
    for (const side of RANGE_BOUNDS) {
      const bound = range[side];
      if (!isObj(bound) || typeof bound['value'] !== 'number' || !isUnitless(bound)) continue;
      bound['system'] = UCUM_SYSTEM;
      bound['code'] = from;
    }
  }
  return true;
}

/** The concept-map entry (targets and quantity rule) of the first coding of `concept` that has a quantity rule. */
function ruleEntryFor(concept: unknown, mappings: TerminologyMappings): { readonly targets: readonly MappedTarget[]; readonly quantity: QuantityRule } | undefined {
  if (!isObj(concept) || !isArray(concept['coding'])) return undefined;
  for (const c of concept['coding'] as unknown[]) {
    if (!isObj(c) || typeof c['code'] !== 'string') continue;
    const entry = mappings.bySystem.get(typeof c['system'] === 'string' ? c['system'] : '')?.get(c['code']);
    if (entry?.quantity) return { targets: entry.targets, quantity: entry.quantity };
  }
  return undefined;
}

/** The quantity rule of the first coding of `concept` that has one. */
export function quantityRuleFor(concept: unknown, mappings: TerminologyMappings): QuantityRule | undefined {
  return ruleEntryFor(concept, mappings)?.quantity;
}

/** `warn`, passing each distinct warning once (value and reference range usually share one reason). */
function warnOnce(warn: Warn): Warn {
  let seen: Set<string> | undefined;
  return (code, message) => {
    const key = `${code}\u0000${message}`;
    seen ??= new Set<string>();
    if (seen.has(key)) return;
    seen.add(key);
    warn(code, message);
  };
}

/**
 * Takes back the codings the mapping appended for the rule's row (marked with
 * `MAPPED_CODING_EXTENSION`) when the value stays in a unit of another kind of quantity than the
 * rule's, or on another dimensionless scale ({@link isDimensionlessSwap}: HbA1c in mmol/mol, IFCC,
 * beside a row for %, NGSP, LOINC 4548-4): the row's targets state the rule unit's kind (LOINC's
 * Property: 2345-7 is a mass concentration), so beside a value kept in mmol/L they would code it as what it is not — FHIR reads
 * `code` and `value[x]` together. The source's own codings are never touched. Warns
 * `mapped-coding-withheld`.
 * @returns the codings taken back
 * @see https://hl7.org/fhir/R4/observation.html#code
 * @see https://loinc.org/kb/users-guide/major-parts-of-a-loinc-term/
 */
function withholdContradictingTargets(holder: Obj, ctx: RuleContext, warn: Warn): MatchCoding[] {
  const q = holder['valueQuantity'];
  if (!isObj(q) || q['system'] !== UCUM_SYSTEM || typeof q['code'] !== 'string') return [];
  const unit = q['code'];
  const otherScale = isDimensionlessSwap(unit, ctx.rule.unit);
  if (!otherScale && !changesKind(unit, ctx.rule.unit)) return [];
  const codings = ctx.concept['coding'];
  if (!isArray(codings)) return [];
  const kept: unknown[] = [];
  const withheld: MatchCoding[] = [];
  for (const c of codings as unknown[]) {
    const target = isObj(c) && isMappedCoding(c) ? ctx.targets.find((t) => t.system === c['system'] && t.code === c['code']) : undefined;
    if (target) withheld.push({ system: target.system, code: target.code });
    else kept.push(c);
  }
  if (withheld.length === 0) return [];
  ctx.concept['coding'] = kept;
  warn(
    'mapped-coding-withheld',
    otherScale
      ? `mapped coding ${withheld.map((c) => `${c.system}|${c.code}`).join(', ')} not added: it states a value in ${ctx.rule.unit}, and the value stays in ${unit}, another dimensionless scale`
      : `mapped coding ${withheld.map((c) => `${c.system}|${c.code}`).join(', ')} not added: it states ${kindName(ctx.rule.unit)}, and the value stays in ${unit} (${kindName(unit)})`,
  );
  return withheld;
}

/** The mapped codings taken back from an Observation ({@link withholdContradictingTargets}). */
export interface WithheldCodings {
  /** Those of its `code` (the caller keeps them for matching). */
  readonly ofCode: MatchCoding[];
  /** All of them, its components' included (off the tally of appended codings). */
  count: number;
}

/**
 * Value and reference range of an Observation or of one of its components; `withheld` gets the codings
 * taken back. An implausible value ({@link isPlausible}) stops every conversion of the holder, its
 * reference-range bounds' included: what the source sent stays as sent, beside the warning.
 */
function normalizeMeasured(holder: Obj, mappings: TerminologyMappings, warnAll: Warn, withheld: WithheldCodings | undefined, ofCode: boolean): number {
  const entry = ruleEntryFor(holder['code'], mappings);
  const concept = holder['code'];
  const ctx: RuleContext | undefined = entry && isObj(concept) ? { rule: entry.quantity, targets: entry.targets, concept, mappings } : undefined;
  const warn = warnOnce(warnAll);
  const value = fillQuantity(holder, 'valueQuantity', ctx, mappings, warn);
  const referenceRange = holder['referenceRange'];
  const ranges = isArray(referenceRange) ? (referenceRange as unknown[]).filter(isObj) : [];
  const quantities: FilledQuantity[] = value ? [value] : [];
  for (const range of ranges) {
    for (const side of RANGE_BOUNDS) {
      const bound = fillQuantity(range, side, ctx, mappings, warn);
      if (bound) quantities.push(bound);
    }
  }
  let converted = 0;
  const valueConversion = ctx ? valueConversionOf(value?.q, ctx) : undefined;
  if (ctx && isPlausible(value?.q, ctx, warn, valueConversion) && rangesFollowValue(ranges, ctx, warn, valueConversion)) {
    for (const filled of quantities) {
      if (filled.original && convert(filled.q, filled.original, ctx, warn, filled === value ? valueConversion : undefined)) converted += 1;
    }
  }
  if (ctx) {
    const taken = withholdContradictingTargets(holder, ctx, warn);
    if (withheld) {
      withheld.count += taken.length;
      if (ofCode) for (const c of taken) withheld.ofCode.push(c);
    }
  }
  return converted;
}

/**
 * Normalizes the units of an Observation (a copy), in place, and takes back the mapped codings a
 * value kept as reported contradicts ({@link withholdContradictingTargets}), told in `withheld`.
 * @returns how many Quantities were converted
 */
export function normalizeObservationUnits(observation: Obj, mappings: TerminologyMappings, warn: Warn, withheld?: WithheldCodings): number {
  let converted = normalizeMeasured(observation, mappings, warn, withheld, true);
  const components = observation['component'];
  if (isArray(components)) {
    for (const component of components as unknown[]) if (isObj(component)) converted += normalizeMeasured(component, mappings, warn, withheld, false);
  }
  return converted;
}
