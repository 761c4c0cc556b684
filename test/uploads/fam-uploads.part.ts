/**
 * Family uploads as families and case managers meet them: real service (API + workers), real
 * PostgreSQL and Redis, real HTTP, real PDFs from ../shared/data (read in place).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { openCase, startCaseManagerService } from '../support/case-manager';
import { startForFile } from '../support/for-file';
import { eventually, type TestService } from '../support/service';
import { listUploads, postUpload, type UploadFile, type UploadView } from '../support/uploads';

const DATA = path.resolve(__dirname, '../../../shared/data');
const pdf = (name: string): Buffer => fs.readFileSync(path.join(DATA, 'pdf', name));

/** Small enough for two sample PDFs sent at once to pass it (each alone does not). */
const MAX_CASE_BYTES = 24 * 1024;

let svc: TestService;
let cm: string;

startForFile(() => startCaseManagerService({ MAX_UPLOAD_CASE_BYTES: String(MAX_CASE_BYTES) }), (s) => ({ svc, cm } = s));

async function cancel(caseId: string): Promise<void> {
  const res = await svc.request('POST', `/api/cases/${caseId}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'The family withdrew the request.' } });
  expect(res.status).toBe(200);
}

const upload = (caseId: string, files: UploadFile[], token = cm): Promise<Response> => postUpload(svc, token, caseId, files);
const listed = (caseId: string): Promise<UploadView[]> => listUploads(svc, cm, caseId);

describe('files a family has, taken as what they are', () => {
  it('a PDF with leading junk before %PDF- (a portal or mail gateway header; every viewer opens it) is taken and read as a PDF, not refused with 415', async () => {
    const caseId = await openCase(svc, cm);
    const prefixed = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\n\r\n', 'latin1'), pdf('minimal-document.pdf')]);
    const res = await upload(caseId, [{ name: 'portal-export.pdf', data: prefixed }]);
    expect(res.status).toBe(202);
    const { uploadId } = (await res.json()) as UploadView;
    const done = await eventually(
      async () => (await listed(caseId)).find((u) => u.uploadId === uploadId),
      (u) => u?.state === 'ingested' || u?.state === 'failed',
    );
    expect(done?.files.map((f) => [f.kind, f.state, f.reason])).toEqual([['pdf', 'parsed', null]]);
  });

  it('a very long file name in emoji is shortened between whole characters and keeps its extension', async () => {
    const caseId = await openCase(svc, cm);
    const res = await upload(caseId, [{ name: `${'📄'.repeat(300)} scan.pdf`, data: pdf('inline-image.pdf') }]);
    expect(res.status).toBe(202);
    const name = ((await res.json()) as UploadView).files[0]?.name ?? '';
    expect(name).not.toContain('\ufffd');
    expect(name.endsWith('📄.pdf')).toBe(true);
    expect(Array.from(name)).toHaveLength(255);
  });
});

/** A PDF no other test sends (a comment after its end): its blob is this test's alone. */
const pdfOfOwn = (name: string, tag: string): Buffer => Buffer.concat([pdf(name), Buffer.from(`\n% ${tag}\n`)]);
const stagingDir = (): string => path.join(svc.config.dataDir, 'blobs', 'tmp');
const stagedFiles = (): string[] => (fs.existsSync(stagingDir()) ? fs.readdirSync(stagingDir()) : []);
/** Where the blob store keeps `data` (DATA_DIR/blobs/aa/bb/<sha256>). */
function blobPathOf(data: Buffer): string {
  const sha256 = createHash('sha256').update(data).digest('hex');
  return path.join(svc.config.dataDir, 'blobs', sha256.slice(0, 2), sha256.slice(2, 4), sha256);
}

/**
 * An upload of one file sent in two halves: answers once the first half is staged (the request is
 * then past every check made before the files stream in); `finish` sends the rest and awaits the answer.
 */
async function startUploadInHalves(caseId: string, file: Buffer, headers: Record<string, string> = {}): Promise<{ finish(): Promise<Response> }> {
  const boundary = 'fam-upload-boundary';
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  const answer = fetch(`${svc.url}/api/cases/${caseId}/uploads`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cm}`, 'content-type': `multipart/form-data; boundary=${boundary}`, ...headers },
    body,
    duplex: 'half',
  } as RequestInit & { duplex: 'half' });
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="letter.pdf"\r\nContent-Type: application/pdf\r\n\r\n`;
  controller?.enqueue(Buffer.concat([Buffer.from(head), file.subarray(0, 2000)]));
  await eventually(async () => stagedFiles().length, (n) => n > 0, 10_000);
  return {
    finish() {
      controller?.enqueue(Buffer.concat([file.subarray(2000), Buffer.from(`\r\n--${boundary}--\r\n`)]));
      controller?.close();
      return answer;
    },
  };
}

async function uploadRows(caseId: string): Promise<number> {
  const { rows } = await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM uploads WHERE case_id = $1', [caseId]);
  return rows[0]?.n ?? -1;
}

describe('a case that ended takes nothing more from the portal', () => {
  it('a case cancelled while a file streams in: 409, nothing recorded, nothing ingested, no file of it left on disk', async () => {
    const caseId = await openCase(svc, cm);
    const file = pdfOfOwn('minimal-document.pdf', 'cancelled while streaming');
    const streaming = await startUploadInHalves(caseId, file);
    // The file is being staged (the case was open when the request began): now the case is cancelled.
    await cancel(caseId);
    const res = await streaming.finish();
    expect(res.status).toBe(409);
    expect(((await res.json()) as { detail: string }).detail).toContain('cancelled');
    expect(await uploadRows(caseId)).toBe(0);
    // A withdrawn family's file stays nowhere: not in the blob store, not staged.
    expect(fs.existsSync(blobPathOf(file))).toBe(false);
    expect(stagedFiles()).toEqual([]);
  });

  it('no upload token is issued for a cancelled case (its tokens were revoked with it): 409', async () => {
    const caseId = await openCase(svc, cm);
    await cancel(caseId);
    const res = await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token: cm });
    expect(res.status).toBe(409);
    const body = (await res.json()) as { detail: string; token?: string };
    expect(body.token).toBeUndefined();
    expect(body.detail).toContain('cancelled');
    const tokens = (await (await svc.request('GET', `/api/cases/${caseId}/upload-tokens`, { token: cm })).json()) as { items: unknown[] };
    expect(tokens.items).toEqual([]);
  });
});

describe('an upload refused once its files are in leaves none of them on disk', () => {
  it('another upload landed while this one streamed and the two pass the case limit: 413, its file neither stored nor staged', async () => {
    const caseId = await openCase(svc, cm);
    const refused = pdfOfOwn('minimal-document.pdf', 'past the case limit');
    const landed = pdfOfOwn('libreoffice-writer-password.pdf', 'landed first');
    expect(refused.length + landed.length).toBeGreaterThan(MAX_CASE_BYTES);
    const streaming = await startUploadInHalves(caseId, refused);
    expect((await upload(caseId, [{ name: 'other.pdf', data: landed }])).status).toBe(202);
    const res = await streaming.finish();
    expect(res.status).toBe(413);
    expect(await uploadRows(caseId)).toBe(1);
    expect(fs.existsSync(blobPathOf(landed))).toBe(true);
    expect(fs.existsSync(blobPathOf(refused))).toBe(false);
    expect(stagedFiles()).toEqual([]);
  });

  it('a resend under the same Idempotency-Key with other files landed first: 422, its file neither stored nor staged', async () => {
    const caseId = await openCase(svc, cm);
    const key = `fam-${caseId}`;
    const refused = pdfOfOwn('inline-image.pdf', 'other files under a used key');
    const landed = pdfOfOwn('inline-image.pdf', 'first under the key');
    const streaming = await startUploadInHalves(caseId, refused, { 'idempotency-key': key });
    const form = new FormData();
    form.append('file', new Blob([landed]), 'scan.pdf');
    const first = await fetch(`${svc.url}/api/cases/${caseId}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${cm}`, 'idempotency-key': key }, body: form });
    expect(first.status).toBe(202);
    const res = await streaming.finish();
    expect(res.status).toBe(422);
    expect(await uploadRows(caseId)).toBe(1);
    expect(fs.existsSync(blobPathOf(landed))).toBe(true);
    expect(fs.existsSync(blobPathOf(refused))).toBe(false);
    expect(stagedFiles()).toEqual([]);
  });
});
