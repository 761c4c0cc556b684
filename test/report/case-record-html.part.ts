import type { Bundle } from 'fhir/r4';
import { caseRecordHtml } from '../../src/report/case-record-html';

const XHTML = 'http://www.w3.org/1999/xhtml';

function bundle(sections: { title: string; div: string; entries?: number }[]): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'document',
    identifier: { system: 'urn:test', value: 'bundle-7' },
    entry: [
      {
        fullUrl: 'urn:uuid:c',
        resource: {
          resourceType: 'Composition',
          status: 'final',
          type: { text: 'summary' },
          date: '2027-03-02T23:30:00Z',
          author: [{ display: 'x' }],
          title: 'Second opinion case summary',
          subject: { reference: 'urn:uuid:p' },
          section: sections.map((s) => ({
            title: s.title,
            text: { status: 'generated', div: s.div },
            entry: Array.from({ length: s.entries ?? 0 }, (_, i) => ({ reference: `urn:uuid:e${i}` })),
          })),
        },
      },
      { fullUrl: 'urn:uuid:p', resource: { resourceType: 'Patient', name: [{ given: ['Zoë', 'Ann'], family: "O'Brien <Jr>" }], birthDate: '2017-04-22', gender: 'female' } },
    ],
  };
}

const page = (b: Bundle) => caseRecordHtml({ caseId: 'case-1', version: 3, assembledAt: new Date('2027-03-02T23:30:00Z'), bundle: b, timeZone: 'America/Denver' }).join('');

it('renders the Composition as FHIR documents are presented: title, subject, each section in order with its narrative and count', () => {
  const html = page(bundle([
    { title: 'Problems', div: `<div xmlns="${XHTML}"><ul><li>Type 1 diabetes — onset 2021-05-01</li></ul></div>`, entries: 1 },
    { title: 'Results', div: `<div xmlns="${XHTML}"><ul><li>HbA1c 7.9 %</li><li>TSH 2.1 mIU/L</li></ul></div>`, entries: 2 },
    { title: 'Allergies and intolerances', div: `<div xmlns="${XHTML}"><p>None found.</p></div>` },
  ]));
  expect(html.startsWith('<!doctype html>')).toBe(true);
  expect(html).toContain('<h1>Second opinion case summary</h1>');
  // The subject's name, escaped.
  expect(html).toContain('Zoë Ann O&#39;Brien &lt;Jr&gt; · born 2017-04-22 · female');
  // 23:30 UTC on March 2 is 16:30 in Denver, printed with the zone.
  expect(html).toContain('case record version 3, assembled March 2, 2027 at 4:30 PM MST</p>');
  const order = ['Problems', 'Results', 'Allergies and intolerances'].map((t) => html.indexOf(`${t}`, html.indexOf('<section')));
  expect([...order].sort((a, b) => a - b)).toEqual(order);
  expect(html).toContain('<h2>Results <span class="count">(2)</span></h2>');
  expect(html).toContain('<li>HbA1c 7.9 %</li>');
  expect(html).toContain('<h2>Allergies and intolerances</h2>');
  expect(html).toContain('Bundle bundle-7');
});

it('prints the assembly time with the name of the zone it is printed in (standard or daylight time)', () => {
  const b = bundle([{ title: 'Results', div: `<div xmlns="${XHTML}"><p>x</p></div>` }]);
  const at = (iso: string, timeZone: string) => caseRecordHtml({ caseId: 'case-1', version: 3, assembledAt: new Date(iso), bundle: b, timeZone }).join('');
  expect(at('2026-11-30T18:09:00Z', 'America/New_York')).toContain('assembled November 30, 2026 at 1:09 PM EST</p>');
  expect(at('2026-07-01T18:09:00Z', 'America/New_York')).toContain('assembled July 1, 2026 at 2:09 PM EDT</p>');
  expect(at('2026-11-30T18:09:00Z', 'UTC')).toContain('assembled November 30, 2026 at 6:09 PM UTC</p>');
  // A zone without a US abbreviation: its offset.
  expect(at('2026-11-30T18:09:00Z', 'Europe/Berlin')).toContain('assembled November 30, 2026 at 7:09 PM GMT+1</p>');
});

it('shows a narrative holding active content as escaped text, never as markup', () => {
  const html = page(bundle([
    { title: 'Results', div: `<div xmlns="${XHTML}"><script>alert(1)</script></div>` },
    { title: 'Documents', div: `<div xmlns="${XHTML}"><a href="javascript:alert(2)">x</a></div>` },
    { title: 'Procedures', div: `<div xmlns="${XHTML}"><p onclick="alert(3)">x</p></div>` },
    { title: 'Encounters', div: `<div xmlns="${XHTML}"><svg/onload=alert(4)></svg></div>` },
    // Not active by a list of what runs, but not narrative markup either: a base URL, an image from elsewhere.
    { title: 'Imaging', div: `<div xmlns="${XHTML}"><base href="https://elsewhere.example/"/><p>x</p></div>` },
    { title: 'Immunizations', div: `<div xmlns="${XHTML}"><img src="https://tracker.example/pixel.png"/></div>` },
  ]));
  expect(html).not.toMatch(/<script|<a href="javascript:|<p onclick|<svg|<base|<img/);
  expect(html).toContain('&lt;base href=&quot;https://elsewhere.example/&quot;/&gt;');
  expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
});

it('refuses a bundle that does not start with a Composition', () => {
  expect(() => page({ resourceType: 'Bundle', type: 'document', entry: [{ resource: { resourceType: 'Patient' } }] })).toThrow(/does not start with a Composition/);
});

it('shows what changed since an earlier version first, every line escaped', () => {
  const b = bundle([{ title: 'Results', div: `<div xmlns="${XHTML}"><p>x</p></div>` }]);
  const change = (description: string) => ({ fullUrl: 'urn:uuid:1', resourceType: 'Observation', section: 'results', description });
  const html = caseRecordHtml({
    caseId: 'case-1', version: 3, assembledAt: new Date('2027-03-02T23:30:00Z'), bundle: b, timeZone: 'America/Denver',
    changes: {
      from: { version: 1, trigger: 'rebuild', createdAt: '2027-03-01T00:00:00Z' },
      to: { version: 3, trigger: 'pull:p:1', createdAt: '2027-03-02T23:30:00Z' },
      totals: { added: 2, removed: 0, changed: 1, unchanged: 40 },
      byType: [],
      added: [change('2027-03-02 — HbA1c 7.9 %'), change('<img src=x onerror=alert(1)>')],
      removed: [],
      changed: [change('2027-02-01 — TSH 2.1 mIU/L')],
      truncated: false,
    },
  }).join('');
  expect(html).toContain('<h2>What changed since version 1</h2>');
  expect(html).toContain('2 added, 1 changed, 0 no longer in the record; 40 unchanged.');
  expect(html).toContain('<h3>Added</h3>');
  expect(html).not.toContain('<h3>No longer in the record</h3>');
  expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
  expect(html).not.toContain('<img');
  expect(html.indexOf('id="changes"')).toBeLessThan(html.indexOf('id="s0"'));
});
