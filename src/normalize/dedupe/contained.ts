/**
 * Contained resources across a merge.
 *
 * A contained resource is local to its container: `#r1` in a duplicate means the duplicate's
 * `contained` resource `r1`, not the survivor's (R4 references.html#contained). So before a
 * duplicate is folded into a survivor, its local ids are moved out of the survivor's way
 * ({@link localizeContained}):
 * - a contained resource equal to one of the survivor's (all but its id, and holding no local
 *   reference itself) takes the survivor's id: the union then sees one fact, not two;
 * - any other whose id the survivor already uses (a contained id, or an id its `#` references
 *   name) gets a fresh id ({@link freshLocalId}); so two different contained resources with the
 *   same local id are both kept;
 * - the duplicate's `#` references are rewritten to the new ids (also those of its contained
 *   resources to one another). A `#id` the duplicate names without containing it (a dangling
 *   reference as received) is renamed too when the survivor contains an `id`: it must not come to
 *   mean the survivor's resource.
 * After the fold, {@link adoptContained} copies into the survivor every contained resource of the
 * duplicate that the survivor now references (directly, or through another adopted one): a copied
 * element never leaves a `#` reference without its contained resource (ref-1), and nothing
 * unreferenced is contained (dom-3).
 * @see https://hl7.org/fhir/R4/references.html#contained
 * @see https://hl7.org/fhir/R4/resource.html#id
 * @see https://hl7.org/fhir/R4/domainresource.html#invs
 * @packageDocumentation
 */
import { cloneJson, isObject, stableStringify, type JsonObject, type JsonValue } from './json';

/** The duplicate with local ids out of the survivor's way, and its contained resources by new id. */
export interface LocalizedDuplicate {
  readonly duplicate: JsonObject;
  /** The duplicate's contained resources the survivor may need, by their (new) local id. */
  readonly pool: ReadonlyMap<string, JsonObject>;
}

/** Longest id kept before a `-mN` suffix (a FHIR id is at most 64 characters). */
const MAX_BASE = 56;

/** The contained resources of a resource (objects only). */
function containedOf(json: JsonObject): JsonObject[] {
  return Array.isArray(json.contained) ? json.contained.filter(isObject) : [];
}

/** Ids of the contained resources of a resource. */
function containedIds(json: JsonObject): Set<string> {
  const ids = new Set<string>();
  for (const c of containedOf(json)) if (typeof c.id === 'string') ids.add(c.id);
  return ids;
}

/** Calls `visit` with the id of every local reference (`#id`, not the container's `#`) in a JSON tree. */
function forEachLocalReference(value: JsonValue | undefined, visit: (id: string) => void): void {
  if (Array.isArray(value)) {
    for (const v of value) forEachLocalReference(v, visit);
    return;
  }
  if (!isObject(value)) return;
  for (const k in value) {
    const v = value[k];
    if (k === 'reference' && typeof v === 'string') {
      if (v.length > 1 && v.startsWith('#')) visit(v.slice(1));
    } else if (typeof v === 'object' && v !== null) forEachLocalReference(v, visit);
  }
}

/** Ids named by local references anywhere in `value` (contained resources included). */
export function localReferenceIds(value: JsonValue | undefined): Set<string> {
  const ids = new Set<string>();
  forEachLocalReference(value, (id) => ids.add(id));
  return ids;
}

/** `value` with its `#old` references renamed by `renames` (copy-on-write: the same object when untouched). */
function renameLocalReferences<T extends JsonValue>(value: T, renames: ReadonlyMap<string, string>): T {
  if (Array.isArray(value)) {
    let out: JsonValue[] | undefined;
    value.forEach((v, i) => {
      const r = renameLocalReferences(v, renames);
      if (r !== v) (out ??= value.slice())[i] = r;
    });
    return (out ?? value) as T;
  }
  if (!isObject(value)) return value;
  let out: JsonObject | undefined;
  for (const k in value) {
    const v = value[k];
    if (v === undefined) continue;
    let r: JsonValue = v;
    if (k === 'reference' && typeof v === 'string') {
      const to = v.startsWith('#') ? renames.get(v.slice(1)) : undefined;
      if (to !== undefined) r = `#${to}`;
    } else r = renameLocalReferences(v, renames);
    if (r !== v) (out ??= { ...value })[k] = r;
  }
  return (out ?? value) as T;
}

