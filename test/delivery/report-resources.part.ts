import { createHash } from 'node:crypto';
import { buildCommunication, buildDiagnosticReport, buildDocumentReference, conclusion, REPORT_IDENTIFIER_SYSTEM, type ReportFacts } from '../../src/delivery/report-resources';
import { idFromLocation, planWrite } from '../../src/delivery/report-writer';
import { scopeAllows } from '../../src/fhir/scope';
import { buildTransferServiceRequest } from '../../src/transfer/transfer-service';
import { validationIssues } from '../support/fhir-validation';

const pdf = Buffer.from('%PDF-1.7\n% a tiny stand-in\n');
const facts: ReportFacts = {
  caseId: '6a0f1b52-8c3d-4e5f-9a1b-2c3d4e5f6a7b',
  version: 2,
  status: 'amended',
  content: { summary: 'Summary <b>with</b> markup & more', diagnosisAssessment: 'a', recommendations: 'r', answers: [{ question: 'Q?', answer: 'A.' }], followUp: 'f' },
  specialist: { sub: 'spec-1', name: 'Dr. Zoë Ångström', npi: '1234567893' },
  signedAt: new Date('2027-03-04T15:00:00Z'),
  pdf,
  pdfSha1Base64: createHash('sha1').update(pdf).digest('base64'),
  title: 'Second opinion report',
  patientId: 'pat-1',
  programName: 'Online Second Opinion Program',
};
const errors = (r: unknown): string[] =>
  validationIssues(r)
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => `${i.expression?.join(',') ?? ''}: ${i.details?.text ?? ''}`);

it('builds a DiagnosticReport per US Core DiagnosticReport Note, valid against R4 with zero errors', () => {
  const dr = buildDiagnosticReport(facts);
  expect(errors(dr)).toEqual([]);
  expect(dr).toMatchObject({
    status: 'amended',
    identifier: [{ system: REPORT_IDENTIFIER_SYSTEM, value: `${facts.caseId}-v2` }],
    code: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] },
    subject: { reference: 'Patient/pat-1' },
    performer: [{ reference: '#specialist' }],
    resultsInterpreter: [{ reference: '#specialist' }],
    presentedForm: [{ contentType: 'application/pdf', size: pdf.length, hash: facts.pdfSha1Base64, data: pdf.toString('base64') }],
  });
  expect(dr.contained?.[0]).toMatchObject({ resourceType: 'Practitioner', identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567893' }] });
  expect(dr.text?.div).toContain('&lt;b&gt;');
});

it('names the specialist in parts where the directory has them (US Core Practitioner requires name.family)', () => {
  const withParts = { ...facts, specialist: { ...facts.specialist, humanName: { family: 'Ångström', given: ['Zoë'], prefix: ['Dr.'] } } };
  const dr = buildDiagnosticReport(withParts);
  expect(errors(dr)).toEqual([]);
  expect(dr.contained?.[0]).toMatchObject({ resourceType: 'Practitioner', name: [{ text: 'Dr. Zoë Ångström', family: 'Ångström', given: ['Zoë'], prefix: ['Dr.'] }] });
  // Without the directory's parts, the name as written is all there is.
  expect(buildDiagnosticReport(facts).contained?.[0]).toMatchObject({ name: [{ text: 'Dr. Zoë Ångström' }] });
  // A family name alone (or blank given names): no empty list, no empty string (R4 json.html: neither is ever empty).
  const familyOnly = buildDiagnosticReport({ ...facts, specialist: { ...facts.specialist, name: 'Dr. Ångström', humanName: { family: 'Ångström', given: ['', ' '], prefix: [''] } } });
  expect(errors(familyOnly)).toEqual([]);
  expect((familyOnly.contained?.[0] as { name?: unknown[] } | undefined)?.name).toEqual([{ text: 'Dr. Ångström', family: 'Ångström' }]);
});

it('builds a DocumentReference (clinical-note, replaces the previous one) and a Communication, both valid', () => {
  const doc = buildDocumentReference(facts, 'DiagnosticReport/dr-1', 'doc-0');
  expect(errors(doc)).toEqual([]);
  expect(doc.relatesTo).toEqual([{ code: 'replaces', target: { reference: 'DocumentReference/doc-0' } }]);
  expect(doc.category?.[0]?.coding?.[0]?.code).toBe('clinical-note');
  const comm = buildCommunication(facts, 'DiagnosticReport/dr-1', { reference: 'Practitioner/p-1', display: 'Dr. B' });
  expect(errors(comm)).toEqual([]);
  expect(comm.payload?.[1]?.contentReference?.reference).toBe('DiagnosticReport/dr-1');
});

