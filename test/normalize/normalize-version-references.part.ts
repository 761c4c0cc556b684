/**
 * A versioned reference to another version than the kept one is warned `other-version-reference`
 * the same way whether the normalizer copies the raw resources or rewrites them in place
 * (`consumeRaw`, as production does), and whatever the input order: the kept resource's
 * `meta.versionId` is read when the reference targets are collected, before `applyOrigin` drops it
 * from a target normalized (in place) earlier.
 * @see https://hl7.org/fhir/R4/references.html#versions
 */
import { normalize } from '../../src/normalize/normalize';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import type { NormalizeResult, RawInput } from '../../src/normalize/types';
import { fixtureIntake } from '../support/fixture-child';
import { FETCHED_AT, sourceInfo } from './normalize-support';

const BASE = 'https://ehr.example.org/fhir/r4';
const LOINC = 'http://loinc.org';

function rawOf(resource: Record<string, unknown>, versionId: string): RawInput {
  const id = String(resource['id']);
  return { sourceId: 'team-a', resourceType: String(resource['resourceType']), remoteId: id, versionId, fetchedAt: FETCHED_AT, sha256: `${id}-${versionId}`, resource };
}

/** A panel (kept at version 4) and a result naming version 2 of it and version 4 of it; fresh objects each time. */
function raws(): RawInput[] {
  const panel = {
    resourceType: 'Observation', id: 'panel-1', meta: { versionId: '4', lastUpdated: '2026-04-14T09:00:00Z' }, status: 'final',
    code: { coding: [{ system: LOINC, code: '24323-8' }] }, subject: { reference: 'Patient/p1' }, effectiveDateTime: '2026-04-14T08:00:00Z',
  };
  const member = {
    resourceType: 'Observation', id: 'k-1', meta: { versionId: '1' }, status: 'final',
    code: { coding: [{ system: LOINC, code: '2823-3' }] }, subject: { reference: 'Patient/p1' }, effectiveDateTime: '2026-04-14T08:00:00Z',
    valueQuantity: { value: 4.1, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
    derivedFrom: [{ reference: 'Observation/panel-1/_history/2' }, { reference: `${BASE}/Observation/panel-1/_history/4` }],
  };
  const patient = { resourceType: 'Patient', id: 'p1', meta: { versionId: '9' }, name: [{ family: 'Halvorsen', given: ['Nora'] }], birthDate: '2017-04-22' };
  return [rawOf(patient, '9'), rawOf(panel, '4'), rawOf(member, '1')];
}

function run(order: 'target-first' | 'target-last', consumeRaw: boolean): NormalizeResult {
  const list = raws();
  const raw = order === 'target-first' ? list : [...list].reverse();
  return normalize({
    caseId: 'case-versions', intake: fixtureIntake(), sources: [sourceInfo('team-a', BASE, { remotePatientId: 'p1' })], raw,
    mappings: loadTerminologyMappings(), consumeRaw,
  });
}

describe('other-version-reference does not depend on consumeRaw or on the input order', () => {
  it('warns once for the reference to version 2 (the bundle holds 4), in copy mode and in place, in either order', () => {
    const results = [false, true].flatMap((consumeRaw) => (['target-first', 'target-last'] as const).map((order) => ({ consumeRaw, order, result: run(order, consumeRaw) })));
    for (const { result } of results) {
      const versionWarnings = result.warnings.filter((w) => w.code === 'other-version-reference');
      expect(versionWarnings).toEqual([
        expect.objectContaining({ key: 'team-a|Observation|k-1', message: expect.stringContaining('names version 2 of Observation/panel-1; the bundle holds version 4') as unknown as string }),
      ]);
      // versionId still dropped from the output (origin.ts).
      for (const r of result.resources) expect(r.resource.meta?.versionId).toBeUndefined();
    }
    const [first, ...rest] = results.map((r) => r.result);
    for (const other of rest) expect(other).toEqual(first);
  });
});