/** A local id based on `id` that is not in `taken` (`id-m2`, `id-m3`, …; FHIR id syntax kept). */
export function freshLocalId(id: string, taken: ReadonlySet<string>): string {
  const base = id.slice(0, MAX_BASE);
  for (let n = 2; ; n++) {
    const candidate = `${base}-m${n}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/** Text of a contained resource without its id (its content), or undefined when it holds local references. */
function contentKey(c: JsonObject): string | undefined {
  if (localReferenceIds(c).size > 0) return undefined;
  const rest: JsonObject = {};
  for (const k in c) if (k !== 'id') rest[k] = c[k];
  return stableStringify(rest);
}

/** Where each of the duplicate's local ids goes: the survivor's equal resource, its own id, or a fresh one. */
function planRenames(survivor: JsonObject, contained: readonly JsonObject[], dangling: ReadonlySet<string>): Map<string, string> {
  const survivorContained = containedIds(survivor);
  const taken = new Set([...survivorContained, ...localReferenceIds(survivor)]);
  const equal = new Map<string, string>();
  for (const s of containedOf(survivor)) {
    const key = contentKey(s);
    if (key !== undefined && typeof s.id === 'string' && !equal.has(key)) equal.set(key, s.id);
  }
  const renames = new Map<string, string>();
  for (const c of contained) {
    if (typeof c.id !== 'string' || renames.has(c.id)) continue;
    const key = contentKey(c);
    const same = key !== undefined ? equal.get(key) : undefined;
    const to = same ?? (taken.has(c.id) ? freshLocalId(c.id, taken) : c.id);
    renames.set(c.id, to);
    taken.add(to);
  }
  for (const id of dangling) {
    if (!survivorContained.has(id)) continue;
    const to = freshLocalId(id, taken);
    renames.set(id, to);
    taken.add(to);
  }
  return renames;
}

/**
 * `duplicate` with its local ids moved out of `survivor`'s way, and the contained resources it
 * brings (see the module comment). Inputs unchanged; cheap when neither side contains anything.
 */
export function localizeContained(survivor: JsonObject, duplicate: JsonObject): LocalizedDuplicate {
  const contained = containedOf(duplicate);
  if (contained.length === 0 && containedOf(survivor).length === 0) return { duplicate, pool: new Map() };
  const own = containedIds(duplicate);
  const dangling = new Set([...localReferenceIds(duplicate)].filter((id) => !own.has(id)));
  const renames = planRenames(survivor, contained, dangling);
  const survivorIds = containedIds(survivor);
  const pool = new Map<string, JsonObject>();
  for (const c of contained) {
    const to = typeof c.id === 'string' ? renames.get(c.id) : undefined;
    // A resource equal to one the survivor contains is already there.
    if (to === undefined || survivorIds.has(to) || pool.has(to)) continue;
    pool.set(to, { ...renameLocalReferences(c, renames), id: to });
  }
  return { duplicate: renameLocalReferences(duplicate, renames), pool };
}

/**
 * Adds to `survivor` (a private draft: `contained` is replaced, never mutated) the resources of
 * `pool` its local references now name, and those they name in turn.
 */
export function adoptContained(survivor: JsonObject, pool: ReadonlyMap<string, JsonObject>): void {
  if (pool.size === 0) return;
  const have = containedIds(survivor);
  const adopted: JsonObject[] = [];
  const wanted = [...localReferenceIds(survivor)];
  for (let id = wanted.pop(); id !== undefined; id = wanted.pop()) {
    const c = pool.get(id);
    if (c === undefined || have.has(id)) continue;
    have.add(id);
    adopted.push(cloneJson(c));
    for (const next of localReferenceIds(c)) if (!have.has(next)) wanted.push(next);
  }
  if (adopted.length === 0) return;
  adopted.sort((a, b) => (String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0));
  survivor.contained = [...(Array.isArray(survivor.contained) ? survivor.contained : []), ...adopted];
}
