/**
 * End to end on the committed fixtures with the real normalizer: care team A and care team
 * B as two sources → normalize → dedupe → provenance → composition → document bundle.
 * The done-line: the shared lab result, document, imaging study and differently coded
 * condition each appear once, with a Provenance naming both sources; near-misses stay
 * separate; the bundle is closed and validates with zero errors.
 */
import { createHash } from 'node:crypto';
import type { Bundle, FhirResource, Provenance } from 'fhir/r4';
import { buildDocumentBundle, unresolvedReferences } from '../../src/normalize/bundle';
import { buildComposition } from '../../src/normalize/composition';
import { dedupe } from '../../src/normalize/dedupe/index';
import { normalize } from '../../src/normalize/normalize';
import { buildProvenances } from '../../src/normalize/provenance';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import type { NormalizeResult, RawInput, SourceInfo } from '../../src/normalize/types';
import { loadManifest } from '../fixtures/helpers';
import { fixtureIntake } from '../support/fixture-child';
import { CASE_ID, fixtureResources, fixtureStory, OPTIONS, SOURCE_A, SOURCE_B } from './assembly-support';
import { bundleValidationErrors } from '../support/fhir-validation';

const manifest = loadManifest();

function raw(source: SourceInfo, resources: readonly FhirResource[]): RawInput[] {
  return resources.map((r) => {
    const json = JSON.stringify(r);
    return {
      sourceId: source.sourceId, resourceType: r.resourceType, remoteId: r.id ?? '', versionId: r.meta?.versionId ?? '',
      fetchedAt: source.lastFetchedAt ?? OPTIONS.timestamp, sha256: createHash('sha256').update(json).digest('hex'),
      resource: JSON.parse(json) as Record<string, unknown>,
    };
  });
}

describe('fixture child end to end (real normalizer)', () => {
  let normalized: NormalizeResult;
  let bundle: Bundle;

  beforeAll(() => {
    const sources = [SOURCE_A, SOURCE_B];
    normalized = normalize({
      caseId: CASE_ID, intake: fixtureIntake(), sources, mappings: loadTerminologyMappings(),
      raw: [...raw(SOURCE_A, fixtureResources('care-team-a')), ...raw(SOURCE_B, fixtureResources('care-team-b'))],
    });
    const deduped = dedupe(normalized.resources);
    const provenances = buildProvenances({ resources: deduped.resources, merges: deduped.merges, sources, options: OPTIONS });
    const composition = buildComposition({
      subject: normalized.resources[0]?.fullUrl ?? '', resources: deduped.resources, options: OPTIONS, story: fixtureStory(), sources, merges: deduped.merges,
    });
    bundle = buildDocumentBundle({ composition, resources: deduped.resources, provenances, options: OPTIONS });
  });

  const keyAt = (source: SourceInfo, ref: string): string => `${source.sourceId}|${ref.replace('/', '|')}`;
  const urlOf = (key: string): string | undefined => normalized.resources.find((r) => r.key === key)?.fullUrl;

  it('merges exactly the manifest duplicates; each appears once with a Provenance naming both sources', () => {
    const entries = (bundle.entry ?? []).map((e) => e.fullUrl ?? '');
    const provenances = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is Provenance => r?.resourceType === 'Provenance');
    const merges = provenances.filter((p) => p.activity?.coding?.[0]?.code === 'merge');
    expect(merges).toHaveLength(manifest.overlaps.duplicates.length);
    for (const d of manifest.overlaps.duplicates) {
      const ua = urlOf(keyAt(SOURCE_A, d.a));
      const ub = urlOf(keyAt(SOURCE_B, d.b));
      expect({ rule: d.rule, present: [ua, ub].filter((u) => u !== undefined && entries.includes(u)).length }).toEqual({ rule: d.rule, present: 1 });
      const p = merges.find((m) => m.target.some((t) => t.reference === ua || t.reference === ub));
      const named = (p?.entity ?? []).map((e) => e.what.identifier?.value);
      expect(named).toEqual(expect.arrayContaining([`${SOURCE_A.baseUrl}/${d.a}`, `${SOURCE_B.baseUrl}/${d.b}`]));
    }
  });

  it('keeps every near-miss apart', () => {
    const entries = new Set((bundle.entry ?? []).map((e) => e.fullUrl));
    for (const n of manifest.overlaps.nearMisses) {
      const ua = urlOf(keyAt(SOURCE_A, n.a));
      expect({ rule: n.rule, a: ua !== undefined && entries.has(ua) }).toEqual({ rule: n.rule, a: true });
    }
    // Near-misses on B's side that are not duplicates of something else stay too.
    const bOnly = manifest.overlaps.nearMisses.filter((n) => !manifest.overlaps.duplicates.some((d) => d.b === n.b));
    for (const n of bOnly) expect(entries.has(urlOf(keyAt(SOURCE_B, n.b)))).toBe(true);
  });

  it('is closed and validates with zero errors', () => {
    expect(unresolvedReferences(bundle)).toEqual([]);
    expect(bundleValidationErrors(bundle)).toEqual([]);
  });
});
