import fs from 'node:fs';
import path from 'node:path';
import { documentReferenceForUpload, type UploadedDocument, UPLOAD_RESOURCE_NAMESPACE } from '../../src/uploads/pdf-document';
import { inspectPdf } from '../../src/uploads/pdf-inspection';
import { uuidV5 } from '../../src/cases/fhir-ids';
import { PDFDocument, PDFName, PDFString } from 'pdf-lib';

const SHARED = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'pdf');
const FIXTURES = path.resolve(__dirname, '..', '..', 'fixtures', 'pdf');
const read = (dir: string, name: string): Buffer => fs.readFileSync(path.join(dir, name));

/** pdf-lib reports recoverable parse problems with console.log/warn; keep test output clean. */
beforeAll(() => {
  jest.spyOn(console, 'log').mockImplementation(() => undefined);
  jest.spyOn(console, 'warn').mockImplementation(() => undefined);
});
afterAll(() => jest.restoreAllMocks());

describe('inspectPdf', () => {
  it('reads page count and title of valid PDFs', async () => {
    expect(await inspectPdf(read(SHARED, 'minimal-document.pdf'))).toEqual({ ok: true, encrypted: false, pageCount: 1, creationDate: '2022-04-03T16:05:42.000Z' });
    expect(await inspectPdf(read(SHARED, 'inline-image.pdf'))).toMatchObject({ ok: true, pageCount: 1, title: 'untitled' });
    expect(await inspectPdf(read(FIXTURES, 'a-progress-note.pdf'))).toMatchObject({ ok: true, pageCount: 2, title: 'Diabetes Clinic Progress Note' });
    for (const name of fs.readdirSync(FIXTURES)) expect([name, (await inspectPdf(read(FIXTURES, name))).ok]).toEqual([name, true]);
  });

  it('flags an encrypted PDF (kept, with its page count), never throws', async () => {
    expect(await inspectPdf(read(SHARED, 'libreoffice-writer-password.pdf'))).toEqual({
      ok: false,
      encrypted: true,
      reason: 'encrypted PDF (password-protected)',
      pageCount: 1,
    });
  });

  it('flags truncated and damaged PDFs', async () => {
    const full = read(FIXTURES, 'b-gi-consult.pdf');
    // Like the 329-byte PDF in the Inferno data: a header and no body.
    const stub = await inspectPdf(full.subarray(0, 329));
    expect(stub).toMatchObject({ ok: false, encrypted: false });
    expect(stub.ok ? '' : stub.reason).toMatch(/^(damaged|truncated) PDF/);
    for (const cut of [0, 10, 1000, full.length - 10]) {
      const r = await inspectPdf(full.subarray(0, cut));
      expect([cut, r.ok]).toEqual([cut, false]);
    }
    expect(await inspectPdf(Buffer.from('%PDF-1.4\n%%EOF'))).toMatchObject({ ok: false, encrypted: false });
    expect(await inspectPdf(Buffer.from('not a pdf at all'))).toMatchObject({ ok: false, encrypted: false, reason: expect.stringMatching(/^damaged PDF: /) as unknown as string });
  });

  it('a PDF that cannot be opened and has no %%EOF is called truncated, before the load error is quoted', async () => {
    // The audit's file: the PDF attachment of an Inferno US Core bundle (329 bytes, a header and no body), read in place.
    const bundle = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'fhir', 'inferno-uscore', 'uscore_bundle_patient_85.json'), 'utf8')) as {
      entry: { resource: { resourceType: string; content?: { attachment?: { contentType?: string; data?: string } }[] } }[];
    };
    const data = bundle.entry
      .flatMap((e) => (e.resource.resourceType === 'DocumentReference' ? (e.resource.content ?? []) : []))
      .find((c) => c.attachment?.contentType === 'application/pdf' && c.attachment.data)?.attachment?.data;
    const inferno = Buffer.from(data ?? '', 'base64');
    expect(inferno.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const r = await inspectPdf(inferno);
    expect(r).toMatchObject({ ok: false, encrypted: false });
    expect(r.ok ? '' : r.reason).toMatch(/^truncated PDF: no %%EOF marker at the end of the file \(pdf-lib: /);
    // A cut copy of a fixture says the same; a damaged file that does end with %%EOF stays "damaged".
    const full = read(FIXTURES, 'b-gi-consult.pdf');
    for (const cut of [10, 1000]) {
      const cutShort = await inspectPdf(full.subarray(0, cut));
      expect([cut, cutShort.ok ? '' : cutShort.reason]).toEqual([cut, expect.stringMatching(/^truncated PDF: no %%EOF marker/)]);
    }
    const broken = await inspectPdf(Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n'));
    expect(broken.ok ? '' : broken.reason).toMatch(/^damaged PDF/);
  });
});

