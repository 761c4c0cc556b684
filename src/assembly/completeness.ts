import type { DedupeResult, NormalizeResult, RawInput, SourceInfo, SourceServerMessage } from '../normalize/types';
import { addToAttachmentTally, emptyAttachmentTally, type AttachmentTally } from '../pull/attachment-tally';
import type { FetchedAttachment } from './assembly-input';

export interface TypeCompleteness {
  readonly resourceType: string;
  /** Raw rows (every version) pulled from the source. */
  readonly pulled: number;
  readonly inBundle: number;
  readonly merged: { remoteId: string; into: string; rule: string }[];
  readonly leftOut: { remoteId: string; versionId: string; reason: string }[];
  readonly attachments: AttachmentTally;
  readonly unmappedCodes: number;
  /** pulled = inBundle + merged + leftOut. */
  readonly balanced: boolean;
}

export interface SourceCompleteness {
  readonly sourceId: string;
  readonly name: string;
  readonly baseUrl: string;
  readonly resourceTypes: TypeCompleteness[];
  /** What the source's server said about its searches besides the results (e.g. results truncated). */
  readonly serverMessages: readonly SourceServerMessage[];
}

export interface CompletenessReport {
  readonly sources: SourceCompleteness[];
  readonly totals: { pulled: number; inBundle: number; merged: number; leftOut: number; balanced: boolean };
  readonly warnings: { code: string; message: string }[];
  readonly mappedCodings: number;
}

/** Raw rows pulled per source id, then per resource type. */
export type PulledCounts = ReadonlyMap<string, ReadonlyMap<string, number>>;

/**
 * Counts raw rows per source and type (taken before the raw objects are normalized in place and
 * dropped). Nested maps: no key string is built per row (a case has 50,000 rows and a handful of
 * sources and types).
 */
export function countPulled(raw: readonly Pick<RawInput, 'sourceId' | 'resourceType'>[]): PulledCounts {
  const counts = new Map<string, Map<string, number>>();
  for (const r of raw) {
    let byType = counts.get(r.sourceId);
    if (!byType) counts.set(r.sourceId, (byType = new Map()));
    byType.set(r.resourceType, (byType.get(r.resourceType) ?? 0) + 1);
  }
  return counts;
}

/** The source id and resource type of a raw key (`sourceId|resourceType|remoteId|versionId`). */
function sourceAndType(key: string): readonly [string, string] {
  const bar = key.indexOf('|');
  if (bar < 0) return [key, ''];
  const next = key.indexOf('|', bar + 1);
  return [key.slice(0, bar), next < 0 ? key.slice(bar + 1) : key.slice(bar + 1, next)];
}

/**
 * Accounts for every pulled resource: in the bundle (as itself or as a merge survivor), merged into
 * another, or left out with the reason. `balanced` is checked per source and type.
 */
export function completenessReport(
  sources: readonly SourceInfo[],
  pulled: PulledCounts,
  normalized: NormalizeResult,
  deduped: DedupeResult,
  attachments: readonly FetchedAttachment[],
): CompletenessReport {
  const bucket = new Map<string, { pulled: number; inBundle: number; merged: TypeCompleteness['merged']; leftOut: TypeCompleteness['leftOut'] }>();
  // Per source, then per type: the per-resource loops below build no key string.
  const bySource = new Map<string, Map<string, { pulled: number; inBundle: number; merged: TypeCompleteness['merged']; leftOut: TypeCompleteness['leftOut'] }>>();
  const at = (sourceId: string, type: string) => {
    let byType = bySource.get(sourceId);
    if (!byType) bySource.set(sourceId, (byType = new Map()));
    let b = byType.get(type);
    if (!b) {
      b = { pulled: 0, inBundle: 0, merged: [], leftOut: [] };
      byType.set(type, b);
      bucket.set(`${sourceId}|${type}`, b);
    }
    return b;
  };
  for (const [sourceId, byType] of pulled) for (const [type, n] of byType) at(sourceId, type).pulled += n;
  for (const l of normalized.leftOut) at(l.sourceId, l.resourceType).leftOut.push({ remoteId: l.remoteId, versionId: l.versionId, reason: l.reason });
  const mergedKeys = new Set<string>();
  for (const m of deduped.merges) {
    for (const key of m.mergedKeys) {
      mergedKeys.add(key);
      const [sourceId = '', type = '', remoteId = ''] = key.split('|');
      at(sourceId, type).merged.push({ remoteId, into: m.survivor, rule: m.rule });
    }
  }
  const sourceIds = new Set(sources.map((s) => s.sourceId));
  for (const r of deduped.resources) {
    const [sourceId, type] = sourceAndType(r.key);
    // The case Patient and other service-made resources belong to no source.
    if (!sourceIds.has(sourceId) || mergedKeys.has(r.key)) continue;
    at(sourceId, type).inBundle += 1;
  }
  const unmapped = new Map<string, number>();
  for (const u of normalized.unmappedCodes) unmapped.set(`${u.sourceId}|${u.resourceType}`, (unmapped.get(`${u.sourceId}|${u.resourceType}`) ?? 0) + u.count);
  const attachmentCounts = new Map<string, TypeCompleteness['attachments']>();
  for (const a of attachments) {
    const k = `${a.sourceId}|${a.resourceType}`;
    const c = attachmentCounts.get(k) ?? emptyAttachmentTally();
    addToAttachmentTally(c, a.state, a.integrity);
    attachmentCounts.set(k, c);
  }
  let balancedAll = true;
  const totals = { pulled: 0, inBundle: 0, merged: 0, leftOut: 0 };
  const report: SourceCompleteness[] = sources.map((s) => ({
    sourceId: s.sourceId,
    name: s.name,
    baseUrl: s.baseUrl,
    resourceTypes: [...bucket.entries()]
      .filter(([k]) => k.startsWith(`${s.sourceId}|`))
      .map(([k, b]) => {
        const type = k.slice(s.sourceId.length + 1);
        const balanced = b.pulled === b.inBundle + b.merged.length + b.leftOut.length;
        balancedAll &&= balanced;
        totals.pulled += b.pulled;
        totals.inBundle += b.inBundle;
        totals.merged += b.merged.length;
        totals.leftOut += b.leftOut.length;
        return {
          resourceType: type,
          pulled: b.pulled,
          inBundle: b.inBundle,
          merged: b.merged,
          leftOut: b.leftOut,
          attachments: attachmentCounts.get(k) ?? emptyAttachmentTally(),
          unmappedCodes: unmapped.get(k) ?? 0,
          balanced,
        };
      })
      .sort((a, b) => (a.resourceType < b.resourceType ? -1 : 1)),
    serverMessages: s.serverMessages ?? [],
  }));
  return {
    sources: report,
    totals: { ...totals, balanced: balancedAll },
    warnings: normalized.warnings.map((w) => ({ code: w.code, message: w.message })),
    mappedCodings: normalized.mappedCodings,
  };
}
