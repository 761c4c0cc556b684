/**
 * DiagnosticReport (and DocumentReference) content identity — clinical-safety review defects:
 * 1. an accession-only match ignored the report's code and date (a CBC and a CMP under one
 *    accession were merged: code CBC + CMP, the CMP's date and report gone);
 * 2. one shared attachment hash merged two reports (a CBC and a lipid report, each with its own
 *    PDF plus the lab's boilerplate PDF: the lipid PDF and "Hyperlipidemia" were lost);
 * 3. status and conclusion were not checked on a hash match (a preliminary "no fracture" survived
 *    over the final "Buckle fracture").
 */
import { createHash } from 'node:crypto';
import type { Attachment, DiagnosticReport, DocumentReference, FhirResource } from 'fhir/r4';
import { dedupe, dedupeDiagnosticReports, dedupeDocumentReferences } from '../../src/normalize/dedupe/index';
import type { NormalizedResource } from '../../src/normalize/types';

const LOINC = 'http://loinc.org';
const TEAM_B_LAB = 'http://care-team-b.example.org/fhir/CodeSystem/lab';
const PATIENT = 'urn:uuid:00000000-0000-5000-8000-000000000000';
const ACCESSION = [{ system: 'http://lab.example.org/accession', value: 'ACC123' }];
const RULE = 'diagnosticreport:presented-form';

let counter = 0;
/** A NormalizedResource of `sourceId` with a fresh uuid. */
function nr<T extends FhirResource>(sourceId: string, resource: T, extra: Pick<NormalizedResource, 'matchCodings'> = {}): NormalizedResource & { resource: T } {
  const uuid = `00000000-0000-5000-8000-${String(++counter).padStart(12, '0')}`;
  return { key: `${sourceId}|${resource.resourceType}|${uuid}`, fullUrl: `urn:uuid:${uuid}`, resource: { ...resource, id: uuid }, sourceId, origin: 'local-ehr', ...extra };
}

const CBC = { system: LOINC, code: '58410-2', display: 'CBC panel - Blood by Automated count' };
const CMP = { system: LOINC, code: '24323-8', display: 'Comprehensive metabolic panel - Serum or Plasma' };
const LIPID = { system: LOINC, code: '57698-3', display: 'Lipid panel with direct LDL - Serum or Plasma' };

function report(code: DiagnosticReport['code'], extra: Partial<DiagnosticReport> = {}): DiagnosticReport {
  return { resourceType: 'DiagnosticReport', status: 'final', code, subject: { reference: PATIENT }, ...extra };
}

/** An inline PDF attachment of `text`. */
const pdf = (text: string): Attachment => ({ contentType: 'application/pdf', data: Buffer.from(`%PDF-1.7 ${text}`).toString('base64') });
const sha1 = (text: string): string => createHash('sha1').update(Buffer.from(`%PDF-1.7 ${text}`)).digest('base64');

/** The DiagnosticReports among the survivors. */
const reports = (r: { survivors: NormalizedResource[] }): DiagnosticReport[] =>
  r.survivors.map((s) => s.resource).filter((x): x is DiagnosticReport => x.resourceType === 'DiagnosticReport');

