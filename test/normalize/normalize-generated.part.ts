/**
 * The scaled generator's records (two care teams, the shapes `npm run bench:assemble` times at
 * 50,000 resources) normalize whole: every one kept, and the same whether copied or rewritten in place
 * (`consumeRaw`, as the assembly runs it). The time per resource is the benchmark's (its normalize
 * phase, beside `JSON.parse` of the same raw bytes), not a test's.
 */
import { createHash } from 'node:crypto';
import { generateCareTeamRecords } from '../../src/fixtures';
import { normalize, type NormalizeInput } from '../../src/normalize/normalize';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import type { RawInput } from '../../src/normalize/types';
import { fixtureIntake } from '../support/fixture-child';
import { sourceInfo } from './normalize-support';

const PER_TEAM = 1_000;

async function generated(): Promise<{ input: NormalizeInput; json: string[] }> {
  const raw: RawInput[] = [];
  const json: string[] = [];
  for (const team of ['a', 'b'] as const) {
    for await (const resource of generateCareTeamRecords({ team, targetResources: PER_TEAM })) {
      const text = JSON.stringify(resource);
      json.push(text);
      const parsed = JSON.parse(text) as Record<string, unknown>;
      raw.push({
        sourceId: `team-${team}`,
        resourceType: String(parsed['resourceType']),
        remoteId: String(parsed['id']),
        versionId: '1',
        fetchedAt: '2026-10-31T23:00:00Z',
        sha256: createHash('sha256').update(text).digest('hex'),
        resource: parsed,
      });
    }
  }
  return {
    input: {
      caseId: 'generated-case',
      intake: fixtureIntake(),
      sources: [sourceInfo('team-a', 'https://fhir.care-team-a.example.org/r4'), sourceInfo('team-b', 'https://ehr.care-team-b.example.org/fhir/r4')],
      raw,
      mappings: loadTerminologyMappings(),
    },
    json,
  };
}

it('keeps every generated resource, and normalizes in place (consumeRaw) to the same result as a copy', async () => {
  const { input, json } = await generated();
  const n = input.raw.length;
  expect(n).toBe(2 * PER_TEAM);
  const copied = normalize(input);
  expect(copied.leftOut).toEqual([]);
  expect(copied.resources).toHaveLength(n + 1);
  // The copy leaves its input as received.
  expect(input.raw.map((r) => JSON.stringify(r.resource))).toEqual(json);
  const owned: NormalizeInput = { ...input, raw: input.raw.map((r, i) => ({ ...r, resource: JSON.parse(json[i] ?? '{}') as Record<string, unknown> })), consumeRaw: true };
  expect(normalize(owned)).toEqual(copied);
});
