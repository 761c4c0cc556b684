/**
 * Quantity equality for de-duplication: two reported results are the same value when
 * they agree after UCUM conversion, within the precision each source reported
 * (`10.1 mmol/L` of glucose is `182 mg/dL` to one decimal).
 *
 * Comparison only: values are never rewritten here (the normalizer owns unit mapping).
 * Supports the UCUM subset labs and vitals use: metric prefixes on g, L, mol, m, s,
 * [IU], U, eq; `10*n` factors; `%`; `{annotations}`; products and quotients; a few
 * customary units; Cel/[degF]. Mass ↔ amount needs a molar mass, given per analyte
 * (LOINC) in {@link MOLAR_MASS_BY_LOINC}.
 * @see https://ucum.org/ucum
 * @see https://hl7.org/fhir/R4/datatypes.html#Quantity
 * @packageDocumentation
 */
import type { Quantity } from 'fhir/r4';
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
  eq: { factor: 1, dim: { mol: 1 }, metric: true },
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

/** Half of the last reported digit: `10.1` → 0.05, `182` → 0.5. */
function halfUlp(value: number): number {
  const text = String(value);
  if (/e/i.test(text)) return Math.abs(value) * 5e-7;
  const decimals = text.split('.')[1]?.length ?? 0;
  return 0.5 * 10 ** -decimals;
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

/** A value in canonical base units with its tolerance (half the reported precision) and dimension. */
interface Canonical {
  readonly value: number;
  readonly tolerance: number;
  readonly dim: string;
}

function canonical(q: Quantity, molarMass: number | undefined): Canonical[] {
  const unit = unitOf(q);
  const v = q.value;
  if (v === undefined || unit === undefined) return [];
  const temp = TEMPERATURE[unit];
  if (temp) return [{ value: temp(v), tolerance: Math.abs(temp(v + halfUlp(v)) - temp(v)), dim: 'temperature' }];
  const red = reduceUnit(unit);
  if (!red) return [{ value: v, tolerance: halfUlp(v), dim: `unit:${unit}` }];
  const out: Canonical[] = [{ value: v * red.factor, tolerance: halfUlp(v) * red.factor, dim: red.key ?? dimsKey(red.dims) }];
  // With a molar mass, amounts also get a mass form (and masses an amount form) so either side can meet.
  const molExp = red.dims.get('mol') ?? 0;
  const gExp = red.dims.get('g') ?? 0;
  if (molarMass && (molExp === 1 || gExp === 1) && molExp + gExp === 1) {
    const dims = new Map(red.dims);
    dims.delete(molExp === 1 ? 'mol' : 'g');
    dims.set(molExp === 1 ? 'g' : 'mol', 1);
    const f = molExp === 1 ? molarMass : 1 / molarMass;
    out.push({ value: v * red.factor * f, tolerance: halfUlp(v) * red.factor * f, dim: dimsKey(dims) });
  }
  return out;
}

/**
 * Whether two quantities state the same value: same dimension after UCUM reduction
 * (and molar conversion when `loincCodes` name an analyte with a known molar mass), and
 * a difference within the coarser reported precision. Comparators (`<`, `>`) must match.
 */
export function sameQuantity(a: Quantity, b: Quantity, loincCodes: readonly string[] = []): boolean {
  if ((a.comparator ?? '') !== (b.comparator ?? '')) return false;
  if (a.value === undefined || b.value === undefined) return a.value === b.value && unitOf(a) === unitOf(b);
  // Fast path: the same unit code on both sides (the common case) needs no conversion.
  const ua = unitOf(a);
  if (ua !== undefined && ua === unitOf(b) && TEMPERATURE[ua] === undefined) {
    const tolerance = Math.max(halfUlp(a.value), halfUlp(b.value)) + 1e-9 * Math.max(Math.abs(a.value), Math.abs(b.value));
    return Math.abs(a.value - b.value) <= tolerance;
  }
  const molar = loincCodes.map((c) => MOLAR_MASS_BY_LOINC[c]).find((m) => m !== undefined);
  const ca = canonical(a, molar);
  const cb = canonical(b, molar);
  for (const x of ca) {
    for (const y of cb) {
      if (x.dim !== y.dim) continue;
      const tolerance = Math.max(x.tolerance, y.tolerance) + 1e-9 * Math.max(Math.abs(x.value), Math.abs(y.value));
      if (Math.abs(x.value - y.value) <= tolerance) return true;
    }
  }
  return false;
}
