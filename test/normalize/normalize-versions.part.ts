import type { RawInput } from '../../src/normalize/types';
import { compareVersions, lastUpdatedOf, selectLatestVersions } from '../../src/normalize/versions';

function version(versionId: string, lastUpdated: string | undefined, fetchedAt = '2026-01-01T00:00:00Z', sha256 = versionId): { raw: RawInput } {
  return {
    raw: {
      sourceId: 's', resourceType: 'Observation', remoteId: 'o1', versionId, fetchedAt, sha256,
      resource: { resourceType: 'Observation', id: 'o1', ...(lastUpdated ? { meta: { versionId, lastUpdated } } : {}) },
    },
  };
}

describe('version selection', () => {
  it('keeps the newest by meta.lastUpdated (offsets compared as instants)', () => {
    const v1 = version('1', '2026-01-01T10:00:00Z');
    const v2 = version('2', '2026-01-01T09:30:00-02:00'); // 11:30Z: newer
    const v3 = version('3', '2025-12-31T23:00:00Z');
    const { latest, superseded } = selectLatestVersions([v1, v2, v3], () => 'o1');
    expect(latest).toEqual([v2]);
    expect(superseded.map((l) => [l.versionId, l.reason])).toEqual([
      ['1', 'superseded by version 2, lastUpdated 2026-01-01T11:30:00.000Z'],
      ['3', 'superseded by version 2, lastUpdated 2026-01-01T11:30:00.000Z'],
    ]);
  });

  it('falls back to fetchedAt, then to numeric version ids', () => {
    const early = version('5', undefined, '2026-01-01T00:00:00Z');
    const late = version('4', undefined, '2026-02-01T00:00:00Z');
    expect(selectLatestVersions([late, early], () => 'k').latest).toEqual([late]);
    const v9 = version('9', '2026-01-01T00:00:00Z');
    const v10 = version('10', '2026-01-01T00:00:00Z');
    expect(selectLatestVersions([v10, v9], () => 'k').latest).toEqual([v10]);
    expect(compareVersions(v10.raw, v9.raw)).toBeGreaterThan(0);
  });

  it('does not depend on input order', () => {
    const all = [version('1', '2026-01-01T00:00:00Z'), version('2', '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'), version('3', undefined)];
    const a = selectLatestVersions(all, () => 'k');
    const b = selectLatestVersions([...all].reverse(), () => 'k');
    expect(a.latest).toEqual(b.latest);
    expect(new Set(a.superseded.map((l) => l.versionId))).toEqual(new Set(b.superseded.map((l) => l.versionId)));
  });

  it('reads meta.lastUpdated defensively', () => {
    expect(lastUpdatedOf(version('1', 'not a date').raw)).toBeUndefined();
    expect(lastUpdatedOf(version('1', undefined).raw)).toBeUndefined();
  });
});
