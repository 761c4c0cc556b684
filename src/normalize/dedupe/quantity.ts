/**
 * Quantity equality for de-duplication: two reported results are the same value when
 * they agree after UCUM conversion, within the finer precision of the two
 * (`10.1 mmol/L` of glucose is `182 mg/dL` to one decimal).
 *
 * Precision is read from the written decimals, but JSON has no trailing zeros: a lab's
 * `5.0` parses as `5`. A value without decimals therefore has an unknown precision and is
 * taken at the precision of the other value (K+ `5.0` vs `5.4` mmol/L differ; `5` vs
 * `5.0` match); two whole numbers compare at the finer of their whole-number precisions in
 * canonical units, never the coarser one widened by a unit conversion (glucose 100 mg/dL is
 * not 6 mmol/L = 108 mg/dL, which a whole mmol/L would put ±9 mg/dL wide; creatinine 1 mg/dL
 * is not 53 µmol/L). A value the normalizer converted carries the original as the
 * `original-quantity` extension: its precision is the original's (scaled), not the rounding
 * of the conversion.
 *
 * Comparison only: values are never rewritten here (the normalizer owns unit mapping).
 * Supports the UCUM subset labs and vitals use: metric prefixes on g, L, mol, m, s,
 * [IU], U, eq; `10*n` factors; `%`; `{annotations}`; products and quotients; a few
 * customary units; Cel/[degF]. Mass ↔ amount needs a molar mass, given per analyte
 * (LOINC) in {@link MOLAR_MASS_BY_LOINC}; equivalents ↔ amount the analyte's charge, in
 * {@link VALENCE_BY_LOINC} (eq is its own dimension: calcium 5 mEq/L is 2.5 mmol/L). Dimensionless units of different magnitudes
 * (`%` vs `mmol/mol`) are different scales and never compare equal
 * ({@link otherDimensionlessScale}).
 * @see https://ucum.org/ucum
 * @see https://hl7.org/fhir/R4/datatypes.html#Quantity
 * @packageDocumentation
 */
import type { Quantity } from 'fhir/r4';
import { ORIGINAL_QUANTITY_EXTENSION } from '../units';
import { UCUM } from './keys';

/** A unit reduced to base dimensions: factor × product of base^exponent. */
interface Reduced {
  readonly factor: number;
  readonly dims: ReadonlyMap<string, number>;
  /** Canonical text of `dims` (set on cached results). */
  key?: string;
}

const PREFIXES: Readonly<Record<string, number>> = {
  Y: 1e24, Z: 1e21, E: 1e18, P: 1e15, T: 1e12, G: 1e9, M: 1e6, k: 1e3, h: 1e2, da: 1e1,
  d: 1e-1, c: 1e-2, m: 1e-3, u: 1e-6, n: 1e-9, p: 1e-12, f: 1e-15, a: 1e-18,
};

/** Atoms: factor and dimension (metric atoms accept prefixes). */
const ATOMS: Readonly<Record<string, { factor: number; dim: Readonly<Record<string, number>>; metric: boolean }>> = {
  g: { factor: 1, dim: { g: 1 }, metric: true },
  L: { factor: 1, dim: { L: 1 }, metric: true },
  l: { factor: 1, dim: { L: 1 }, metric: true },
  mol: { factor: 1, dim: { mol: 1 }, metric: true },
  eq: { factor: 1, dim: { eq: 1 }, metric: true },
  m: { factor: 1, dim: { m: 1 }, metric: true },
  s: { factor: 1, dim: { s: 1 }, metric: true },
  min: { factor: 60, dim: { s: 1 }, metric: false },
  h: { factor: 3600, dim: { s: 1 }, metric: false },
  d: { factor: 86400, dim: { s: 1 }, metric: false },
  '[IU]': { factor: 1, dim: { IU: 1 }, metric: true },
  '[iU]': { factor: 1, dim: { IU: 1 }, metric: true },
  U: { factor: 1, dim: { U: 1 }, metric: true },
  '%': { factor: 1e-2, dim: {}, metric: false },
  '[lb_av]': { factor: 453.59237, dim: { g: 1 }, metric: false },
  '[oz_av]': { factor: 28.349523125, dim: { g: 1 }, metric: false },
  '[in_i]': { factor: 0.0254, dim: { m: 1 }, metric: false },
  '[ft_i]': { factor: 0.3048, dim: { m: 1 }, metric: false },
  'mm[Hg]': { factor: 1, dim: { mmHg: 1 }, metric: false },
  '[mi_i]': { factor: 1609.344, dim: { m: 1 }, metric: false },
};

/**
 * Molar mass (g/mol) of analytes commonly reported both in mass and in moles, keyed by
 * each LOINC code that names the analyte; used only to compare, e.g. 2345-7 mg/dL with
 * 14749-6 mmol/L glucose.
 */
