import { MAX_BODY_DEPTH, nestsDeeperThan } from '../../src/http/json-depth';
import { sampleIntake } from '../support/intake';

const nested = (levels: number): unknown => JSON.parse(`${'{"a":['.repeat(levels)}"x"${']}'.repeat(levels)}`);

describe('nestsDeeperThan', () => {
  it('counts objects and arrays as one level each, without recursion', () => {
    expect(nestsDeeperThan('x', 0)).toBe(false);
    expect(nestsDeeperThan({}, 1)).toBe(false);
    expect(nestsDeeperThan({ a: [] }, 1)).toBe(true);
    expect(nestsDeeperThan(nested(16), 32)).toBe(false); // 16 × (object + array)
    expect(nestsDeeperThan(nested(17), 32)).toBe(true);
    expect(nestsDeeperThan(nested(100_000), MAX_BODY_DEPTH)).toBe(true);
  });

  it('leaves every real request body alone', () => {
    expect(nestsDeeperThan(sampleIntake(), MAX_BODY_DEPTH)).toBe(false);
  });
});
