import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import type { Resource as MedplumResource } from '@medplum/fhirtypes';
import { restoreIndexedDefinitions, saveIndexedDefinitions, snapshotFile } from '../../src/sandbox/indexed-definitions';
import { definitionsAsText as asText, INVALID_RESOURCES, issuesUnder as issues, type MedplumCore } from '../support/fhir-validation';
import { JORGE, readBundle } from '../support/synthea';
import { tempDir } from '../support/temp-dir';

type FhirDefinitions = typeof import('../../src/sandbox/fhir-definitions');

/** A fresh `@medplum/core` (its own maps) and a fresh `fhir-definitions` bound to it. */
function freshModules(): { core: MedplumCore; definitions: FhirDefinitions } {
  let modules: { core: MedplumCore; definitions: FhirDefinitions } | undefined;
  jest.isolateModules(() => {
    modules = {
      core: require('@medplum/core') as MedplumCore,
      definitions: require('../../src/sandbox/fhir-definitions') as FhirDefinitions,
    };
  });
  if (!modules) throw new Error('modules not loaded');
  return modules;
}

/** Searches over the fixture's Observations, by token, by a narrowed expression and by date. */
const SEARCHES: readonly string[] = ['Observation?category=vital-signs', 'Observation?code=http://loinc.org|8302-2', 'Observation?date=ge2015-01-01', 'Observation?status=final'];

describe('indexed FHIR definitions kept on disk', () => {
  const dir = tempDir('indexed-definitions');
  const indexed = freshModules();
  const resourceTypes = indexed.definitions.indexFhirDefinitions();
  const file = path.join(dir, 'snapshot.bin');
  saveIndexedDefinitions(indexed.core, resourceTypes, file);
  const restored = freshModules();
  const restoredTypes = restoreIndexedDefinitions(restored.core, file);

  it('read back into a fresh @medplum/core, are the type schemas and search parameters that indexing made', () => {
    expect(restoredTypes).toEqual(resourceTypes);
    expect(resourceTypes).toContain('Observation');
    const types = asText(indexed.core.getAllDataTypes());
    expect(types.length).toBeGreaterThan(1_000_000);
    expect(asText(restored.core.getAllDataTypes())).toBe(types);
    const searchParameters = asText(indexed.core.globalSchema.types);
    expect(searchParameters).toContain('"patient"');
    expect(asText(restored.core.globalSchema.types)).toBe(searchParameters);
  });

  it('validate real resources and broken ones, and match searches, as the indexed ones do', () => {
    const real = (readBundle(JORGE).entry ?? []).map((e) => e.resource);
    expect(real.length).toBeGreaterThan(100);
    for (const resource of [...real, ...INVALID_RESOURCES]) expect(issues(restored.core, resource)).toEqual(issues(indexed.core, resource));
    for (const resource of INVALID_RESOURCES) expect(issues(restored.core, resource).some((i) => i.severity === 'error')).toBe(true);
    const observations = real.filter((r) => r?.resourceType === 'Observation') as MedplumResource[];
    for (const query of SEARCHES) {
      const matched = observations.filter((r) => restored.core.matchesSearchRequest(r, restored.core.parseSearchRequest(query)));
      expect({ query, matched: matched.length }).toEqual({ query, matched: observations.filter((r) => indexed.core.matchesSearchRequest(r, indexed.core.parseSearchRequest(query))).length });
      expect({ query, some: matched.length > 0 }).toEqual({ query, some: true });
    }
  });

  it('a damaged or foreign snapshot is not read, and leaves @medplum/core as it was', () => {
    const damaged = path.join(dir, 'damaged.bin');
    fs.writeFileSync(damaged, fs.readFileSync(file).subarray(0, 1000));
    const foreign = path.join(dir, 'foreign.bin');
    fs.writeFileSync(foreign, v8.serialize({ format: 0, dataTypes: { Patient: {} }, schemaTypes: { Patient: {} }, resourceTypes: ['Patient'] }));
    const fresh = freshModules();
    const before = asText(fresh.core.getAllDataTypes());
    expect(restoreIndexedDefinitions(fresh.core, damaged)).toBeUndefined();
    expect(restoreIndexedDefinitions(fresh.core, foreign)).toBeUndefined();
    expect(restoreIndexedDefinitions(fresh.core, path.join(dir, 'missing.bin'))).toBeUndefined();
    expect(asText(fresh.core.getAllDataTypes())).toBe(before);
    expect(fresh.core.globalSchema.types).toEqual({});
  });

  it('is named by the files it was made from: another version of one is another snapshot', () => {
    const source = path.join(dir, 'search-parameters.json');
    fs.writeFileSync(source, '{}');
    const first = snapshotFile([source], dir);
    expect(snapshotFile([source], dir)).toBe(first);
    fs.writeFileSync(source, '{"entry":[]}');
    expect(snapshotFile([source], dir)).not.toBe(first);
    expect(path.dirname(first ?? '')).toBe(dir);
    expect(snapshotFile([path.join(dir, 'missing.json')], dir)).toBeUndefined();
  });
});