export const MOLAR_MASS_BY_LOINC: Readonly<Record<string, number>> = Object.fromEntries([
  ...['2345-7', '14749-6', '2339-0', '15074-8', '1558-6', '14771-0'].map((c) => [c, 180.16] as const),
  ...['2160-0', '14682-9', '38483-4', '59826-8'].map((c) => [c, 113.12] as const),
  ...['2093-3', '14647-2', '2085-9', '14646-4', '18262-6', '22748-8', '13457-7'].map((c) => [c, 386.65] as const),
  ...['2571-8', '14927-8'].map((c) => [c, 885.7] as const),
  ...['3094-0', '14937-7'].map((c) => [c, 28.014] as const),
  ...['17861-6', '2000-8'].map((c) => [c, 40.078] as const),
]);

/**
 * Charge (valence) of analytes reported both in equivalents and in moles, keyed by each LOINC code
 * that names the analyte: 1 mmol of an ion is `valence` mEq (Na⁺, K⁺, Cl⁻, HCO₃⁻: 1; Ca²⁺, Mg²⁺: 2),
 * so 5 mEq/L of calcium is 2.5 mmol/L, not 5. Equivalents meet moles only through this table: of an
 * analyte not in it, an amount in mEq and one in mmol are never the same value.
 * @see https://ucum.org/ucum (eq: equivalents, a base unit of its own beside mol)
 */
export const VALENCE_BY_LOINC: Readonly<Record<string, number>> = Object.fromEntries([
  // Sodium, potassium, chloride, bicarbonate and total CO2 (serum/plasma, blood)
  ...['2951-2', '2947-0', '2823-3', '6298-4', '2075-0', '2069-3', '1963-8', '1959-6', '2028-9', '20565-8'].map((c) => [c, 1] as const),
  // Calcium (total, ionized) and magnesium
  ...['17861-6', '2000-8', '1994-3', '19123-9', '2601-3'].map((c) => [c, 2] as const),
]);

/** `red` with its equivalents as moles of an analyte of charge `valence`; undefined when it has no single eq (or has mol already). */
function equivalentsAsMoles(red: Reduced, valence: number): Reduced | undefined {
  if (red.dims.get('eq') !== 1 || red.dims.has('mol')) return undefined;
  const dims = new Map(red.dims);
  dims.delete('eq');
  dims.set('mol', 1);
  return { factor: red.factor / valence, dims };
}

function parseAtom(token: string): Reduced | undefined {
  const exp = /^(.*?)(-?\d+)$/.exec(token);
  const [body, power] = exp && exp[1] !== '' && !/^10[*^]/.test(token) ? [exp[1] ?? '', Number(exp[2])] : [token, 1];
  const tenPow = /^10[*^](-?\d+)$/.exec(body);
  if (tenPow) return { factor: 10 ** Number(tenPow[1]), dims: new Map() };
  const direct = ATOMS[body];
  const found = direct
    ? { factor: direct.factor, dim: direct.dim }
    : (() => {
        for (const [p, f] of Object.entries(PREFIXES)) {
          if (!body.startsWith(p)) continue;
          const atom = ATOMS[body.slice(p.length)];
          if (atom?.metric) return { factor: f * atom.factor, dim: atom.dim };
        }
        return undefined;
      })();
  if (!found) return undefined;
  const dims = new Map<string, number>();
  for (const [d, e] of Object.entries(found.dim)) dims.set(d, e * power);
  return { factor: found.factor ** power, dims };
}

function combine(a: Reduced, b: Reduced, sign: 1 | -1): Reduced {
  const dims = new Map(a.dims);
  for (const [d, e] of b.dims) {
    const v = (dims.get(d) ?? 0) + sign * e;
    if (v === 0) dims.delete(d);
    else dims.set(d, v);
  }
  return { factor: sign === 1 ? a.factor * b.factor : a.factor / b.factor, dims };
}

const cache = new Map<string, Reduced | null>();

/** A UCUM unit expression reduced to base dimensions, or undefined if outside the supported subset. */
export function reduceUnit(unit: string): Reduced | undefined {
  const hit = cache.get(unit);
  if (hit !== undefined) return hit ?? undefined;
  const cleaned = unit.replace(/\{[^}]*\}/g, '').trim();
  let result: Reduced | undefined = { factor: 1, dims: new Map() };
  if (cleaned !== '' && cleaned !== '1') {
    // Split on '.' and '/' outside brackets, keeping the operator.
    const tokens = cleaned.split(/(?=[./])|(?<=[./])/).filter((t) => t !== '');
    let sign: 1 | -1 = 1;
    let expectTerm = true;
    for (const t of tokens) {
      if (t === '.' || t === '/') {
        sign = t === '/' ? -1 : 1;
        if (expectTerm && t === '.') { result = undefined; break; }
        expectTerm = true;
        continue;
      }
      const atom = parseAtom(t);
      if (!atom || !result) { result = undefined; break; }
      result = combine(result, atom, sign);
      expectTerm = false;
    }
  }
  if (result) result.key = dimsKey(result.dims);
  cache.set(unit, result ?? null);
  return result;
}

