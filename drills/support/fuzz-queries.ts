/**
 * Bad values for one query parameter, as they appear in a URL: numbers out of every range (beyond
 * PostgreSQL's integer, beyond a double, negative, fractional, hexadecimal, non-ASCII digits), empty,
 * SQL and prototype keys, broken percent-encoding, a NUL, a long value, the key repeated. Fixed ones
 * first, then seeded random strings, so a run is repeatable.
 */
import fc from 'fast-check';

const FIXED: readonly string[] = [
  '', 'abc', '-1', '0', '1.5', '1e400', '3000000000', '99999999999999999999', 'NaN', 'Infinity', '0x10', '٣', ' 1 ', '1,2',
  'true', 'null', '[]', '{}', '__proto__', "'; DROP TABLE cases;--", 'a'.repeat(5000),
];

/** Query strings (without `?`) that set `key` to a bad value; `count` at least the fixed ones. */
export function fuzzQueries(key: string, count: number, seed: number): string[] {
  const k = encodeURIComponent(key);
  const out = FIXED.map((v) => `${k}=${encodeURIComponent(v)}`);
  out.push(`${k}=%E0%A4%A`, `${k}=%00`, `${k}=1&${k}=2`, `${k}[]=1`, `${k}[a]=1`);
  const random = fc.sample(fc.string({ unit: 'binary', maxLength: 40 }), { seed, numRuns: Math.max(0, count - out.length) });
  for (const v of random) {
    try {
      out.push(`${k}=${encodeURIComponent(v)}`);
    } catch {
      // A lone surrogate has no UTF-8 form: not a value a URL can carry.
    }
  }
  return out;
}
