/**
 * Composition, Provenance and Bundle edge cases on small hand-built inputs: empty sections,
 * escaping, optional sections, the unresolved-reference checker, conflicting fullUrls,
 * and negative controls showing the validator enforces the document invariants we rely on.
 */
import type { Bundle, Composition, Condition, Observation, Patient } from 'fhir/r4';
import { buildDocumentBundle, unresolvedReferences } from '../../src/normalize/bundle';
import { buildComposition, escapeXml } from '../../src/normalize/composition';
import { buildProvenances, parseRawKey } from '../../src/normalize/provenance';
import { notGrantedIssue, refusedAsNotGranted } from '../../src/pull/not-granted';
import type { NormalizedResource, SourceInfo } from '../../src/normalize/types';
import { bundleValidationErrors, validationIssues } from '../support/fhir-validation';

const OPTIONS = { bundleId: 'b-1', timestamp: '2026-11-02T15:00:00Z' };
const SUBJECT = 'urn:uuid:10000000-0000-5000-8000-000000000001';
const SOURCE: SourceInfo = { sourceId: 'src|1', baseUrl: 'https://ehr.example.org/fhir/', name: 'Clinic <A> & Co', origin: 'local-ehr', pullIds: ['p1'] };

const patient: NormalizedResource = {
  key: 'case|Patient|c1', fullUrl: SUBJECT, sourceId: 'case', origin: 'family-upload',
  resource: { resourceType: 'Patient', id: SUBJECT.slice(9), name: [{ family: 'Doe' }] } satisfies Patient,
};

function item(id: string, resource: Condition | Observation): NormalizedResource {
  return { key: `${SOURCE.sourceId}|${resource.resourceType}|${id}`, fullUrl: `urn:uuid:${id}`, sourceId: SOURCE.sourceId, origin: 'local-ehr', resource: { ...resource, id } };
}

function sections(c: Composition): Map<string, NonNullable<Composition['section']>[number]> {
  return new Map((c.section ?? []).map((s) => [s.code?.coding?.[0]?.code ?? '', s]));
}