function dimsKey(dims: ReadonlyMap<string, number>): string {
  return [...dims.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([d, e]) => `${d}^${e}`).join('.');
}

/**
 * A reported precision: half of the last reported digit (`10.1` → 0.05), `known` when the
 * value shows decimals. A whole number (`182`, but also a `5.0` that JSON read as `5`) has
 * an unknown precision: `half` is then that of a whole number (0.5).
 */
interface Precision {
  readonly half: number;
  readonly known: boolean;
}

/** The precision `value` was written with (see {@link Precision}). */
function precisionOfNumber(value: number): Precision {
  const text = String(value);
  if (/e/i.test(text)) return { half: Math.abs(value) * 5e-7, known: true };
  const decimals = text.split('.')[1]?.length ?? 0;
  return decimals > 0 ? { half: 0.5 * 10 ** -decimals, known: true } : { half: 0.5, known: false };
}

/**
 * The tolerance for comparing two values (precisions in the same units): the finer of two known
 * precisions; a value without decimals is taken at the other's precision (it may be a `5.0` whose
 * zero JSON dropped); two values without decimals at the finer of the two as well. A whole number's
 * precision is only "at least this fine": taking the coarser one would widen the comparison by a
 * unit conversion (6 mmol/L of glucose is ±9 mg/dL read as ±0.5 mmol/L, and team A's 100 mg/dL
 * fell within it). In one unit both are ±0.5, so two whole numbers still compare as whole numbers.
 */
function pairTolerance(a: Precision, b: Precision): number {
  if (a.known && b.known) return Math.min(a.half, b.half);
  if (a.known) return a.half;
  if (b.known) return b.half;
  return Math.min(a.half, b.half);
}

/** The unit code of a quantity: the UCUM code, else the human unit string. */
function unitOf(q: Quantity): string | undefined {
  if (q.code && (q.system === UCUM || q.system === undefined)) return q.code;
  return q.unit ?? q.code;
}

const TEMPERATURE: Readonly<Record<string, (v: number) => number>> = {
  Cel: (v) => v,
  '[degF]': (v) => ((v - 32) * 5) / 9,
  K: (v) => v - 273.15,
};

const isTemperature = (unit: string | undefined): boolean => unit !== undefined && TEMPERATURE[unit] !== undefined;

/**
 * The value the source reported before the normalizer converted `q` (the `original-quantity`
 * extension, see `src/normalize/units.ts`); undefined when not converted, or converted
 * between temperature scales (not proportional).
 */
function originalValue(q: Quantity): number | undefined {
  for (const e of q.extension ?? []) {
    const o = e.url === ORIGINAL_QUANTITY_EXTENSION ? e.valueQuantity : undefined;
    if (o?.value !== undefined && !isTemperature(unitOf(o)) && !isTemperature(unitOf(q))) return o.value;
  }
  return undefined;
}

/**
 * The precision of `q.value` in `q`'s unit: as written, or for a converted value that of
 * the original scaled by the conversion (`10.1 mmol/L` → `181.962 mg/dL` is ±0.9 mg/dL,
 * not ±0.0005). An original without decimals stays unknown (`known: false`): its scaled
 * half (`6` mmol/L → ±9 mg/dL) is an upper bound only, and {@link pairTolerance} then takes
 * the other value's precision when finer.
 */
function precisionOf(q: Quantity, value: number): Precision {
  const original = originalValue(q);
  if (original === undefined || original === 0 || value === 0) return precisionOfNumber(value);
  const p = precisionOfNumber(original);
  return { half: p.half * Math.abs(value / original), known: p.known };
}

/** A value in canonical base units with its precision (in those units) and dimension. */
interface Canonical {
  readonly value: number;
  readonly precision: Precision;
  readonly dim: string;
}

const scaled = (p: Precision, factor: number): Precision => ({ half: p.half * Math.abs(factor), known: p.known });