it('cuts a long conclusion at 4,000 units without splitting a character', () => {
  const wellFormed = (s: string): boolean => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
  const short = 'x'.repeat(4000);
  expect(conclusion({ summary: short })).toBe(short);
  const emoji = conclusion({ summary: `${'x'.repeat(3998)}😀 and more` });
  expect(emoji).toBe(`${'x'.repeat(3998)}…`);
  expect(wellFormed(emoji)).toBe(true);
  const plain = conclusion({ summary: 'y'.repeat(5000) });
  expect(plain).toBe(`${'y'.repeat(3999)}…`);
});

it('never emits a control character a FHIR string or the XHTML narrative cannot hold (a summary pasted from Word)', () => {
  // XML 1.0 Char (https://www.w3.org/TR/xml/#charsets): the narrative div must be well-formed.
  const xmlChars = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;
  const pasted: ReportFacts = {
    ...facts,
    content: { ...facts.content, summary: 'First line\u000Bsecond line\u000Cnext page\u0001odd\u001F\ttab\r\nend\uFFFE' },
    specialist: { ...facts.specialist, name: 'Dr. Zoë\u000BÅngström', humanName: { family: 'Ång\u0002ström', given: ['Zoë'] } },
  };
  const dr = buildDiagnosticReport(pasted);
  expect(errors(dr)).toEqual([]);
  expect(dr.conclusion).toBe('First line\nsecond line\nnext page\uFFFDodd\uFFFD\ttab\r\nend\uFFFE');
  expect(dr.text?.div).toMatch(xmlChars);
  expect(dr.text?.div).toContain('First line\nsecond line');
  const doc = buildDocumentReference(pasted, 'DiagnosticReport/dr-1', 'doc-0');
  expect(errors(doc)).toEqual([]);
  const comm = buildCommunication(pasted, 'DiagnosticReport/dr-1', { reference: 'Practitioner/p-1' });
  expect(errors(comm)).toEqual([]);
  const strings = (v: unknown): string[] => (typeof v === 'string' ? [v] : v !== null && typeof v === 'object' ? Object.values(v).flatMap(strings) : []);
  expect(strings([dr, doc, comm]).filter((text) => /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(text))).toEqual([]);
  expect(conclusion({ summary: 'a\u000Bb' })).toBe('a\nb');
});

it('builds the transfer-of-care ServiceRequest, valid against R4', () => {
  const sr = buildTransferServiceRequest('0d5c1f7e-1111-4222-8333-944455556666', facts.caseId, { reason: 'Closer to home', destination: { organization: 'Children’s Hospital' }, note: 'n' }, new Date());
  expect(errors(sr)).toEqual([]);
  expect(sr).toMatchObject({ intent: 'proposal', status: 'active', code: { coding: [{ code: '308292007' }] } });
});

it('plans the write from the capabilities and reads ids from Location headers', () => {
  expect(planWrite(null)).toEqual({ documentReference: false, supersede: false, communication: false, transaction: false, resendable: false });
  expect(
    planWrite({ resources: { DocumentReference: { interactions: ['create'], searchParams: [], operations: [] } }, patientEverything: false, systemInteractions: ['transaction'] }),
  ).toEqual({ documentReference: true, supersede: false, communication: false, transaction: true, resendable: false });
  // A write whose answer was lost is resent as is only where every type written honours If-None-Exist.
  const create = (conditionalCreate: boolean) => ({ interactions: ['create'], searchParams: [], operations: [], ...(conditionalCreate ? { conditionalCreate } : {}) });
  expect(planWrite({ resources: { DiagnosticReport: create(true), DocumentReference: create(true) }, patientEverything: false, systemInteractions: [] }).resendable).toBe(true);
  expect(planWrite({ resources: { DiagnosticReport: create(true), DocumentReference: create(false) }, patientEverything: false, systemInteractions: [] }).resendable).toBe(false);
  // Superseding a replaced note needs update besides create.
  expect(
    planWrite({ resources: { DocumentReference: { interactions: ['create', 'update'], searchParams: [], operations: [] } }, patientEverything: false, systemInteractions: [] }),
  ).toMatchObject({ documentReference: true, supersede: true });
  expect(idFromLocation('https://ehr.example/fhir/DiagnosticReport/abc-1/_history/2', 'DiagnosticReport')).toBe('abc-1');
  expect(idFromLocation('DiagnosticReport/abc', 'DiagnosticReport')).toBe('abc');
  expect(idFromLocation('Communication/abc', 'DiagnosticReport')).toBeUndefined();
});