describe('buildComposition', () => {
  it('gives every section narrative and, when empty, emptyReason unavailable; validates', () => {
    const { entry, supporting } = buildComposition({ subject: SUBJECT, resources: [patient], options: OPTIONS, sources: [SOURCE] });
    for (const s of entry.resource.section ?? []) {
      expect(s.entry).toBeUndefined();
      expect(s.emptyReason?.coding?.[0]).toEqual({ system: 'http://terminology.hl7.org/CodeSystem/list-empty-reason', code: 'unavailable', display: 'Unavailable' });
      expect(s.text?.div).toMatch(/^<div xmlns="http:\/\/www.w3.org\/1999\/xhtml"><p>.+<\/p><\/div>$/);
    }
    expect(sections(entry.resource).has('29762-2')).toBe(false); // optional: social history only when present
    expect(entry.resource.author?.[0]?.reference).toBe(supporting[0]?.fullUrl);
    const bundle = buildDocumentBundle({ composition: { entry: entry, supporting }, resources: [patient], provenances: [], options: OPTIONS });
    expect(unresolvedReferences(bundle)).toEqual([]);
    expect(bundleValidationErrors(bundle)).toEqual([]);
  });

  it("heads the narrative with what a source's EHR warned about its records, escaped, at most five per source", () => {
    const said = (i: number, severity = 'warning') => ({ severity, code: 'incomplete', text: `Results <cut> & limited #${i}` });
    const source: SourceInfo = { ...SOURCE, serverMessages: [said(0, 'information'), ...[1, 2, 3, 4, 5, 6, 7].map((i) => said(i))] };
    const { entry } = buildComposition({ subject: SUBJECT, resources: [patient], options: OPTIONS, sources: [source] });
    const div = entry.resource.text?.div ?? '';
    expect(div).toContain('<p>About the records from Clinic &lt;A&gt; &amp; Co, its EHR said: Results &lt;cut&gt; &amp; limited #1 (warning).</p>');
    expect(div.match(/its EHR said:/g)).toHaveLength(5);
    expect(div).not.toContain('#0'); // information is left to the completeness report
    expect(div).not.toContain('#6');
    expect(div).toContain("<p>Clinic &lt;A&gt; &amp; Co's EHR said 2 more such things: see the completeness report.</p>");
    // What the EHR said is in no resource of the bundle: the narrative says more than the data (R4 Narrative.status).
    expect(entry.resource.text?.status).toBe('additional');
    expect(validationIssues(entry.resource).filter((i) => i.severity === 'error')).toEqual([]);
    // A source that said nothing adds nothing.
    const quiet = buildComposition({ subject: SUBJECT, resources: [patient], options: OPTIONS, sources: [SOURCE] }).entry.resource.text;
    expect(quiet?.div).not.toContain('its EHR said');
    expect(quiet?.status).toBe('generated');
  });

  it('escapes what the sources and the family wrote', () => {
    const cond = item('20000000-0000-5000-8000-000000000001', {
      resourceType: 'Condition', subject: { reference: SUBJECT }, code: { text: 'Fever <script>alert(1)</script> & "chills"' }, onsetDateTime: '2025-01-01',
    });
    const { entry } = buildComposition({
      subject: SUBJECT, resources: [patient, cond], options: OPTIONS, sources: [SOURCE], story: { reason: 'Why <b>?', questions: ['A & B?'] },
    });
    const all = JSON.stringify(entry.resource);
    expect(all).not.toMatch(/<script>|<b>/);
    expect(sections(entry.resource).get('11450-4')?.text?.div).toContain('Fever &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;chills&quot;');
    expect(sections(entry.resource).get('11450-4')?.text?.div).toContain('Clinic &lt;A&gt; &amp; Co');
    expect(sections(entry.resource).get('42349-1')?.text?.div).toContain('Why &lt;b&gt;?');
    expect(escapeXml(`<&>"'`)).toBe('&lt;&amp;&gt;&quot;&#39;');
    // XML 1.0 (and a FHIR string) cannot hold C0 controls but tab, CR and LF: a stored intake or an EHR's display text may.
    expect(escapeXml('Seen at\u000Bthe clinic\u0007 <b>')).toBe('Seen at\nthe clinic\uFFFD &lt;b&gt;');
    expect(escapeXml('tab\tand\r\nbreak')).toBe('tab\tand\r\nbreak');
  });

  it('routes resources: resolved conditions to past illness, vital signs and social history to their sections', () => {
    const resolved = item('20000000-0000-5000-8000-000000000002', {
      resourceType: 'Condition', subject: { reference: SUBJECT }, code: { text: 'Old' },
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'resolved' }] },
    });
    const obs = (id: string, cat: string): NormalizedResource => item(id, {
      resourceType: 'Observation', status: 'final', subject: { reference: SUBJECT }, code: { text: cat },
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: cat }] }],
    });
    const { entry } = buildComposition({
      subject: SUBJECT, options: OPTIONS,
      resources: [patient, resolved, obs('20000000-0000-5000-8000-000000000003', 'vital-signs'), obs('20000000-0000-5000-8000-000000000004', 'social-history'), obs('20000000-0000-5000-8000-000000000005', 'laboratory')],
    });
    const s = sections(entry.resource);
    expect(s.get('11348-0')?.entry).toHaveLength(1);
    expect(s.get('11450-4')?.entry).toBeUndefined();
    expect(s.get('8716-3')?.entry).toHaveLength(1);
    expect(s.get('29762-2')?.entry).toHaveLength(1);
    expect(s.get('30954-2')?.entry).toHaveLength(1);
  });
});