describe('active content', () => {
  /** A one-page PDF made by pdf-lib, with what `add` puts in it. */
  async function pdfWith(add: (doc: PDFDocument) => Promise<void> | void): Promise<Uint8Array> {
    const doc = await PDFDocument.create();
    doc.addPage().drawText('A letter from the clinic');
    await add(doc);
    return doc.save();
  }

  it('finds JavaScript, embedded files and launch actions; a plain PDF holds none', async () => {
    expect(await inspectPdf(await pdfWith(() => undefined))).not.toHaveProperty('activeContent');
    expect(await inspectPdf(await pdfWith((doc) => doc.addJavaScript('main', 'app.alert("hello")')))).toMatchObject({ ok: true, pageCount: 1, activeContent: ['JavaScript'] });
    expect(await inspectPdf(await pdfWith((doc) => doc.attach(Buffer.from('MZ not really an exe'), 'setup.exe', { mimeType: 'application/octet-stream' })))).toMatchObject({
      ok: true,
      activeContent: ['embedded file'],
    });
    // An OpenAction that launches a program, as a raw dictionary (saved in an object stream: found there too).
    const launch = await pdfWith((doc) => {
      const action = doc.context.obj({ S: 'Launch', F: PDFString.of('calc.exe') });
      doc.catalog.set(PDFName.of('OpenAction'), action);
    });
    expect(await inspectPdf(launch)).toMatchObject({ ok: true, activeContent: ['launch action'] });
    const both = await pdfWith(async (doc) => {
      doc.addJavaScript('main', 'this.print()');
      await doc.attach(Buffer.from('x'), 'a.txt', { mimeType: 'text/plain' });
    });
    expect(await inspectPdf(both)).toMatchObject({ activeContent: ['JavaScript', 'embedded file'] });
    // Names written with lower-case hex escapes (`/Lau#6ech`, `/#4aavaScript`) are the same names to a reader.
    const plainLaunch = await (async () => {
      const doc = await PDFDocument.create();
      doc.addPage();
      doc.catalog.set(PDFName.of('OpenAction'), doc.context.obj({ S: 'Launch', F: PDFString.of('calc.exe') }));
      doc.addJavaScript('main', 'this.print()');
      return Buffer.from(await doc.save({ useObjectStreams: false })).toString('latin1');
    })();
    expect(plainLaunch).toContain('/Launch');
    expect(plainLaunch).toContain('/JavaScript');
    const escaped = Buffer.from(plainLaunch.replaceAll('/Launch', '/Lau#6ech').replaceAll('/JavaScript', '/#4aavaScript'), 'latin1');
    expect(await inspectPdf(escaped)).toMatchObject({ activeContent: expect.arrayContaining(['JavaScript', 'launch action']) as unknown as string[] });
    // Truncated (no %%EOF near the end), it still says what it holds.
    const withScript = await pdfWith((doc) => doc.addJavaScript('main', 'app.alert(1)'));
    const padded = Buffer.concat([Buffer.from(withScript), Buffer.alloc(1100, 0x20)]);
    expect(await inspectPdf(padded)).toMatchObject({ ok: false, reason: expect.stringMatching(/^truncated PDF/) as unknown as string, activeContent: ['JavaScript'] });
    // The shared and fixture PDFs are plain documents.
    for (const name of ['minimal-document.pdf', 'inline-image.pdf']) expect(await inspectPdf(read(SHARED, name))).not.toHaveProperty('activeContent');
    for (const name of fs.readdirSync(FIXTURES)) expect([name, (await inspectPdf(read(FIXTURES, name))).activeContent]).toEqual([name, undefined]);
  });

  it('tags the DocumentReference of such a PDF for review', async () => {
    const pdf = await inspectPdf(await pdfWith((doc) => doc.addJavaScript('main', 'app.alert(1)')));
    const doc = documentReferenceForUpload({
      caseId: 'case-1', uploadId: 'up-9', fileName: 'letter.pdf', contentType: 'application/pdf', size: 1, sha1Base64: 'x', sha256: 'ab'.repeat(32),
      blobUrl: '/api/cases/case-1/uploads/files/up-9', uploadedAt: '2026-11-28T08:00:00Z', pdf,
    });
    expect(doc.meta?.tag?.map((t) => t.code)).toEqual(['family-upload', 'active-content']);
  });
});

