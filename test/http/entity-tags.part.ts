import { listedTags } from '../../src/http/entity-tags';
import { ifMatchAllows, revisionTag } from '../../src/http/if-match';

describe('entity-tag lists', () => {
  it('lists the opaque parts of the tags, weak or strong; * as such; malformed members left out', () => {
    expect(listedTags(undefined)).toBeUndefined();
    expect(listedTags(' * ')).toBe('*');
    expect(listedTags('W/"3", "4" ,x, W/5, "a,b"')).toEqual(['3', '4', 'a,b']);
    expect(listedTags(['"1"', 'W/"2"'])).toEqual(['1', '2']);
  });
});

describe('If-Match over a revision', () => {
  it('allows without the header, * over an existing resource, and a list naming the current revision', () => {
    expect(revisionTag(7)).toBe('W/"7"');
    expect(ifMatchAllows(undefined, 3)).toBe(true);
    expect(ifMatchAllows(undefined, undefined)).toBe(true);
    expect(ifMatchAllows('*', 3)).toBe(true);
    expect(ifMatchAllows('"2", W/"3"', 3)).toBe(true);
    expect(ifMatchAllows('"3"', 3)).toBe(true);
  });

  it('refuses * over nothing, another revision, a prefix of it, an unquoted one', () => {
    expect(ifMatchAllows('*', undefined)).toBe(false);
    expect(ifMatchAllows('W/"2"', 3)).toBe(false);
    expect(ifMatchAllows('W/"3"', 33)).toBe(false);
    expect(ifMatchAllows('3', 3)).toBe(false);
    expect(ifMatchAllows('W/"3"', undefined)).toBe(false);
  });
});