describe('sections of types an EHR\'s token scope did not grant', () => {
  const NOT_ASKED = { system: 'http://terminology.hl7.org/CodeSystem/list-empty-reason', code: 'notasked', display: 'Not Asked' };
  const UNAVAILABLE = { system: 'http://terminology.hl7.org/CodeSystem/list-empty-reason', code: 'unavailable', display: 'Unavailable' };
  const SCOPE = 'system/Patient.read system/Observation.read system/Condition.read';
  // The pull's message is for people; the types not granted come as their own field (src/pull/not-granted.ts).
  const limited: SourceInfo = { ...SOURCE, serverMessages: [notGrantedIssue(['AllergyIntolerance', 'MedicationRequest'], SCOPE)], notGrantedTypes: ['AllergyIntolerance', 'MedicationRequest'] };
  const other: SourceInfo = { sourceId: 'src|2', baseUrl: 'https://other.example.org/fhir', name: 'Valley Clinic', origin: 'local-ehr', pullIds: ['p2'] };

  it('says "not requested", with emptyReason notasked, when no source was asked for the section\'s types', () => {
    const { entry } = buildComposition({ subject: SUBJECT, resources: [patient], options: OPTIONS, sources: [limited] });
    const allergies = sections(entry.resource).get('48765-2');
    expect(allergies?.emptyReason?.coding?.[0]).toEqual(NOT_ASKED);
    expect(allergies?.text?.div).toBe('<div xmlns="http://www.w3.org/1999/xhtml"><p>Not requested from Clinic &lt;A&gt; &amp; Co: not granted by its EHR&#39;s token scope.</p></div>');
    // A type it was asked for, and that sent none, is "None found" as before.
    const problems = sections(entry.resource).get('11450-4');
    expect(problems?.emptyReason?.coding?.[0]).toEqual(UNAVAILABLE);
    expect(problems?.text?.div).toContain('None found in the records received from Clinic &lt;A&gt; &amp; Co.');
    // A note about what was not granted says more than the entries; "None found" alone does not.
    expect([allergies?.text?.status, problems?.text?.status]).toEqual(['additional', 'generated']);
    expect(validationIssues(entry.resource).filter((i) => i.severity === 'error')).toEqual([]);
  });

  it('names the source not asked beside the results of the sources that were, and the types of a section asked in part', () => {
    const cond = item('20000000-0000-5000-8000-000000000011', { resourceType: 'Condition', subject: { reference: SUBJECT }, code: { text: 'Asthma' } });
    const refused = refusedAsNotGranted({ status: 403, issueCodes: ['forbidden'] }, ['Condition']);
    if (!refused) throw new Error('expected a not-granted message');
    const { entry } = buildComposition({
      subject: SUBJECT, resources: [patient, cond], options: OPTIONS, sources: [limited, { ...other, serverMessages: [refused], notGrantedTypes: ['Condition'] }],
    });
    const s = sections(entry.resource);
    expect(s.get('11450-4')?.text?.div).toMatch(/<\/ul><p>Not requested from Valley Clinic: not granted by its EHR&#39;s token scope.<\/p><\/div>$/);
    // Empty, one source asked: "None found" names only it, and the other is not asked.
    expect(s.get('11348-0')?.text?.div).toBe(
      '<div xmlns="http://www.w3.org/1999/xhtml"><p>None found in the records received from Clinic &lt;A&gt; &amp; Co.</p><p>Not requested from Valley Clinic: not granted by its EHR&#39;s token scope.</p></div>',
    );
    expect(s.get('11348-0')?.emptyReason?.coding?.[0]).toEqual(UNAVAILABLE);
    // Medications: MedicationRequest not asked of Clinic A, MedicationStatement was; Valley Clinic was asked for both.
    expect(s.get('10160-0')?.text?.div).toBe(
      '<div xmlns="http://www.w3.org/1999/xhtml"><p>None found in the records received from Clinic &lt;A&gt; &amp; Co, Valley Clinic.</p><p>MedicationRequest not requested from Clinic &lt;A&gt; &amp; Co: not granted by its EHR&#39;s token scope.</p></div>',
    );
  });

  it('reads the types not granted from the source, not from its messages: a not-granted message alone changes no section', () => {
    const said: SourceInfo = { ...SOURCE, serverMessages: [notGrantedIssue(['AllergyIntolerance'], SCOPE)] };
    const { entry } = buildComposition({ subject: SUBJECT, resources: [patient], options: OPTIONS, sources: [said] });
    for (const sec of entry.resource.section ?? []) expect(sec.emptyReason?.coding?.[0]?.code).not.toBe('notasked');
  });
});

describe('buildProvenances', () => {
  it('parses raw keys whose source id contains "|"', () => {
    expect(parseRawKey('src|1|Observation|abc')).toEqual({ sourceId: 'src|1', resourceType: 'Observation', remoteId: 'abc' });
  });

  it('skips a source with nothing in the bundle; trims the base URL; identifies merged raw resources by URL', () => {
    const cond = item('20000000-0000-5000-8000-000000000009', { resourceType: 'Condition', subject: { reference: SUBJECT }, code: { text: 'x' } });
    const empty: SourceInfo = { ...SOURCE, sourceId: 'empty', name: 'Empty' };
    const merges = [{ survivor: cond.fullUrl, survivorKey: cond.key, mergedKeys: ['unknown|Condition|zz'], rule: 'condition:code-onset' }];
    const out = buildProvenances({ resources: [patient, cond], merges, sources: [SOURCE, empty], options: OPTIONS });
    expect(out).toHaveLength(2);
    const [source, merge] = out.map((p) => p.resource);
    expect(source?.entity?.[0]?.what.identifier?.value).toBe('https://ehr.example.org/fhir');
    expect(source?.recorded).toBe(OPTIONS.timestamp); // no lastFetchedAt
    expect(merge?.entity?.map((e) => e.what.identifier?.value ?? e.what.display)).toEqual([
      'https://ehr.example.org/fhir/Condition/20000000-0000-5000-8000-000000000009', 'Condition/zz at source unknown',
    ]);
    for (const p of out) expect(validationIssues(p.resource).filter((i) => i.severity === 'error')).toEqual([]);
  });
});

describe('buildDocumentBundle and unresolvedReferences', () => {
  const composition = buildComposition({ subject: SUBJECT, resources: [patient], options: OPTIONS });

  it('refuses two different resources under one fullUrl', () => {
    const twin: NormalizedResource = { ...patient, resource: { ...patient.resource, gender: 'female' } as Patient };
    expect(() => buildDocumentBundle({ composition, resources: [patient, twin], provenances: [], options: OPTIONS })).toThrow(/share fullUrl/);
  });

  it('reports dangling urn:uuid, relative, contained and attachment references; ignores absolute http ones', () => {
    const bundle: Bundle = {
      resourceType: 'Bundle', type: 'document', entry: [
        { fullUrl: SUBJECT, resource: { resourceType: 'Patient', id: 'p', managingOrganization: { reference: 'urn:uuid:missing' }, generalPractitioner: [{ reference: 'Practitioner/1' }, { reference: 'https://elsewhere.example.org/Practitioner/2' }, { reference: '#gone' }] } },
        { fullUrl: 'urn:uuid:d', resource: { resourceType: 'DocumentReference', id: 'd', status: 'current', subject: { reference: SUBJECT }, content: [{ attachment: { contentType: 'application/pdf', url: 'urn:uuid:no-binary' } }] } },
      ],
    };
    expect(unresolvedReferences(bundle).map((u) => `${u.path} ${u.reference}`)).toEqual([
      'managingOrganization.reference urn:uuid:missing', 'generalPractitioner[0].reference Practitioner/1', 'generalPractitioner[2].reference #gone',
      'content[0].attachment.url urn:uuid:no-binary',
    ]);
  });
});

describe('validator negative controls (the invariants the document relies on are enforced)', () => {
  it('reports cmp-1/cmp-2 on sections and bdl-9 on a document without identifier', () => {
    const comp = { resourceType: 'Composition', id: 'c', status: 'final', type: { text: 'x' }, date: '2026-01-01', author: [{ display: 'x' }], title: 't',
      section: [{ title: 's', entry: [{ reference: 'urn:uuid:1' }], emptyReason: { text: 'x' } }, { title: 'empty' }] };
    const messages = validationIssues(comp).map((i) => i.details?.text ?? '');
    expect(messages.some((m) => m.includes('cmp-2'))).toBe(true);
    expect(messages.some((m) => m.includes('cmp-1'))).toBe(true);
    const bundle = { resourceType: 'Bundle', type: 'document', timestamp: OPTIONS.timestamp, entry: [{ fullUrl: 'urn:uuid:1', resource: comp }] } as unknown as Bundle;
    expect(bundleValidationErrors(bundle).some((m) => m.includes('bdl-9'))).toBe(true);
  });
});