it('plans only the writes the SMART scope allows (v1 read/write/*, v2 cruds)', () => {
  const create = { interactions: ['create', 'update'], searchParams: [], operations: [] };
  const caps = { resources: { DiagnosticReport: create, DocumentReference: create, Communication: create }, patientEverything: false, systemInteractions: ['transaction'] };
  expect(planWrite(caps, 'system/*.read system/DiagnosticReport.write system/Communication.write')).toMatchObject({ documentReference: false, communication: true });
  expect(planWrite(caps, 'system/*.rs system/DiagnosticReport.c system/DocumentReference.cu')).toMatchObject({ documentReference: true, communication: false });
  expect(planWrite(caps, 'system/*.*')).toMatchObject({ documentReference: true, communication: true });
  expect(planWrite(caps)).toMatchObject({ documentReference: true, communication: true });
  expect(scopeAllows('system/*.read', 'DiagnosticReport', 'create')).toBe(false);
  expect(scopeAllows('system/*.rs', 'DiagnosticReport', 'create')).toBe(false);
  expect(scopeAllows('system/*.cruds', 'DiagnosticReport', 'create')).toBe(true);
  expect(scopeAllows('system/DocumentReference.write', 'DiagnosticReport', 'create')).toBe(false);
});

it('tells whether the SMART scope lets this client search a type (v1 read or *, v2 s)', () => {
  expect(scopeAllows('system/*.read', 'Practitioner', 'search')).toBe(true);
  expect(scopeAllows('system/Practitioner.*', 'Practitioner', 'search')).toBe(true);
  expect(scopeAllows('system/Practitioner.rs', 'Practitioner', 'search')).toBe(true);
  expect(scopeAllows('system/*.cruds', 'Practitioner', 'search')).toBe(true);
  expect(scopeAllows(undefined, 'Practitioner', 'search')).toBe(true);
  expect(scopeAllows('system/Patient.read system/DiagnosticReport.write', 'Practitioner', 'search')).toBe(false);
  expect(scopeAllows('system/Practitioner.write', 'Practitioner', 'search')).toBe(false);
  expect(scopeAllows('system/Practitioner.r', 'Practitioner', 'search')).toBe(false);
  // Search is no create or update, nor the other way round.
  expect(scopeAllows('system/*.read', 'Practitioner', 'create')).toBe(false);
  expect(scopeAllows('system/*.write', 'Practitioner', 'search')).toBe(false);
});

it('plans the replaced note superseded only where the scope granted allows updating DocumentReferences', () => {
  const both = { interactions: ['create', 'update'], searchParams: [], operations: [] };
  const caps = { resources: { DiagnosticReport: both, DocumentReference: both }, patientEverything: false, systemInteractions: [] };
  // v1 write / *, v2 u: granted; the server's answer decides where no SMART scope applies.
  for (const scope of ['system/*.read system/*.write', 'system/DiagnosticReport.c system/DocumentReference.cu', 'system/*.cruds', 'system/*.*', undefined]) {
    expect({ scope, plan: planWrite(caps, scope) }).toEqual({ scope, plan: expect.objectContaining({ documentReference: true, supersede: true }) as unknown });
    expect(planWrite(caps, scope).supersedeNotGranted).toBeUndefined();
  }
  // Create without update: no update planned, and the plan says which scope was granted.
  const createOnly = 'system/*.rs system/DiagnosticReport.c system/DocumentReference.c';
  expect(planWrite(caps, createOnly)).toMatchObject({ documentReference: true, supersede: false, supersedeNotGranted: createOnly });
  // A server that cannot update them: not a scope matter.
  const noUpdate = { ...caps, resources: { ...caps.resources, DocumentReference: { ...both, interactions: ['create'] } } };
  expect(planWrite(noUpdate, createOnly).supersedeNotGranted).toBeUndefined();
});