function canonical(q: Quantity, molarMass: number | undefined, valence?: number): Canonical[] {
  const unit = unitOf(q);
  const v = q.value;
  if (v === undefined || unit === undefined) return [];
  const p = precisionOf(q, v);
  const temp = TEMPERATURE[unit];
  if (temp) return [{ value: temp(v), precision: { half: Math.abs(temp(v + p.half) - temp(v)), known: p.known }, dim: 'temperature' }];
  const red = reduceUnit(unit);
  if (!red) return [{ value: v, precision: p, dim: `unit:${unit}` }];
  const out: Canonical[] = [{ value: v * red.factor, precision: scaled(p, red.factor), dim: red.key ?? dimsKey(red.dims) }];
  // With the analyte's charge, equivalents also get an amount form (mEq → mmol) so either side can meet.
  const moles = valence !== undefined ? equivalentsAsMoles(red, valence) : undefined;
  if (moles) out.push({ value: v * moles.factor, precision: scaled(p, moles.factor), dim: dimsKey(moles.dims) });
  const amount = moles ?? red;
  // With a molar mass, amounts also get a mass form (and masses an amount form) so either side can meet.
  const molExp = amount.dims.get('mol') ?? 0;
  const gExp = amount.dims.get('g') ?? 0;
  if (molarMass && (molExp === 1 || gExp === 1) && molExp + gExp === 1) {
    const dims = new Map(amount.dims);
    dims.delete(molExp === 1 ? 'mol' : 'g');
    dims.set(molExp === 1 ? 'g' : 'mol', 1);
    const f = molExp === 1 ? molarMass : 1 / molarMass;
    out.push({ value: v * amount.factor * f, precision: scaled(p, amount.factor * f), dim: dimsKey(dims) });
  }
  return out;
}

/**
 * Whether `a` and `b` are two dimensionless units of different magnitudes (`%` and `mmol/mol`,
 * `1` and `%`, `mg/g` and `%`). UCUM reduces every one of them to a pure number, so it equates
 * HbA1c 4.8 % with 48 mmol/mol — but HbA1c in % is the NGSP/DCCT scale and in mmol/mol the IFCC
 * scale (48 mmol/mol ≈ 6.5 %, the diabetes threshold; 4.8 % is normal): a different
 * measurement, not a different unit. The normalizer refuses such conversions for the same reason
 * (`isDimensionlessSwap` in `src/normalize/units.ts`); comparing them here would merge two
 * clinically different results. Units of one magnitude (`{ratio}` and `1`, `%` and `%{HbA1c}`:
 * annotations carry no meaning in UCUM) are one scale.
 * @see https://ucum.org/ucum (§ 2.3 the unity; annotations § 2.4)
 * @see https://ngsp.org/ifccngsp.asp (IFCC–NGSP master equation)
 * @see https://hl7.org/fhir/R4/observation.html#code (code and value are read together)
 */
export function otherDimensionlessScale(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || a === b) return false;
  const ra = reduceUnit(a);
  const rb = reduceUnit(b);
  if (!ra || !rb || ra.dims.size !== 0 || rb.dims.size !== 0) return false;
  return Math.abs(ra.factor - rb.factor) > 1e-12 * Math.max(Math.abs(ra.factor), Math.abs(rb.factor));
}

/**
 * Whether two quantities state the same value: same dimension after UCUM reduction
 * (and molar conversion when `loincCodes` name an analyte with a known molar mass), and
 * a difference within the finer reported precision, a value without decimals taken at the
 * other's ({@link pairTolerance}). Comparators (`<`, `>`) must match. Two dimensionless units
 * of different magnitudes are never the same value ({@link otherDimensionlessScale}).
 */
export function sameQuantity(a: Quantity, b: Quantity, loincCodes: readonly string[] = []): boolean {
  if ((a.comparator ?? '') !== (b.comparator ?? '')) return false;
  if (a.value === undefined || b.value === undefined) return a.value === b.value && unitOf(a) === unitOf(b);
  // Fast path: the same unit code on both sides (the common case) needs no conversion.
  const ua = unitOf(a);
  if (ua !== undefined && ua === unitOf(b) && TEMPERATURE[ua] === undefined) {
    const tolerance = pairTolerance(precisionOf(a, a.value), precisionOf(b, b.value)) + 1e-9 * Math.max(Math.abs(a.value), Math.abs(b.value));
    return Math.abs(a.value - b.value) <= tolerance;
  }
  if (otherDimensionlessScale(ua, unitOf(b))) return false;
  const molar = loincCodes.map((c) => MOLAR_MASS_BY_LOINC[c]).find((m) => m !== undefined);
  const valence = loincCodes.map((c) => VALENCE_BY_LOINC[c]).find((z) => z !== undefined);
  const ca = canonical(a, molar, valence);
  const cb = canonical(b, molar, valence);
  for (const x of ca) {
    for (const y of cb) {
      if (x.dim !== y.dim) continue;
      const tolerance = pairTolerance(x.precision, y.precision) + 1e-9 * Math.max(Math.abs(x.value), Math.abs(y.value));
      if (Math.abs(x.value - y.value) <= tolerance) return true;
    }
  }
  return false;
}
