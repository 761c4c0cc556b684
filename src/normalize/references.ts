/**
 * Reference rewriting: every `Reference.reference` of an imported resource is made to point at a
 * resource of the case bundle (`urn:uuid:` fullUrl), or dropped with a warning.
 *
 * Resolution is per source: a reference is only followed to a resource pulled from the same source
 * (ids are only unique per server). Forms understood (R4 references.html):
 * - relative `Type/id`, absolute `[base]/Type/id` (base = the source's base URL), each optionally
 *   versioned `…/_history/n` (the bundle holds one version per resource: the kept one; a reference
 *   naming another version than the kept one's `meta.versionId` (as the source sent it, recorded in
 *   its {@link ReferenceTarget}) still points at it, with a warning `other-version-reference`, since
 *   what it says may have changed since that version);
 * - `urn:uuid:` / `urn:oid:` and any other `Bundle.entry.fullUrl` of a Bundle the source sent
 *   (`RawInput.fullUrl`); without it, `urn:uuid:X` matches the source's resource whose id is `X`
 *   (Synthea's convention);
 * - conditional `Type?identifier=system|value` (also `_id=`), matched on the identifiers of the
 *   source's resources of that type; no match leaves a logical reference (`Reference.identifier`);
 * - `#id` (contained) and `#` (the container): untouched.
 *
 * A reference that resolves to nothing keeps `display`, `identifier` and `type` (set from the
 * literal when known), loses `reference`, and yields a warning `unresolved-reference` (or
 * `ambiguous-reference` when several resources match). References to the child's Patient at the
 * source are redirected to the case Patient.
 *
 * Resources are walked generically: any object with a string `reference` whose keys are those of a
 * Reference datatype, wherever it sits (extensions, contained resources, backbone elements). The
 * walk also copies the resource (the raw JSON is never changed), in one pass. `Attachment.url`
 * pointing at a resource of the same source (`Binary/123`) is rewritten the same way: R4 reads a
 * relative attachment URL as a resource reference.
 * @see https://hl7.org/fhir/R4/references.html
 * @see https://hl7.org/fhir/R4/references.html#regex
 * @see https://hl7.org/fhir/R4/bundle.html#references
 * @see https://hl7.org/fhir/R4/http.html#cond-update (conditional references in transactions)
 * @see https://hl7.org/fhir/R4/datatypes.html#Attachment
 * @packageDocumentation
 */
import type { Identifier } from 'fhir/r4';
import { normalizeBaseUrl } from './ids';

/* Builtins bound once: hot loops then read module constants, not globals (much cheaper inside vm contexts such as jest's). */
const { isArray } = Array;
const { getPrototypeOf } = Object;
const OBJECT_PROTOTYPE: unknown = Object.prototype;
const isFiniteNumber = Number.isFinite;
const ArrayOf = Array;

/** A resource that references can point at, within one source. */
export interface ReferenceTarget {
  readonly resourceType: string;
  readonly remoteId: string;
  /** Its `urn:uuid:` fullUrl in the case bundle. */
  readonly fullUrl: string;
  /** The raw resource (read for identifiers when a conditional reference needs them). */
  readonly resource: Readonly<Record<string, unknown>>;
  /**
   * The kept resource's `meta.versionId` as the source sent it ({@link metaVersionIdOf}), read when
   * the target is collected: with `consumeRaw` the resource is normalized in place and `applyOrigin`
   * drops the version id, so reading `resource.meta` when a versioned reference is resolved would
   * depend on the mode and on whether the target was normalized first.
   */
  readonly versionId: string | undefined;
  /** `Bundle.entry.fullUrl` in the Bundle the source sent, when known. */
  readonly sourceFullUrl?: string;
}

/** The `meta.versionId` of a raw resource (for {@link ReferenceTarget.versionId}); undefined when it has none. */
export function metaVersionIdOf(resource: Readonly<Record<string, unknown>>): string | undefined {
  const meta = resource['meta'];
  const versionId = typeof meta === 'object' && meta !== null && !isArray(meta) ? (meta as { versionId?: unknown }).versionId : undefined;
  return typeof versionId === 'string' ? versionId : undefined;
}

