import { addServerMessages, MAX_MESSAGES, MAX_TEXT, serverIssuesOf } from '../../src/pull/server-messages';

/** What a server says about a search (its outcome entries), kept per query: distinct, counted by page, bounded. */
it('reads each issue with the best text the server gave', () => {
  expect(
    serverIssuesOf({
      resourceType: 'OperationOutcome',
      issue: [
        { severity: 'warning', code: 'incomplete', details: { text: 'Results truncated' }, diagnostics: 'internal detail' },
        { severity: 'information', code: 'not-supported', diagnostics: 'Parameter category ignored' },
        { severity: 'error', code: 'security', details: { coding: [{ system: 'urn:ehr', code: '4118', display: 'Some results withheld' }] } },
        { code: 'processing' },
        'not an issue',
      ],
    }),
  ).toEqual([
    { severity: 'warning', code: 'incomplete', text: 'Results truncated' },
    { severity: 'information', code: 'not-supported', text: 'Parameter category ignored' },
    { severity: 'error', code: 'security', text: 'Some results withheld' },
    { severity: 'unknown', code: 'processing', text: '(no text)' },
  ]);
  expect(serverIssuesOf({ resourceType: 'Observation' })).toEqual([]);
  expect(serverIssuesOf({ resourceType: 'OperationOutcome', issue: [{ severity: 'warning', code: 'x', diagnostics: 'y'.repeat(MAX_TEXT + 50) }] })[0]?.text).toHaveLength(MAX_TEXT);
});

it('counts each distinct message once per page, and keeps at most MAX_MESSAGES', () => {
  const cut = { severity: 'warning', code: 'incomplete', text: 'Results truncated' };
  let known = addServerMessages([], [cut, cut]);
  expect(known).toEqual([{ ...cut, pages: 1 }]);
  known = addServerMessages(known, [cut, { severity: 'information', code: 'x', text: 'y' }]);
  expect(known).toEqual([{ ...cut, pages: 2 }, { severity: 'information', code: 'x', text: 'y', pages: 1 }]);
  expect(addServerMessages(known, [])).toBe(known);
  const many = Array.from({ length: MAX_MESSAGES + 5 }, (_, i) => ({ severity: 'warning', code: 'c', text: `message ${i}` }));
  const bounded = addServerMessages(known, many);
  expect(bounded).toHaveLength(MAX_MESSAGES);
  expect(bounded[0]).toEqual({ ...cut, pages: 2 });
});
