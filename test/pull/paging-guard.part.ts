import { createHash } from 'node:crypto';
import { EMPTY_PAGES_TO_STOP, PagingGuard, PagingLoopError } from '../../src/pull/paging-guard';
import type { PageEntry } from '../../src/pull/page-resources';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A page's entries: `Observation/<id>` with the given ids (their bytes' hash from the id). */
const page = (...ids: string[]): PageEntry[] =>
  ids.map((id, index) => ({ index, type: 'Observation', id, versionId: '', sha256: sha256(`Observation/${id}`), offset: 0, length: 0 }));

describe('PagingGuard', () => {
  it('lets pages through while each brings something new, whatever the URLs', () => {
    const guard = new PagingGuard();
    guard.admit(1, null, page('a', 'b'));
    expect(guard.loopsBackTo('u2')).toBeUndefined();
    guard.admit(2, 'u2', page('b', 'c')); // one repeated (an _include, a shifted result set) and one new
    guard.admit(3, 'u3', []); // empty: a server that filters after paging
    guard.admit(4, 'u4', page('d'));
    expect(guard.loopsBackTo('u5')).toBeUndefined();
  });

  it('names the page a next link leads back to: the page itself or an earlier one', () => {
    const guard = new PagingGuard();
    guard.admit(1, null, page('a'));
    guard.admit(2, 'u2', page('b'));
    expect(guard.loopsBackTo('u2')).toBe(2);
    guard.admit(3, 'u3', page('c'));
    expect(guard.loopsBackTo('u2')).toBe(2);
    expect(guard.loopsBackTo(undefined)).toBeUndefined();
  });

  it('stops at a page holding only records earlier pages had, naming the pages', () => {
    const guard = new PagingGuard();
    guard.admit(1, null, page('a', 'b'));
    guard.admit(2, 'u2', page('c'));
    expect(() => guard.admit(3, 'u3', page('a', 'c'))).toThrow(
      new PagingLoopError("page 3 of this query held only records its earlier pages had: the server's paging does not advance, so the query stopped (what pages 1–2 held is kept)"),
    );
  });

  it('counts other bytes of a record (another version, an edit) as new', () => {
    const guard = new PagingGuard();
    guard.admit(1, null, page('a'));
    guard.admit(2, 'u2', [{ ...page('a')[0]!, versionId: '2', sha256: sha256('Observation/a, version 2') }]);
    expect(() => guard.admit(3, 'u3', [{ ...page('a')[0]!, versionId: '2', sha256: sha256('Observation/a, version 2') }])).toThrow(PagingLoopError);
  });

  it('stops at the last of EMPTY_PAGES_TO_STOP pages in a row with no records; fewer, and records again, go on', () => {
    const guard = new PagingGuard();
    guard.admit(1, null, page('a'));
    for (let n = 2; n < EMPTY_PAGES_TO_STOP + 1; n++) guard.admit(n, `u${n}`, []);
    guard.admit(EMPTY_PAGES_TO_STOP + 1, 'u-records', page('b')); // a server filtering after paging: records again
    for (let n = EMPTY_PAGES_TO_STOP + 2; n < 2 * EMPTY_PAGES_TO_STOP + 1; n++) guard.admit(n, `u${n}`, []);
    expect(() => guard.admit(2 * EMPTY_PAGES_TO_STOP + 1, 'u-last', [])).toThrow(
      new PagingLoopError(
        `pages ${EMPTY_PAGES_TO_STOP + 2}–${2 * EMPTY_PAGES_TO_STOP + 1} of this query held no records: the server's paging does not end, so the query stopped (what pages 1–${EMPTY_PAGES_TO_STOP + 1} held is kept)`,
      ),
    );
  });

  it('is permanent: asking again gets the same', () => {
    expect(new PagingLoopError('x').permanent).toBe(true);
  });
});