/** Where references to the child's Patient at this source go instead. */
export interface PatientRedirect {
  /** `Patient/<id>` of the child at the source (also used when that Patient was not pulled). */
  readonly typeIds: ReadonlySet<string>;
  /** The case Patient's fullUrl. */
  readonly to: string;
}

/** The lookup tables of one source. Build with {@link buildReferenceIndex}. */
export interface SourceReferenceIndex {
  readonly baseUrl: string;
  readonly byTypeId: ReadonlyMap<string, ReferenceTarget>;
  /** `Bundle.entry.fullUrl`s the source sent. */
  readonly byUrl: ReadonlyMap<string, ReferenceTarget>;
  readonly redirect: PatientRedirect | undefined;
  /** Tables built on first use, and resolutions already made (memos: no effect on results). */
  readonly memo: {
    /** Bare id → target, `null` when two resource types share the id (for `urn:uuid:` references). */
    byBareId?: ReadonlyMap<string, ReferenceTarget | null>;
    /** Identifier tables per resource type (for conditional references). */
    readonly identifiers: Map<string, ReadonlyMap<string, readonly ReferenceTarget[]>>;
    /** Reference string → resolution (references to the Patient, Encounter, … repeat a lot). */
    readonly resolutions: Map<string, Resolution>;
  };
}

/** The outcome of resolving one reference. */
export type Resolution =
  | { readonly status: 'contained' }
  | {
      readonly status: 'resolved';
      readonly fullUrl: string;
      /** Said each time the resolution is applied: resolved, but to another version than the one named. */
      readonly note?: { readonly code: 'other-version-reference'; readonly message: string };
    }
  | {
      readonly status: 'unresolved';
      readonly code: 'unresolved-reference' | 'ambiguous-reference';
      readonly reason: string;
      readonly resourceType?: string;
      readonly identifier?: Identifier;
    };

/** Reference forms, parsed. */
export type ParsedReference =
  | { readonly kind: 'contained' }
  | { readonly kind: 'literal'; readonly resourceType: string; readonly id: string; readonly version?: string }
  | { readonly kind: 'urn'; readonly id: string }
  | { readonly kind: 'conditional'; readonly resourceType: string; readonly query: string }
  | { readonly kind: 'foreign'; readonly resourceType?: string }
  | { readonly kind: 'unparseable' };

const TYPE = '[A-Z][A-Za-z]+';
const ID = '[A-Za-z0-9\\-.]{1,64}';
const RELATIVE = new RegExp(`^(${TYPE})/(${ID})(?:/_history/(${ID}))?$`);
const ABSOLUTE = new RegExp(`^(https?://.+)/(${TYPE})/(${ID})(?:/_history/(${ID}))?$`);
const CONDITIONAL = new RegExp(`^(${TYPE})\\?(.+)$`);
const URN = /^urn:(?:uuid|oid):(.+)$/;

function literal(resourceType: string, id: string, version: string | undefined): ParsedReference {
  return version === undefined ? { kind: 'literal', resourceType, id } : { kind: 'literal', resourceType, id, version };
}

/**
 * Parses a `Reference.reference` string relative to the source's base URL.
 * @see https://hl7.org/fhir/R4/references.html#regex
 */
export function parseReference(reference: string, baseUrl: string): ParsedReference {
  if (reference.startsWith('#')) return { kind: 'contained' };
  let m = RELATIVE.exec(reference);
  if (m) return literal(m[1] ?? '', m[2] ?? '', m[3]);
  m = URN.exec(reference);
  if (m) return { kind: 'urn', id: m[1] ?? '' };
  m = ABSOLUTE.exec(reference);
  if (m) {
    const [, base = '', resourceType = '', id = '', version] = m;
    return normalizeBaseUrl(base) === normalizeBaseUrl(baseUrl) ? literal(resourceType, id, version) : { kind: 'foreign', resourceType };
  }
  m = CONDITIONAL.exec(reference);
  if (m) return { kind: 'conditional', resourceType: m[1] ?? '', query: m[2] ?? '' };
  return /^[a-z][a-z0-9+.-]*:/i.test(reference) ? { kind: 'foreign' } : { kind: 'unparseable' };
}

/**
 * Builds the lookup tables of one source from the resources kept for the bundle.
 * @param redirect - the child's Patient at this source → the case Patient
 */