describe('documentReferenceForUpload', () => {
  const base: UploadedDocument = {
    caseId: 'case-1',
    uploadId: 'up-7',
    fileName: 'portal-export.pdf',
    contentType: 'application/pdf',
    size: 12345,
    sha1Base64: 'qUqP5cyxm6YcTAhz05Hph5gvu9M=',
    sha256: 'ab'.repeat(32),
    blobUrl: '/api/cases/case-1/uploads/up-7/content',
    uploadedAt: '2026-11-28T08:00:00Z',
    patientReference: 'Patient/p1',
  };

  it('a readable PDF: current, outside-record category, attachment with hash, pages, title, family-upload tag', async () => {
    const pdf = await inspectPdf(read(FIXTURES, 'a-progress-note.pdf'));
    const doc = documentReferenceForUpload({ ...base, pdf });
    expect(doc).toMatchObject({
      resourceType: 'DocumentReference',
      id: uuidV5('case-1/upload/up-7', UPLOAD_RESOURCE_NAMESPACE),
      meta: { tag: [{ system: 'https://second-opinion.example.org/fhir/CodeSystem/origin', code: 'family-upload' }] },
      identifier: [{ system: 'https://second-opinion.example.org/fhir/upload', value: 'up-7' }],
      status: 'current',
      subject: { reference: 'Patient/p1' },
      date: '2026-11-28T08:00:00Z',
      description: 'Diabetes Clinic Progress Note',
    });
    expect(doc.meta?.tag).toHaveLength(1);
    expect(doc.category?.[0]?.coding?.map((c) => c.code)).toEqual(['clinical-note', 'outside-record']);
    expect(doc.content[0]?.attachment).toEqual({
      extension: [
        { url: 'https://second-opinion.example.org/fhir/StructureDefinition/attachment-sha256', valueString: base.sha256 },
        { url: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-Attachment.pages', valuePositiveInt: 2 },
      ],
      contentType: 'application/pdf',
      url: base.blobUrl,
      size: 12345,
      hash: base.sha1Base64,
      title: 'Diabetes Clinic Progress Note',
      creation: '2026-07-14T17:05:00.000Z',
    });
    expect(documentReferenceForUpload({ ...base, pdf })).toEqual(doc);
  });

  it('an encrypted PDF is kept and flagged, with the reason in the description', async () => {
    const pdf = await inspectPdf(read(SHARED, 'libreoffice-writer-password.pdf'));
    const doc = documentReferenceForUpload({ ...base, pdf });
    expect(doc.status).toBe('current');
    expect(doc.meta?.tag?.map((t) => t.code)).toEqual(['family-upload', 'unreadable', 'encrypted']);
    expect(doc.description).toBe('Kept but not readable: encrypted PDF (password-protected)');
    expect(doc.content[0]?.attachment.title).toBe('portal-export.pdf');
  });
});
