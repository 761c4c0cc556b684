/**
 * De-duplication at scale: 20,000 resources (10,000 per care team from the scaled
 * generator, whose shared event groups are identical at both teams): the shared duplicates are
 * found, and the work grows about linearly, asserted by counting pair comparisons rather than
 * timing. The time per resource is `npm run bench:assemble`'s (its dedupe phase).
 */
import type { FhirResource } from 'fhir/r4';
import { generateCareTeamRecords } from '../../src/fixtures/index';
import { DEDUPE_RULES, dedupe, runRules, type DedupeRule } from '../../src/normalize/dedupe/index';
import type { NormalizedResource } from '../../src/normalize/types';
import { fakeNormalize, SOURCE_A, SOURCE_B } from './assembly-support';

async function collect(team: 'a' | 'b', targetResources: number): Promise<FhirResource[]> {
  const out: FhirResource[] = [];
  for await (const r of generateCareTeamRecords({ team, targetResources })) out.push(r);
  return out;
}

async function caseOf(perTeam: number): Promise<NormalizedResource[]> {
  const [a, b] = await Promise.all([collect('a', perTeam), collect('b', perTeam)]);
  return fakeNormalize([{ info: SOURCE_A, resources: a }, { info: SOURCE_B, resources: b }]);
}

describe('dedupe at scale', () => {
  let full: NormalizedResource[] = [];
  let half: NormalizedResource[] = [];

  beforeAll(async () => {
    full = await caseOf(10_000);
    half = await caseOf(5_000);
  }, 180_000);

  it('finds the shared duplicates among 20,000 resources', () => {
    expect(dedupe(full).merges.length).toBeGreaterThan(1500);
  });

  it('grows about linearly: twice the resources take about twice the pair comparisons', () => {
    // Counted, not timed (a timing ratio flakes on a shared 2-core machine): every rule's pair test
    // is wrapped, and the merges must be the same as without the wrapper.
    const comparisons = (resources: readonly NormalizedResource[]): number => {
      let n = 0;
      const counted: DedupeRule[] = DEDUPE_RULES.map((rule) => ({
        ...rule,
        blocking: (rs, context) => {
          const spec = rule.blocking(rs, context);
          // Keep the rule's cluster state and claims: without them the wrapped rules merge what the rules refuse.
          return { ...spec, same: (a, b) => ++n > 0 && (spec.same?.(a, b) ?? true) };
        },
      }));
      expect(runRules(resources, counted).merges).toEqual(dedupe(resources).merges);
      return n;
    };
    const [large, small] = [comparisons(full), comparisons(half)];
    expect(small).toBeGreaterThan(800);
    expect(large / small).toBeLessThan(2.5); // quadratic would be ~4
  }, 120_000);
});