export function buildReferenceIndex(
  baseUrl: string,
  targets: readonly ReferenceTarget[],
  redirect?: PatientRedirect,
): SourceReferenceIndex {
  const byTypeId = new Map<string, ReferenceTarget>();
  const byUrl = new Map<string, ReferenceTarget>();
  for (const t of targets) {
    byTypeId.set(`${t.resourceType}/${t.remoteId}`, t);
    if (t.sourceFullUrl) byUrl.set(t.sourceFullUrl, t);
  }
  return { baseUrl: normalizeBaseUrl(baseUrl), byTypeId, byUrl, redirect, memo: { identifiers: new Map(), resolutions: new Map() } };
}

function bareIdTable(index: SourceReferenceIndex): ReadonlyMap<string, ReferenceTarget | null> {
  if (index.memo.byBareId) return index.memo.byBareId;
  const table = new Map<string, ReferenceTarget | null>();
  for (const t of index.byTypeId.values()) table.set(t.remoteId, table.has(t.remoteId) ? null : t);
  index.memo.byBareId = table;
  return table;
}

const CONTAINED: Resolution = { status: 'contained' };

function found(index: SourceReferenceIndex, target: ReferenceTarget): Resolution {
  const { redirect } = index;
  if (redirect && redirect.typeIds.has(`${target.resourceType}/${target.remoteId}`)) return { status: 'resolved', fullUrl: redirect.to };
  return { status: 'resolved', fullUrl: target.fullUrl };
}

/**
 * A versioned literal reference (`Type/id/_history/n`) to a kept resource: resolved to it, with a
 * note when the kept one carries another `meta.versionId` (the reference meant an earlier state of
 * the resource, which the bundle does not hold). Without a version id on the kept resource nothing
 * can be told, and nothing is said.
 * @see https://hl7.org/fhir/R4/references.html#versions
 */
function foundVersion(index: SourceReferenceIndex, target: ReferenceTarget, reference: string, version: string): Resolution {
  const res = found(index, target);
  // Recorded when the target was collected (the resource itself may be normalized by now).
  const kept = target.versionId;
  // Redirected (the child's Patient → the case Patient): no version of it is in the bundle anyway.
  if (res.status !== 'resolved' || res.fullUrl !== target.fullUrl || kept === undefined || kept === version) return res;
  return {
    ...res,
    note: {
      code: 'other-version-reference',
      message: `${reference} names version ${version} of ${target.resourceType}/${target.remoteId}; the bundle holds version ${kept} (the one kept from this source), which the reference now points at`,
    },
  };
}

function unresolved(reason: string, resourceType?: string, identifier?: Identifier): Resolution {
  return {
    status: 'unresolved',
    code: 'unresolved-reference',
    reason,
    ...(resourceType ? { resourceType } : {}),
    ...(identifier ? { identifier } : {}),
  };
}

/** Identifiers of the source's resources of one type: `system|value`, `|value` (no system) and `*|value` (any system). */
function identifierTable(index: SourceReferenceIndex, resourceType: string): ReadonlyMap<string, readonly ReferenceTarget[]> {
  const memo = index.memo.identifiers.get(resourceType);
  if (memo) return memo;
  const table = new Map<string, ReferenceTarget[]>();
  const add = (key: string, t: ReferenceTarget): void => {
    const list = table.get(key);
    if (!list) table.set(key, [t]);
    else if (!list.includes(t)) list.push(t);
  };
  for (const t of index.byTypeId.values()) {
    if (t.resourceType !== resourceType) continue;
    const ids = t.resource['identifier'];
    if (!isArray(ids)) continue;
    for (const ident of ids as unknown[]) {
      if (typeof ident !== 'object' || ident === null) continue;
      const { system, value } = ident as { system?: unknown; value?: unknown };
      if (typeof value !== 'string') continue;
      add(`${typeof system === 'string' ? system : ''}|${value}`, t);
      add(`*|${value}`, t);
    }
  }
  index.memo.identifiers.set(resourceType, table);
  return table;
}

