import type { Bundle } from 'fhir/r4';
import { expectedMatchesOf } from '../../src/pull/expected-matches';

const page = (total: unknown) => ({ envelope: { resourceType: 'Bundle', type: 'searchset', total } as unknown as Bundle });

it('reads Bundle.total when it is a count, nothing otherwise', () => {
  expect([0, 1, 40_000, 2_147_483_647].map((t) => expectedMatchesOf(page(t)))).toEqual([0, 1, 40_000, 2_147_483_647]);
  for (const nonsense of [undefined, -1, 1.5, '12', null, 2_147_483_648, Number.NaN]) {
    expect({ nonsense, read: expectedMatchesOf(page(nonsense)) }).toEqual({ nonsense, read: undefined });
  }
});
