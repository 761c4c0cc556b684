/**
 * Units of Observation quantities: UCUM codes filled in, and conversion to the unit a mapping row
 * asks for, computed by the UCUM library `@lhncbc/ucum-lhc` (no hand-written factors).
 *
 * Per Quantity of an Observation (`valueQuantity`, `referenceRange.low/high`, and the same in each
 * `component`):
 * 1. Missing `system`/`code` with a `unit` string: the code comes from the UCUM alias table of the
 *    mappings (`K/uL` → `10*3/uL`: note that `K/uL` *is* valid UCUM, kelvin per microliter, which is
 *    why the aliases are consulted first), else from the unit itself when it is valid UCUM. A unit that
 *    is neither gives the warning `unit-not-ucum`, as does an invalid code under the UCUM system; those
 *    are not "fixed" (the source said what it said).
 * 2. When the Observation's code was mapped by a concept-map row with a `quantity` rule and the
 *    quantity's UCUM code differs from the rule's unit, the value is converted (mass ↔ molar with the
 *    row's molecular weight) and rounded to the row's `decimals` (else to 6 significant digits, which
 *    only removes floating-point noise); the reference range is converted with it so the two agree.
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
import type { QuantityRule, TerminologyMappings } from './terminology';

/* Builtins bound once: hot loops then read module constants, not globals (much cheaper inside vm contexts such as jest's). */
const { isArray } = Array;

/** UCUM code system URI. */
export const UCUM_SYSTEM = 'http://unitsofmeasure.org';

/** Extension on a converted Quantity holding the Quantity as the source reported it. */
export const ORIGINAL_QUANTITY_EXTENSION = 'https://second-opinion.example.org/fhir/StructureDefinition/original-quantity';

/** The part of `@lhncbc/ucum-lhc` used here (the package ships no type declarations). */
interface UcumLhcUtils {
  validateUnitString(unit: string, suggest?: boolean): { status: 'valid' | 'invalid' | 'error'; ucumCode: string | null };
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

/** Fills `system`/`code` of a Quantity from its `unit` (step 1); warns on non-UCUM units. */
function fillUcum(q: Obj, mappings: TerminologyMappings, warn: Warn): void {
  const { system, code, unit } = q;
  if (system === undefined && code === undefined) {
    if (typeof unit !== 'string') return;
    const ucumCode = mappings.ucumAliases.get(unit) ?? (isUcumCode(unit) ? unit : undefined);
    if (ucumCode === undefined) {
      warn('unit-not-ucum', `unit "${unit}" is not UCUM and has no alias; left without a code`);
      return;
    }
    q['system'] = UCUM_SYSTEM;
    q['code'] = ucumCode;
    return;
  }
  if (system === undefined && typeof code === 'string') {
    const ucumCode = mappings.ucumAliases.get(code) ?? (isUcumCode(code) ? code : undefined);
    if (ucumCode !== undefined) {
      q['system'] = UCUM_SYSTEM;
      q['code'] = ucumCode;
    } else warn('unit-not-ucum', `unit code "${code}" has no system and is not UCUM`);
    return;
  }
  if (system === UCUM_SYSTEM) {
    if (typeof code === 'string' && !isUcumCode(code)) warn('unit-not-ucum', `"${code}" is not a valid UCUM code`);
    else if (code === undefined && typeof unit === 'string') {
      const ucumCode = mappings.ucumAliases.get(unit) ?? (isUcumCode(unit) ? unit : undefined);
      if (ucumCode !== undefined) q['code'] = ucumCode;
      else warn('unit-not-ucum', `unit "${unit}" under the UCUM system is not UCUM`);
    }
  }
}

/** Converts a Quantity in place to the rule's unit (step 2); `original` is the Quantity as sent. */
function convert(q: Obj, original: Quantity, rule: QuantityRule, warn: Warn): boolean {
  const { value, system, code } = q;
  if (system !== UCUM_SYSTEM || typeof code !== 'string' || typeof value !== 'number' || code === rule.unit) return false;
  const result = convertUcum(value, code, rule.unit, rule.molecularWeight);
  if ('error' in result) {
    warn('unit-conversion-failed', `${value} ${code} → ${rule.unit}: ${result.error}; kept as reported`);
    return false;
  }
  q['value'] = roundConverted(result.value, rule.decimals);
  q['code'] = rule.unit;
  q['unit'] = rule.display ?? rule.unit;
  const marker: Extension = { url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: original };
  q['extension'] = [...(isArray(q['extension']) ? (q['extension'] as unknown[]) : []), marker];
  return true;
}

/** The Quantity as sent, without its extensions (deep: `_value` etc. must not be shared). */
function snapshot(q: Obj): Quantity {
  const { extension: _ignored, ...rest } = q;
  return structuredClone(rest) as Quantity;
}

/** Step 1 then 2 on one Quantity held at `holder[key]`. @returns 1 when converted */
function normalizeQuantity(holder: Obj, key: string, rule: QuantityRule | undefined, mappings: TerminologyMappings, warn: Warn): number {
  const q = holder[key];
  if (!isObj(q)) return 0;
  const original = rule ? snapshot(q) : undefined;
  fillUcum(q, mappings, warn);
  return rule && original && convert(q, original, rule, warn) ? 1 : 0;
}

/** The quantity rule of the first coding of `concept` that has one. */
export function quantityRuleFor(concept: unknown, mappings: TerminologyMappings): QuantityRule | undefined {
  if (!isObj(concept) || !isArray(concept['coding'])) return undefined;
  for (const c of concept['coding'] as unknown[]) {
    if (!isObj(c) || typeof c['code'] !== 'string') continue;
    const rule = mappings.bySystem.get(typeof c['system'] === 'string' ? c['system'] : '')?.get(c['code'])?.quantity;
    if (rule) return rule;
  }
  return undefined;
}

/** Value and reference range of an Observation or of one of its components. */
function normalizeMeasured(holder: Obj, mappings: TerminologyMappings, warn: Warn): number {
  const rule = quantityRuleFor(holder['code'], mappings);
  let converted = normalizeQuantity(holder, 'valueQuantity', rule, mappings, warn);
  const ranges = holder['referenceRange'];
  if (isArray(ranges)) {
    for (const range of ranges as unknown[]) {
      if (!isObj(range)) continue;
      converted += normalizeQuantity(range, 'low', rule, mappings, warn);
      converted += normalizeQuantity(range, 'high', rule, mappings, warn);
    }
  }
  return converted;
}

/**
 * Normalizes the units of an Observation (a copy), in place.
 * @returns how many Quantities were converted
 */
export function normalizeObservationUnits(observation: Obj, mappings: TerminologyMappings, warn: Warn): number {
  let converted = normalizeMeasured(observation, mappings, warn);
  const components = observation['component'];
  if (isArray(components)) {
    for (const component of components as unknown[]) if (isObj(component)) converted += normalizeMeasured(component, mappings, warn);
  }
  return converted;
}
