/**
 * Several stored versions of one remote resource: keep the latest, account for the others.
 *
 * The raw store keeps every version a source sent (keyed by version id), so one remote resource may
 * arrive several times. The bundle holds one: the newest by `meta.lastUpdated` (when the server says
 * it last changed), then by when we fetched it, then by `meta.versionId` (numerically when both are
 * integers), then by content hash and source id, so the choice is a total order and independent of
 * input order. Older versions become `LeftOut` with reason `superseded by version …`.
 *
 * The latest version is chosen before structure checks: when it is malformed, it is left out with
 * its reason rather than silently replaced by stale data from an older version.
 * @see https://hl7.org/fhir/R4/resource.html#Meta (versionId, lastUpdated)
 * @see https://hl7.org/fhir/R4/http.html#versioning
 * @packageDocumentation
 */
import { rawKey, type LeftOut, type RawInput } from './types';

/** `meta.lastUpdated` of a raw resource as epoch ms, `undefined` when absent or not a date. */
export function lastUpdatedOf(raw: RawInput): number | undefined {
  const meta = raw.resource['meta'];
  if (typeof meta !== 'object' || meta === null) return undefined;
  const value = (meta as Record<string, unknown>)['lastUpdated'];
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

function epoch(value: string): number {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareVersionIds(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    const byLength = a.replace(/^0+/, '').length - b.replace(/^0+/, '').length;
    return byLength !== 0 ? byLength : compareStrings(a.replace(/^0+/, ''), b.replace(/^0+/, ''));
  }
  return compareStrings(a, b);
}

/** Positive when `a` is newer than `b`, negative when older, 0 only for the same stored row. */
export function compareVersions(a: RawInput, b: RawInput): number {
  const la = lastUpdatedOf(a) ?? Number.NEGATIVE_INFINITY;
  const lb = lastUpdatedOf(b) ?? Number.NEGATIVE_INFINITY;
  if (la !== lb) return la > lb ? 1 : -1;
  const fa = epoch(a.fetchedAt);
  const fb = epoch(b.fetchedAt);
  if (fa !== fb) return fa > fb ? 1 : -1;
  return compareVersionIds(a.versionId, b.versionId) || compareStrings(a.sha256, b.sha256) || compareStrings(a.sourceId, b.sourceId);
}

/** A superseded version, as a `LeftOut`. */
export function supersededLeftOut(old: RawInput, latest: RawInput): LeftOut {
  const lastUpdated = lastUpdatedOf(latest);
  const where = latest.sourceId === old.sourceId ? '' : ` from source ${latest.sourceId} (same server)`;
  const when = lastUpdated === undefined ? `fetched ${latest.fetchedAt}` : `lastUpdated ${new Date(lastUpdated).toISOString()}`;
  return {
    key: rawKey(old),
    sourceId: old.sourceId,
    resourceType: old.resourceType,
    remoteId: old.remoteId,
    versionId: old.versionId,
    reason: `superseded by version ${latest.versionId || '(none)'}${where}, ${when}`,
  };
}

/**
 * Groups items by `identity` (one remote resource) and keeps the latest version of each.
 * @returns the kept items (in first-seen order of their identity) and a `LeftOut` per older version
 */
export function selectLatestVersions<T extends { readonly raw: RawInput }>(
  items: readonly T[],
  identity: (item: T) => string,
): { latest: T[]; superseded: LeftOut[] } {
  const best = new Map<string, T>();
  const losers: T[] = [];
  for (const item of items) {
    const id = identity(item);
    const current = best.get(id);
    if (current === undefined) best.set(id, item);
    else if (compareVersions(item.raw, current.raw) > 0) {
      losers.push(current);
      best.set(id, item);
    } else losers.push(item);
  }
  const superseded = losers.map((item) => supersededLeftOut(item.raw, (best.get(identity(item)) ?? item).raw));
  return { latest: [...best.values()], superseded };
}