/** Each permutation of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [x, ...rest]));
}

describe('defect 1: an accession-only match also needs the same report code and effective date', () => {
  it('keeps a CBC and a CMP under one accession apart, each with its own code and date', () => {
    const cbc = nr('team-a', report({ coding: [CBC] }, { identifier: ACCESSION, effectiveDateTime: '2026-03-01' }));
    const cmp = nr('team-b', report({ coding: [CMP] }, { identifier: ACCESSION, effectiveDateTime: '2026-03-02' }));
    const r = dedupeDiagnosticReports([cbc, cmp]);
    expect(r.merges).toEqual([]);
    expect(reports(r).map((d) => [d.code.coding?.map((c) => c.code), d.effectiveDateTime])).toEqual([[['58410-2'], '2026-03-01'], [['24323-8'], '2026-03-02']]);
  });

  it('keeps them apart on the code alone (same date) and on the date alone (same code)', () => {
    const at = (code: typeof CBC, date: string, source: string): NormalizedResource => nr(source, report({ coding: [code] }, { identifier: ACCESSION, effectiveDateTime: date }));
    expect(dedupeDiagnosticReports([at(CBC, '2026-03-01', 'a'), at(CMP, '2026-03-01', 'b')]).merges).toEqual([]);
    expect(dedupeDiagnosticReports([at(CBC, '2026-03-01', 'a'), at(CBC, '2026-03-02', 'b')]).merges).toEqual([]);
    expect(dedupeDiagnosticReports([at(CBC, '2026-03-01T09:00:00Z', 'a'), at(CBC, '2026-03-01T11:00:00Z', 'b')]).merges).toEqual([]);
  });

  it('still merges the same report: a coding shared after mapping, the same instant written in two zones', () => {
    const a = nr('team-a', report({ coding: [CBC] }, { identifier: ACCESSION, effectiveDateTime: '2026-03-01T09:20:00-07:00' }));
    const b = nr('team-b', report({ coding: [{ system: TEAM_B_LAB, code: 'CBC' }, CBC] }, { identifier: ACCESSION, effectiveDateTime: '2026-03-01T16:20:00Z' }));
    const r = dedupeDiagnosticReports([a, b]);
    expect(r.merges).toHaveLength(1);
    expect(reports(r)[0]?.code.coding?.map((c) => c.code).sort()).toEqual(['58410-2', 'CBC']);
  });

  it('matches by a mapped coding the normalizer took back (matchCodings), and by the same text', () => {
    const a = nr('team-a', report({ coding: [CBC] }, { identifier: ACCESSION }));
    const b = nr('team-b', report({ coding: [{ system: TEAM_B_LAB, code: 'CBC' }] }, { identifier: ACCESSION }), { matchCodings: [{ system: LOINC, code: '58410-2' }] });
    expect(dedupeDiagnosticReports([a, b]).merges).toHaveLength(1);
    const text = (s: string, t: string): NormalizedResource => nr(s, report({ text: t }, { identifier: ACCESSION }));
    expect(dedupeDiagnosticReports([text('a', 'Duodenal biopsy'), text('b', ' duodenal  BIOPSY ')]).merges).toHaveLength(1);
    // Text at one source, a coding at the other: no shared code, kept apart.
    expect(dedupeDiagnosticReports([text('a', 'CBC'), nr('b', report({ coding: [CBC] }, { identifier: ACCESSION }))]).merges).toEqual([]);
  });

  it('compares dates only when both have one; a date alone meets a time on that (UTC) day', () => {
    const undated = nr('a', report({ coding: [CBC] }, { identifier: ACCESSION }));
    const dated = nr('b', report({ coding: [CBC] }, { identifier: ACCESSION, effectiveDateTime: '2026-03-01T09:00:00Z' }));
    const r = dedupeDiagnosticReports([undated, dated]);
    expect(r.merges).toHaveLength(1);
    expect(reports(r)[0]?.effectiveDateTime).toBe('2026-03-01T09:00:00Z');
    const day = nr('c', report({ coding: [CBC] }, { identifier: ACCESSION, effectiveDateTime: '2026-03-01' }));
    expect(dedupeDiagnosticReports([day, dated]).merges).toHaveLength(1);
    const period = nr('c', report({ coding: [CBC] }, { identifier: ACCESSION, effectivePeriod: { start: '2026-03-02T09:00:00Z' } }));
    expect(dedupeDiagnosticReports([period, dated]).merges).toEqual([]);
  });

  it('never joins two dates through a report without one, in any input order', () => {
    const make = [
      (): NormalizedResource => nr('a', report({ coding: [CBC] }, { identifier: ACCESSION, effectiveDateTime: '2026-03-01' })),
      (): NormalizedResource => nr('b', report({ coding: [CBC] }, { identifier: ACCESSION })),
      (): NormalizedResource => nr('c', report({ coding: [CBC] }, { identifier: ACCESSION, effectiveDateTime: '2026-03-02' })),
    ];
    for (const order of permutations(make)) {
      const r = dedupeDiagnosticReports(order.map((m) => m()));
      expect(r.merges).toHaveLength(1);
      expect(reports(r).map((d) => d.effectiveDateTime).sort()).toEqual(['2026-03-01', '2026-03-02']);
    }
  });
});

describe('defect 2: the hash tier needs the same set of attachments, not one shared hash', () => {
  const boilerplate = pdf('lab boilerplate: methods and reference intervals');

  it('keeps a CBC and a lipid report that share only the boilerplate PDF apart, each with its own PDF and conclusion', () => {
    const cbc = nr('team-a', report({ coding: [CBC] }, { presentedForm: [pdf('CBC results'), boilerplate], effectiveDateTime: '2026-03-01' }));
    const lipid = nr('team-b', report({ coding: [LIPID] }, { presentedForm: [pdf('lipid results'), boilerplate], conclusion: 'Hyperlipidemia', effectiveDateTime: '2026-03-01' }));
    const r = dedupeDiagnosticReports([cbc, lipid]);
    expect(r.merges).toEqual([]);
    expect(reports(r).map((d) => d.conclusion)).toEqual([undefined, 'Hyperlipidemia']);
    expect(reports(r).map((d) => d.presentedForm?.length)).toEqual([2, 2]);
  });

  it('merges the same set of PDFs in any order and declared or inline; keeps a subset apart', () => {
    const own = pdf('CBC results');
    const a = nr('a', report({ coding: [CBC] }, { presentedForm: [own, boilerplate] }));
    const b = nr('b', report({ coding: [CBC] }, { presentedForm: [{ contentType: 'application/pdf', url: 'https://b/2', hash: sha1('lab boilerplate: methods and reference intervals') }, own] }));
    expect(dedupeDiagnosticReports([a, b]).merges).toHaveLength(1);
    const subset = nr('b', report({ coding: [CBC] }, { presentedForm: [own] }));
    expect(dedupeDiagnosticReports([a, subset]).merges).toEqual([]);
  });

  it('reads an attachment without a hash by its URL on the hash tier, and needs the same set of URLs on the URL tier', () => {
    const own = pdf('CBC results');
    const withUrl = (s: string, u: string): NormalizedResource => nr(s, report({ coding: [CBC] }, { presentedForm: [own, { contentType: 'application/pdf', url: u }] }));
    expect(dedupeDiagnosticReports([withUrl('a', 'https://lab/1'), withUrl('b', 'https://lab/2')]).merges).toEqual([]);
    expect(dedupeDiagnosticReports([withUrl('a', 'https://lab/1'), withUrl('b', 'https://lab/1')]).merges).toHaveLength(1);
    const urls = (s: string, ...u: string[]): NormalizedResource => nr(s, report({ coding: [CBC] }, { presentedForm: u.map((x) => ({ url: x })) }));
    expect(dedupeDiagnosticReports([urls('a', 'https://lab/cbc', 'https://lab/common'), urls('b', 'https://lab/lipid', 'https://lab/common')]).merges).toEqual([]);
    expect(dedupeDiagnosticReports([urls('a', 'https://lab/cbc', 'https://lab/common'), urls('b', 'https://lab/common', 'https://lab/cbc')]).merges).toHaveLength(1);
  });

  it('DocumentReference (same defect): a shared cover page does not make two letters one; the same bytes still merge', () => {
    const doc = (...atts: Attachment[]): DocumentReference => ({ resourceType: 'DocumentReference', status: 'current', subject: { reference: PATIENT }, content: atts.map((attachment) => ({ attachment })) });
    const cover = pdf('clinic cover page');
    const r = dedupeDocumentReferences([nr('a', doc(pdf('referral letter'), cover)), nr('b', doc(pdf('discharge letter'), cover))]);
    expect(r.merges).toEqual([]);
    expect(r.survivors).toHaveLength(2);
    expect(dedupeDocumentReferences([nr('a', doc(pdf('referral letter'), cover)), nr('b', doc(cover, pdf('referral letter')))]).merges).toHaveLength(1);
    expect(dedupeDocumentReferences([nr('a', doc(pdf('referral letter'))), nr('b', doc({ url: 'https://b/1', hash: sha1('referral letter') }))]).merges).toHaveLength(1);
  });
});

describe('defect 3: status and conclusion hold on every tier', () => {
  const xray = pdf('wrist radiograph, 2 views');
  const wrist = { text: 'XR wrist 2 views' };

  it('keeps a preliminary "no fracture" and the final "Buckle fracture" with the same PDF apart, each with its status', () => {
    for (const order of [['p', 'f'], ['f', 'p']]) {
      const make = (k: string): NormalizedResource => k === 'p'
        ? nr('team-a', report(wrist, { status: 'preliminary', conclusion: 'No fracture', presentedForm: [xray] }))
        : nr('team-b', report(wrist, { status: 'final', conclusion: 'Buckle fracture of the distal radius', presentedForm: [xray] }));
      const r = dedupeDiagnosticReports(order.map(make));
      expect(r.merges).toEqual([]);
      expect(reports(r).map((d) => `${d.status}: ${d.conclusion ?? ''}`).sort()).toEqual(['final: Buckle fracture of the distal radius', 'preliminary: No fracture']);
    }
  });

  it('does the same on the URL tier, and for two final reports whose conclusions differ', () => {
    const byUrl = (s: string, status: DiagnosticReport['status'], conclusion: string): NormalizedResource =>
      nr(s, report(wrist, { status, conclusion, presentedForm: [{ url: 'https://pacs.example.org/report/9' }] }));
    expect(dedupeDiagnosticReports([byUrl('a', 'preliminary', 'No fracture'), byUrl('b', 'final', 'Buckle fracture')]).merges).toEqual([]);
    const final = (s: string, conclusion: string): NormalizedResource => nr(s, report(wrist, { conclusion, presentedForm: [xray] }));
    expect(dedupeDiagnosticReports([final('a', 'No fracture'), final('b', 'Buckle fracture')]).merges).toEqual([]);
    expect(dedupeDiagnosticReports([final('a', 'Buckle fracture'), final('b', ' buckle  FRACTURE')]).merges).toHaveLength(1);
  });

  it('merges the same PDF when only one source states the conclusion, which the survivor keeps', () => {
    const a = nr('a', report(wrist, { conclusion: 'Buckle fracture', presentedForm: [xray] }));
    const b = nr('b', report(wrist, { presentedForm: [xray], issued: '2026-03-01T12:00:00Z', performer: [{ display: 'Radiology' }] }));
    const r = dedupeDiagnosticReports([a, b]);
    expect(r.merges).toHaveLength(1);
    expect(reports(r)[0]?.conclusion).toBe('Buckle fracture');
  });

  it('never joins two conclusions through a copy stating none, in any input order', () => {
    const make = [
      (): NormalizedResource => nr('a', report(wrist, { conclusion: 'No fracture', presentedForm: [xray] })),
      (): NormalizedResource => nr('b', report(wrist, { presentedForm: [xray] })),
      (): NormalizedResource => nr('c', report(wrist, { conclusion: 'Buckle fracture', presentedForm: [xray] })),
    ];
    for (const order of permutations(make)) {
      const r = dedupeDiagnosticReports(order.map((m) => m()));
      expect(r.merges).toHaveLength(1);
      expect(reports(r).map((d) => d.conclusion).sort()).toEqual(['Buckle fracture', 'No fracture']);
    }
  });
});

describe('disabledRules', () => {
  it('switching the rule off leaves every report as received; on, the same report merges', () => {
    const input = [
      nr('a', report({ coding: [CBC] }, { identifier: ACCESSION, presentedForm: [pdf('CBC results')] })),
      nr('b', report({ coding: [CBC] }, { identifier: ACCESSION, presentedForm: [pdf('CBC results')] })),
    ];
    const off = dedupe(input, { disabledRules: [RULE] });
    expect(off.merges).toEqual([]);
    expect(off.resources).toHaveLength(2);
    const on = dedupe(input);
    expect(on.merges.map((m) => m.rule)).toEqual([RULE]);
  });
});

describe('DocumentReference: a shared identifier names the document, not its version', () => {
  const LETTER_ID = [{ system: 'http://clinic.example.org/documents', value: 'DOC-77' }];
  const letter = (extra: Partial<DocumentReference>, ...atts: Attachment[]): DocumentReference => ({
    resourceType: 'DocumentReference', status: 'current', subject: { reference: PATIENT }, identifier: LETTER_ID, content: atts.map((attachment) => ({ attachment })), ...extra,
  });
  const contentOf = (r: { survivors: NormalizedResource[] }): string[] =>
    r.survivors.flatMap((s) => (s.resource as DocumentReference).content.map((c) => c.attachment.url ?? c.attachment.data ?? '')).sort();

  it('keeps the preliminary letter and the amended one apart when only the identifier could match them (one hashed, one by URL not fetched)', () => {
    for (const order of [['p', 'a'], ['a', 'p']]) {
      const make = (k: string): NormalizedResource => k === 'p'
        ? nr('team-a', letter({ docStatus: 'preliminary' }, pdf('discharge letter, draft')))
        : nr('team-b', letter({ docStatus: 'amended' }, { contentType: 'application/pdf', url: 'https://team-b.example.org/fhir/Binary/77' }));
      const r = dedupeDocumentReferences(order.map(make));
      expect(r.merges).toEqual([]);
      // Both documents' content is in the bundle: the amended letter is not folded into the draft.
      expect(contentOf(r)).toContain('https://team-b.example.org/fhir/Binary/77');
      expect(r.survivors.map((s) => (s.resource as DocumentReference).docStatus).sort()).toEqual(['amended', 'preliminary']);
    }
  });

  it('merges by identifier alone only when status and docStatus agree (an absent docStatus is not a final one)', () => {
    const url = { contentType: 'application/pdf', url: 'https://team-b.example.org/fhir/Binary/77' };
    expect(dedupeDocumentReferences([nr('a', letter({ docStatus: 'final' }, pdf('letter'))), nr('b', letter({ docStatus: 'final' }, url))]).merges).toHaveLength(1);
    expect(dedupeDocumentReferences([nr('a', letter({ docStatus: 'final' }, pdf('letter'))), nr('b', letter({}, url))]).merges).toEqual([]);
  });

  it('keeps identical bytes apart when one source calls the document superseded and the other current, or preliminary and final', () => {
    const same = pdf('clinic letter');
    expect(dedupeDocumentReferences([nr('a', letter({ status: 'superseded' }, same)), nr('b', letter({ status: 'current' }, same))]).merges).toEqual([]);
    expect(dedupeDocumentReferences([nr('a', letter({ docStatus: 'preliminary' }, same)), nr('b', letter({ docStatus: 'final' }, same))]).merges).toEqual([]);
    // Stating nothing contradicts nothing: the same bytes merge.
    expect(dedupeDocumentReferences([nr('a', letter({ docStatus: 'final' }, same)), nr('b', letter({}, same))]).merges).toHaveLength(1);
  });
});
