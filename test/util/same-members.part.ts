import { sameMembers } from '../../src/util/same-members';

it('compares lists of strings as multisets: order aside, each member as often', () => {
  expect(sameMembers([], [])).toBe(true);
  expect(sameMembers(['b', 'a'], ['a', 'b'])).toBe(true);
  expect(sameMembers(['a', 'a', 'b'], ['a', 'b', 'a'])).toBe(true);
  expect(sameMembers(['a', 'a', 'b'], ['a', 'b', 'b'])).toBe(false);
  expect(sameMembers(['a'], ['a', 'a'])).toBe(false);
  expect(sameMembers(['a'], ['b'])).toBe(false);
});
