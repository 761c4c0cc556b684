/**
 * What an upload is called: a part that carries a file without a filename is refused naming the part
 * (never silently dropped), and a file name with control or bidirectional formatting characters is
 * stored and shown in its real order (`invoice\u202Efdp.exe` is visibly an `.exe`). Real service, real
 * PostgreSQL and Redis, real HTTP; raw multipart bodies where a client library would add a filename.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cleanFileName } from '../../src/uploads/multipart-receiver';
import { storableFileName } from '../../src/util/storable-text';
import { openCase, startCaseManagerService } from '../support/case-manager';
import { startForFile } from '../support/for-file';
import { eventually, type TestService } from '../support/service';
import { listUploads, postUpload, type UploadView } from '../support/uploads';
import { filesUnder } from './disk-faults';
import { buildZip } from './zip-writer';

const DATA = path.resolve(__dirname, '../../../shared/data');
const LETTER = fs.readFileSync(path.join(DATA, 'pdf', 'minimal-document.pdf'));
const CR = fs.readFileSync(path.join(DATA, 'dicom', 'pydicom__dicomdirtests_77654033_CR1_6154'));
const CT = fs.readFileSync(path.join(DATA, 'dicom', 'dicomParser__CT1_UNC.explicit_little_endian.dcm'));

let svc: TestService;
let cm: string;

startForFile(() => startCaseManagerService(), (s) => ({ svc, cm } = s));

interface RawPart {
  readonly disposition: string;
  readonly contentType?: string;
  readonly data: Buffer;
}

/** POSTs a multipart/form-data body written by hand (RFC 7578), each part's headers as given. */
async function postParts(caseId: string, parts: readonly RawPart[]): Promise<Response> {
  const boundary = `sob-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const headers = [`Content-Disposition: ${p.disposition}`, ...(p.contentType ? [`Content-Type: ${p.contentType}`] : [])];
    chunks.push(Buffer.from(`--${boundary}\r\n${headers.join('\r\n')}\r\n\r\n`, 'utf8'), p.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return fetch(`${svc.url}/api/cases/${caseId}/uploads`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cm}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
    body: Buffer.concat(chunks),
  });
}

const uploads = (caseId: string): Promise<UploadView[]> => listUploads(svc, cm, caseId);

const blobFiles = (): string[] => filesUnder(path.join(svc.config.dataDir, 'blobs'));

describe('a part that carries a file without a filename', () => {
  it.each<[string, RawPart]>([
    ['declared application/pdf', { disposition: 'form-data; name="report"', contentType: 'application/pdf', data: LETTER }],
    ['no Content-Type (curl -F "report=<letter.pdf")', { disposition: 'form-data; name="report"', data: LETTER }],
    ['an empty filename', { disposition: 'form-data; name="report"; filename=""', contentType: 'application/dicom', data: CR }],
    ['a DICOM file larger than a form field, declared text/plain', { disposition: 'form-data; name="report"', contentType: 'text/plain', data: CT }],
  ])('is refused with 400 naming the part (%s), beside a named file, and nothing is kept', async (_what, nameless) => {
    const caseId = await openCase(svc, cm);
    const before = blobFiles();
    const res = await postParts(caseId, [
      { disposition: 'form-data; name="file"; filename="letter.pdf"', contentType: 'application/pdf', data: LETTER },
      nameless,
    ]);
    expect(res.status).toBe(400);
    const problem = (await res.json()) as { detail: string; errors: { field: string; pointer: string }[] };
    expect(problem.detail).toMatch(/^Part "report" carries a file but no filename/);
    expect(problem.errors).toEqual([expect.objectContaining({ field: 'report', pointer: '#/files/1' })]);
    expect(await uploads(caseId)).toEqual([]);
    expect(blobFiles()).toEqual(before);
  });

  it('a short text form field beside the files is still ignored (it is no file): the upload is taken', async () => {
    const caseId = await openCase(svc, cm);
    const res = await postParts(caseId, [
      { disposition: 'form-data; name="note"', data: Buffer.from('CD from the local hospital, 2 studies') },
      { disposition: 'form-data; name="file"; filename="letter.pdf"', contentType: 'application/pdf', data: LETTER },
    ]);
    expect(res.status).toBe(202);
    expect(((await res.json()) as UploadView).files.map((f) => f.name)).toEqual(['letter.pdf']);
  });

  it('an application/octet-stream part without a filename is a file: taken under a generated name', async () => {
    const caseId = await openCase(svc, cm);
    const res = await postParts(caseId, [{ disposition: 'form-data; name="file"', contentType: 'application/octet-stream', data: LETTER }]);
    expect(res.status).toBe(202);
    expect(((await res.json()) as UploadView).files.map((f) => [f.name, f.kind])).toEqual([['file-1', 'pdf']]);
  });
});

describe('file names are shown honestly', () => {
  it('storableFileName: controls and bidi formatting characters become U+FFFD; other text is kept', () => {
    expect(storableFileName('invoice\u202Efdp.exe')).toBe('invoice\uFFFDfdp.exe');
    for (const c of ['\u202A', '\u202B', '\u202C', '\u202D', '\u202E', '\u2066', '\u2067', '\u2068', '\u2069', '\u200E', '\u200F', '\u061C', '\u0085', '\u009B', '\u2028', '\t', '\u0000']) {
      expect([c.codePointAt(0), storableFileName(`a${c}b.pdf`)]).toEqual([c.codePointAt(0), 'a\uFFFDb.pdf']);
    }
    expect(storableFileName('Adán_Portillo 日本語 صورة.pdf')).toBe('Adán_Portillo 日本語 صورة.pdf');
    expect(storableFileName('ab\uD800')).toBe('ab\uFFFD');
    expect(cleanFileName('C:\\Users\\x\\scan\u202Egpj.exe', 0)).toBe('scan\uFFFDgpj.exe');
    expect(cleanFileName('\u202E', 2)).toBe('\uFFFD');
  });

  it('a multipart file name with a right-to-left override, and zip entries with isolates or C1 controls, are listed with U+FFFD in their place', async () => {
    const caseId = await openCase(svc, cm);
    const res = await postUpload(svc, cm, caseId, [
      { name: 'invoice\u202Efdp.exe', data: LETTER },
      { name: 'cd\u2067.zip', data: buildZip([{ name: 'DICOM/\u2066IM1\u2069.dcm', data: CR }, { name: 'report\u009B.pdf', data: LETTER }]) },
    ]);
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as UploadView;
    expect(accepted.files.map((f) => f.name)).toEqual(['invoice\uFFFDfdp.exe', 'cd\uFFFD.zip']);
    const done = await eventually(
      async () => (await uploads(caseId)).find((u) => u.uploadId === accepted.uploadId),
      (u) => u?.state === 'ingested',
    );
    expect(done?.files.map((f) => f.name)).toEqual(['invoice\uFFFDfdp.exe', 'cd\uFFFD.zip', 'DICOM/\uFFFDIM1\uFFFD.dcm', 'report\uFFFD.pdf']);
    const shown = JSON.stringify(done);
    expect(shown).not.toMatch(/[\u202A-\u202E\u2066-\u2069\u0080-\u009F]/);
  });
});