function decode(part: string): string | undefined {
  if (!part.includes('%') && !part.includes('+')) return part;
  try {
    return decodeURIComponent(part.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** Candidates for one search parameter of a conditional reference; `undefined` when not supported. */
function candidatesFor(index: SourceReferenceIndex, resourceType: string, name: string, value: string): readonly ReferenceTarget[] | undefined {
  if (name === '_id') {
    const t = index.byTypeId.get(`${resourceType}/${value}`);
    return t ? [t] : [];
  }
  if (name !== 'identifier') return undefined;
  const bar = value.indexOf('|');
  if (bar === value.length - 1) return undefined; // `system|` (every identifier of a system): not an identity
  const key = bar < 0 ? `*|${value}` : value;
  return identifierTable(index, resourceType).get(key) ?? [];
}

function logicalIdentifier(params: readonly (readonly [string, string])[]): Identifier | undefined {
  if (params.length !== 1 || params[0]?.[0] !== 'identifier') return undefined;
  const token = params[0][1];
  const bar = token.indexOf('|');
  if (bar < 0) return { value: token };
  const system = token.slice(0, bar);
  const value = token.slice(bar + 1);
  return system ? { system, value } : { value };
}

function resolveConditional(index: SourceReferenceIndex, resourceType: string, query: string, reference: string): Resolution {
  const params: [string, string][] = [];
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? undefined : decode(part.slice(0, eq));
    const value = eq < 0 ? undefined : decode(part.slice(eq + 1));
    if (!name || value === undefined || value === '') return unresolved(`conditional reference ${reference} cannot be parsed`, resourceType);
    params.push([name, value]);
  }
  let matches: readonly ReferenceTarget[] | undefined;
  for (const [name, value] of params) {
    const candidates = candidatesFor(index, resourceType, name, value);
    if (!candidates) return unresolved(`conditional reference ${reference} uses a search parameter other than identifier or _id`, resourceType);
    matches = matches === undefined ? candidates : matches.filter((t) => candidates.includes(t));
  }
  const list = matches ?? [];
  const identifier = logicalIdentifier(params);
  if (list.length === 1 && list[0]) return found(index, list[0]);
  if (list.length > 1) {
    return {
      status: 'unresolved',
      code: 'ambiguous-reference',
      reason: `conditional reference ${reference} matches ${list.length} resources of this source`,
      resourceType,
      ...(identifier ? { identifier } : {}),
    };
  }
  return unresolved(`conditional reference ${reference} matches no resource of this source`, resourceType, identifier);
}

/** Resolves one `Reference.reference` (or attachment URL) within its source (memoized per index). */
export function resolveReference(index: SourceReferenceIndex, reference: string): Resolution {
  let res = index.memo.resolutions.get(reference);
  if (res === undefined) {
    res = resolveUncached(index, reference);
    index.memo.resolutions.set(reference, res);
  }
  return res;
}

function resolveUncached(index: SourceReferenceIndex, reference: string): Resolution {
  if (reference.startsWith('#')) return CONTAINED;
  const exact = index.byUrl.get(reference);
  if (exact) return found(index, exact);
  const parsed = parseReference(reference, index.baseUrl);
  switch (parsed.kind) {
    case 'contained':
      return CONTAINED;
    case 'literal': {
      const typeId = `${parsed.resourceType}/${parsed.id}`;
      if (index.redirect?.typeIds.has(typeId)) return { status: 'resolved', fullUrl: index.redirect.to };
      const t = index.byTypeId.get(typeId);
      if (!t) return unresolved(`${reference} resolves to no resource kept from this source`, parsed.resourceType);
      return parsed.version === undefined ? found(index, t) : foundVersion(index, t, reference, parsed.version);
    }
    case 'urn': {
      const t = bareIdTable(index).get(parsed.id);
      if (t) return found(index, t);
      if (t === null) {
        return { status: 'unresolved', code: 'ambiguous-reference', reason: `${reference} matches resources of several types at this source` };
      }
      return unresolved(`${reference} is not the fullUrl of any resource kept from this source`);
    }
    case 'conditional':
      return resolveConditional(index, parsed.resourceType, parsed.query, reference);
    case 'foreign':
      return unresolved(`${reference} points outside this source`, parsed.resourceType);
    case 'unparseable':
      return unresolved(`${reference} is not a FHIR reference`);
  }
}

/** Callbacks of the copying walk. */
export interface RewriteHooks {
  /** Resolves `Reference.reference`. */
  resolve(reference: string): Resolution;
  /** New value for an `Attachment.url`, `undefined` to leave it (only called for same-source literal URLs). */
  attachmentUrl(url: string): string | undefined;
  warn(code: string, message: string): void;
}

const REFERENCE_KEYS = new Set(['id', 'extension', 'reference', '_reference', 'type', '_type', 'identifier', 'display', '_display']);
const ATTACHMENT_KEYS = new Set([
  'id', 'extension', 'contentType', '_contentType', 'language', '_language', 'data', '_data', 'url', '_url',
  'size', '_size', 'hash', '_hash', 'title', '_title', 'creation', '_creation',
]);

function hasOnlyKeys(node: Record<string, unknown>, keys: ReadonlySet<string>): boolean {
  for (const k in node) if (!keys.has(k)) return false;
  return true;
}

/** An object shaped like a FHIR Reference: a string `reference` and only Reference keys. */
export function isReferenceLike(node: Record<string, unknown>): boolean {
  return typeof node['reference'] === 'string' && hasOnlyKeys(node, REFERENCE_KEYS);
}

function isAttachmentLike(node: Record<string, unknown>): boolean {
  return (
    typeof node['url'] === 'string' &&
    ('contentType' in node || 'data' in node || 'size' in node || 'hash' in node || 'title' in node || 'creation' in node) &&
    hasOnlyKeys(node, ATTACHMENT_KEYS)
  );
}

/** Applies a resolution to a (copied) Reference object, in place. */
export function applyResolution(ref: Record<string, unknown>, original: string, res: Resolution, warn: RewriteHooks['warn']): void {
  if (res.status === 'contained') return;
  if (res.status === 'resolved') {
    ref['reference'] = res.fullUrl;
    if (res.note) warn(res.note.code, res.note.message);
    return;
  }
  delete ref['reference'];
  if (res.identifier && ref['identifier'] === undefined) ref['identifier'] = { ...res.identifier }; // resolutions are memoized: no shared objects
  if (res.resourceType && ref['type'] === undefined) ref['type'] = res.resourceType;
  if (ref['display'] === undefined && ref['identifier'] === undefined && ref['type'] === undefined && ref['extension'] === undefined) {
    ref['display'] = 'Not included in the case records';
  }
  warn(res.code, `${res.reason} (reference "${original}" removed)`);
}

/** Thrown for JSON that is not FHIR JSON (cycles, `__proto__` keys, non-JSON values). */
export class NotFhirJsonError extends Error {
  override readonly name = 'NotFhirJsonError';
}

const MAX_DEPTH = 64;

/** A JSON primitive, as is; anything else JSON cannot hold throws. */
function primitive(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (isFiniteNumber(value)) return value;
      throw new NotFhirJsonError(`holds the number ${String(value)}`);
    default:
      throw new NotFhirJsonError(`holds a ${typeof value} value, not JSON`);
  }
}

/**
 * The one walk over a resource: JSON sanity, `null` removal, Reference and Attachment rewriting.
 * `copy` builds a new tree; otherwise the tree is rewritten in place.
 */
function walkNode(node: object, hooks: RewriteHooks, depth: number, copy: boolean): unknown {
  if (depth > MAX_DEPTH) throw new NotFhirJsonError(`nested deeper than ${MAX_DEPTH} levels (or cyclic)`);
  if (isArray(node)) {
    const out: unknown[] = copy ? new ArrayOf<unknown>(node.length) : node;
    for (let i = 0; i < node.length; i++) {
      const item: unknown = node[i];
      out[i] = typeof item === 'object' && item !== null ? walkNode(item, hooks, depth + 1, copy) : item === null ? null : primitive(item);
    }
    return out;
  }
  const proto: unknown = getPrototypeOf(node);
  if (proto !== OBJECT_PROTOTYPE && proto !== null) throw new NotFhirJsonError('holds an object that is not plain JSON');
  const src = node as Record<string, unknown>;
  const out: Record<string, unknown> = copy ? {} : src;
  for (const key in src) {
    if (key === '__proto__') throw new NotFhirJsonError('has a "__proto__" property');
    const value = src[key];
    if (typeof value === 'object') {
      if (value !== null) out[key] = walkNode(value, hooks, depth + 1, copy);
      else {
        // FHIR JSON has no nulls outside arrays (where they align primitive extensions): drop, tell.
        if (!copy) delete src[key];
        hooks.warn('null-removed', `property "${key}" was null (not allowed in FHIR JSON) and was left out`);
      }
    } else if (copy) out[key] = primitive(value);
    else primitive(value);
  }
  if (typeof out['reference'] === 'string' && isReferenceLike(out)) {
    const original = out['reference'] as string;
    applyResolution(out, original, hooks.resolve(original), hooks.warn);
  } else if (isAttachmentLike(out)) {
    const url = hooks.attachmentUrl(out['url'] as string);
    if (url !== undefined) out['url'] = url;
  }
  return out;
}

/**
 * Deep-copies a resource, rewriting every Reference and same-source Attachment URL on the way (one
 * pass), leaving out `null` properties (warning `null-removed`). The input is not changed. The walk
 * is also the JSON-level sanity check of `structure.ts`: only plain objects, arrays, strings, finite
 * numbers and booleans, at most 64 levels deep (so no cycles), no `__proto__` key.
 * @throws NotFhirJsonError on anything else
 */
export function copyRewritingReferences(resource: Readonly<Record<string, unknown>>, hooks: RewriteHooks): Record<string, unknown> {
  return walkNode(resource, hooks, 0, true) as Record<string, unknown>;
}

/**
 * {@link copyRewritingReferences} without the copy: rewrites the resource in place and returns it.
 * For callers that own the raw objects (parsed for this assembly only); saves the deep copy and
 * its garbage. A resource that fails the JSON checks may be left partly rewritten.
 * @throws NotFhirJsonError like {@link copyRewritingReferences}
 */
export function rewriteReferencesInPlace(resource: Record<string, unknown>, hooks: RewriteHooks): Record<string, unknown> {
  return walkNode(resource, hooks, 0, false) as Record<string, unknown>;
}

/** Hooks that resolve within one source's index and send warnings to `warn`. */
export function sourceHooks(index: SourceReferenceIndex, warn: RewriteHooks['warn']): RewriteHooks {
  return {
    resolve: (reference) => resolveReference(index, reference),
    attachmentUrl: (url) => {
      if (url.startsWith('#') || (!index.byUrl.has(url) && parseReference(url, index.baseUrl).kind !== 'literal')) return undefined;
      const res = resolveReference(index, url);
      if (res.status === 'resolved') return res.fullUrl;
      if (res.status === 'unresolved') warn('unresolved-attachment-url', `attachment URL "${url}": ${res.reason}; left as sent`);
      return undefined;
    },
    warn,
  };
}

/** Every `Reference.reference` string in a resource, in document order (contained ones included). */
export function collectReferences(node: unknown, out: string[] = []): string[] {
  if (typeof node !== 'object' || node === null) return out;
  if (isArray(node)) {
    for (const v of node) collectReferences(v, out);
    return out;
  }
  const obj = node as Record<string, unknown>;
  if (typeof obj['reference'] === 'string' && isReferenceLike(obj)) out.push(obj['reference']);
  for (const key in obj) collectReferences(obj[key], out);
  return out;
}

/**
 * Removes, in place, references to bundle fullUrls that are not kept (`urn:uuid:` only), as an
 * unresolved reference. A safety net for resources dropped after references were rewritten.
 * @returns the number of references removed
 */
export function pruneReferences(node: unknown, kept: (fullUrl: string) => boolean, warn: RewriteHooks['warn']): number {
  if (typeof node !== 'object' || node === null) return 0;
  let removed = 0;
  if (isArray(node)) {
    for (const v of node) removed += pruneReferences(v, kept, warn);
    return removed;
  }
  const obj = node as Record<string, unknown>;
  for (const key in obj) removed += pruneReferences(obj[key], kept, warn);
  const ref = obj['reference'];
  if (typeof ref === 'string' && ref.startsWith('urn:uuid:') && isReferenceLike(obj) && !kept(ref)) {
    applyResolution(obj, ref, { status: 'unresolved', code: 'unresolved-reference', reason: `${ref} was left out of the bundle` }, warn);
    removed++;
  }
  return removed;
}
