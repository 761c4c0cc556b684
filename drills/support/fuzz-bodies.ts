import fc from 'fast-check';

/**
 * Generated request bodies (fast-check, seeded), as the raw text sent on the wire:
 * - garbage: arbitrary JSON of every shape, wrong types, huge strings, deep nesting, JSON that is
 *   not an object, bodies that are not JSON at all, prototype-pollution keys (`__proto__`,
 *   `constructor.prototype`) written into the text itself (JSON.stringify would drop them);
 * - near-valid: one mutation of a valid sample (a field removed, set to another type, to null, to
 *   a huge or empty string, a string given a NUL or an unpaired surrogate, an unknown or polluting
 *   key added, an array emptied), when the route has a sample.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const POLLUTION_KEYS = ['__proto__', 'constructor', 'prototype', '__defineGetter__', 'hasOwnProperty', 'toString', 'valueOf'];

const hugeString = fc.integer({ min: 10_000, max: 200_000 }).map((n) => 'x'.repeat(n));
const weirdString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.constantFrom('', ' ', '\u0000', '\u202e', '../../etc/passwd', "' OR 1=1 --", '<script>alert(1)</script>', 'NaN', '-1', '1e309', '2026-13-45', 'null'),
);
const garbageJson: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue() as fc.Arbitrary<Json> },
  { weight: 2, arbitrary: fc.dictionary(weirdString, fc.jsonValue() as fc.Arbitrary<Json>) },
  { weight: 1, arbitrary: hugeString },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('name', 'patient', 'to', 'types', 'since', 'auth', 'baseUrl', 'endpointId', 'patientId', 'id'), fc.oneof(hugeString, fc.jsonValue() as fc.Arbitrary<Json>)) },
);

/** JSON nested `depth` deep, written as text (JSON.stringify would overflow the stack first). */
const deeplyNested = fc.integer({ min: 1, max: 20_000 }).map((depth) => `${'{"a":['.repeat(depth)}"deep"${']}'.repeat(depth)}`);

/** Raw texts that JSON.stringify cannot produce: polluting keys, broken JSON, other media. */
const rawGarbage: fc.Arbitrary<string> = fc.oneof(
  deeplyNested,
  fc.tuple(fc.constantFrom(...POLLUTION_KEYS), fc.jsonValue()).map(([key, value]) => `{"${key}": ${JSON.stringify({ polluted: true, isAdmin: true, value })}}`),
  fc.constant('{"constructor": {"prototype": {"polluted": true}}}'),
  fc.constant('{"__proto__": {"roles": ["admin"]}, "__proto__": null}'),
  fc.string().map((s) => `{"unterminated": "${s}`),
  fc.string(),
  fc.constantFrom('', 'null', 'true', '0', '[]', '"text"', '{', '}', '{"a":}', '{"a":1,}', "{'a':1}", '\u0000', '{"a":1}{"b":2}', 'NaN', '1e309'),
);

/** Every path (keys / indexes) to a value inside `value`, the root included. */
function pathsOf(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const here = [prefix];
  if (Array.isArray(value)) return [...here, ...value.flatMap((v, i) => pathsOf(v, [...prefix, i]))];
  if (value !== null && typeof value === 'object') return [...here, ...Object.entries(value).flatMap(([k, v]) => pathsOf(v, [...prefix, k]))];
  return here;
}

function valueAt(value: Json, path: readonly (string | number)[]): Json | undefined {
  let at: Json | undefined = value;
  for (const step of path) at = at !== null && typeof at === 'object' ? (at as Record<string | number, Json>)[step] : undefined;
  return at;
}

type Mutation = 'delete' | 'replace' | 'null' | 'huge' | 'empty' | 'wrong-type' | 'unknown-key' | 'pollute' | 'empty-array' | 'unstorable';

/** Text JSON can carry and PostgreSQL cannot store (a NUL, unpaired surrogates), around the value kept. */
const UNSTORABLE = ['\u0000', '\ud800', '\udfff'];

function mutate(sample: Json, pathIndex: number, mutation: Mutation, replacement: Json, key: string): string {
  const copy = JSON.parse(JSON.stringify(sample)) as Json;
  const all = pathsOf(copy);
  // An unstorable character goes into one of the sample's strings (there is little to it elsewhere).
  const strings = mutation === 'unstorable' ? all.filter((p) => typeof valueAt(copy, p) === 'string') : [];
  const paths = strings.length > 0 ? strings : all;
  const path = paths[pathIndex % paths.length] ?? [];
  if (mutation === 'pollute') {
    // Inserted textually so the key reaches the server as sent.
    const text = JSON.stringify(copy);
    return text.startsWith('{') && text.length > 2 ? `{"${POLLUTION_KEYS[pathIndex % POLLUTION_KEYS.length]}": ${JSON.stringify({ polluted: replacement })}, ${text.slice(1)}` : text;
  }
  const parentPath = path.slice(0, -1);
  const last = path[path.length - 1];
  let parent: Json = copy;
  for (const step of parentPath) parent = (parent as Record<string | number, Json>)[step] as Json;
  const current = last === undefined ? copy : (parent as Record<string | number, Json>)[last];
  const next = (): Json | undefined => {
    switch (mutation) {
      case 'delete':
        return undefined;
      case 'replace':
        return replacement;
      case 'null':
        return null;
      case 'huge':
        return 'y'.repeat(100_000);
      case 'empty':
        return typeof current === 'string' ? '' : Array.isArray(current) ? [] : {};
      case 'wrong-type':
        return typeof current === 'string' ? 12345 : typeof current === 'number' ? String(current) : typeof current === 'boolean' ? 'yes' : Array.isArray(current) ? { 0: current[0] ?? null } : 'not an object';
      case 'unknown-key':
        return current !== null && typeof current === 'object' && !Array.isArray(current) ? { ...current, [key]: replacement } : current;
      case 'empty-array':
        return Array.isArray(current) ? [] : [current];
      case 'unstorable':
        return typeof current === 'string' ? `${current}${UNSTORABLE[pathIndex % UNSTORABLE.length] ?? ''}${current}` : current;
      default:
        return current;
    }
  };
  const value = next();
  if (last === undefined) return value === undefined ? '' : JSON.stringify(value);
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete (parent as Record<string, Json>)[String(last)];
  } else {
    (parent as Record<string | number, Json>)[last] = value;
  }
  return JSON.stringify(copy);
}

function nearValid(sample: Json): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.nat(),
      fc.constantFrom<Mutation>('delete', 'replace', 'null', 'huge', 'empty', 'wrong-type', 'unknown-key', 'pollute', 'empty-array', 'unstorable'),
      fc.jsonValue() as fc.Arbitrary<Json>,
      weirdString,
    )
    .map(([pathIndex, mutation, replacement, key]) => mutate(sample, pathIndex, mutation, replacement, key));
}

/** `count` bodies for one route: garbage, raw garbage and (with a sample) near-valid mutations. */
export function fuzzBodies(sample: unknown, count: number, seed: number): string[] {
  const arbitrary =
    sample === undefined
      ? fc.oneof({ weight: 3, arbitrary: garbageJson.map((v) => JSON.stringify(v)) }, { weight: 1, arbitrary: rawGarbage })
      : fc.oneof(
          { weight: 2, arbitrary: garbageJson.map((v) => JSON.stringify(v)) },
          { weight: 1, arbitrary: rawGarbage },
          { weight: 3, arbitrary: nearValid(sample as Json) },
        );
  return fc.sample(arbitrary, { seed, numRuns: count });
}
