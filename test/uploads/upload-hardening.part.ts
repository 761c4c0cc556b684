/**
 * Upload hardening, end to end (real service, PostgreSQL, Redis, HTTP; real files of ../shared/data
 * read in place, crafted files built here):
 * - what zips inflate to counts against MAX_UPLOAD_CASE_BYTES (two zips that together inflate past it:
 *   the second is refused, the case stays within its limit);
 * - two files with one SOP Instance UID but different bytes are both kept, both flagged, the study
 *   tagged for review;
 * - an upload token revoked while its upload streams: 401, nothing kept;
 * - a stored file whose bytes no longer match its SHA-256 is not answered whole.
 */
import http from 'node:http';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, ImagingStudy } from 'fhir/r4';
import { BlobStore } from '../../src/blobs/blob-store';
import { UPLOAD_FLAG_SYSTEM } from '../../src/uploads/origin';
import { startCaseManagerService } from '../support/case-manager';
import { startForFile } from '../support/for-file';
import { openCaseIn } from '../support/opinion-case';
import { eventually, type TestService } from '../support/service';
import { postUpload, type UploadFile } from '../support/uploads';
import { SHARED_DATA } from '../support/synthea';
import { buildZip } from './zip-writer';

const MAX_CASE_BYTES = 2 * 1024 * 1024;

let svc: TestService;
let cm: string;

startForFile(() => startCaseManagerService({ MAX_UPLOAD_CASE_BYTES: String(MAX_CASE_BYTES) }, 'cm-hardening'), (s) => ({ svc, cm } = s));

interface FileView {
  id: string;
  name: string;
  kind: string;
  size: number;
  sha256: string | null;
  state: string;
  reason: string | null;
  fromZip?: string;
}
interface UploadView {
  uploadId: string;
  state: string;
  bundleVersion?: number;
  files: FileView[];
}

const upload = (caseId: string, files: UploadFile[]): Promise<Response> => postUpload(svc, cm, caseId, files);

async function uploads(caseId: string): Promise<UploadView[]> {
  const res = await svc.request('GET', `/api/cases/${caseId}/uploads`, { token: cm });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: UploadView[] }).items;
}

async function ingested(caseId: string, uploadId: string): Promise<UploadView> {
  return (await eventually(
    async () => (await uploads(caseId)).find((u) => u.uploadId === uploadId),
    (u) => u?.state === 'ingested',
  )) as UploadView;
}

/** `bytes` of data compressing about 4:1 (random symbols of a 4-letter alphabet): under the zip ratio limit. */
function moderatelyCompressible(bytes: number, seed: number): Buffer {
  const out = Buffer.alloc(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = 0x41 + ((x >>> 0) & 3);
  }
  return out;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('what zips inflate to counts against MAX_UPLOAD_CASE_BYTES', () => {
  it('two zips that together inflate past the limit: the second is refused with the reason, the case stays within it', async () => {
    const caseId = await openCaseIn(svc, cm, 'collecting_records');
    const inflated = Math.floor(MAX_CASE_BYTES * 0.6);
    // The entries themselves are kept: the refused zip's must be checked absent from the store below.
    const entries = [1, 2].map((n) => buildZipEntries(n, inflated));
    const zips = entries.map((files, k) => buildZip(files.map((data, i) => ({ name: `CD${k + 1}/${'AB'[i] ?? i}`, data }))));
    // Each zip is small; together they are well within the limit as uploaded.
    expect(zips[0]!.length + zips[1]!.length).toBeLessThan(MAX_CASE_BYTES / 2);
    const res = await upload(caseId, [
      { name: 'cd1.zip', data: zips[0]! },
      { name: 'cd2.zip', data: zips[1]! },
    ]);
    expect(res.status).toBe(202);
    const { uploadId } = (await res.json()) as { uploadId: string };
    const done = await ingested(caseId, uploadId);
    const top = done.files.filter((f) => f.fromZip === undefined);
    expect(top.map((f) => [f.name, f.state])).toEqual([
      ['cd1.zip', 'parsed'],
      ['cd2.zip', 'unparsed'],
    ]);
    expect(top[1]?.reason).toMatch(/zip archive refused: .*case's upload limit of 2\.0 MB/);
    // Only the first zip's files were extracted; what the case holds stays within its limit.
    expect(done.files.filter((f) => f.fromZip === top[0]?.id)).toHaveLength(2);
    expect(done.files.filter((f) => f.fromZip === top[1]?.id)).toHaveLength(0);
    // A zip counts once: as the larger of itself and what was extracted from it.
    const extractedFrom = (zipId: string | undefined): number => done.files.filter((f) => f.fromZip === zipId).reduce((n, f) => n + f.size, 0);
    const held = top.reduce((n, z) => n + Math.max(z.size, extractedFrom(z.id)), 0);
    expect(held).toBe(zips[1]!.length + extractedFrom(top[0]?.id));
    expect(held).toBeLessThanOrEqual(MAX_CASE_BYTES);
    const listed = (await (await svc.request('GET', `/api/cases/${caseId}/uploads`, { token: cm })).json()) as { bytes: number; maxBytes: number };
    expect(listed).toMatchObject({ bytes: held, maxBytes: MAX_CASE_BYTES });
    // The refused zip's entries are not in the blob store.
    const blobs = new BlobStore(path.join(svc.config.dataDir, 'blobs'));
    for (const data of entries[1]!) expect(fs.existsSync(blobs.pathOf(sha256(data)))).toBe(false);
    // And a later upload counts the extracted bytes too: one byte more than what is left is refused.
    const more = await upload(caseId, [{ name: 'big.pdf', data: Buffer.concat([fs.readFileSync(path.join(SHARED_DATA, 'pdf/minimal-document.pdf')), Buffer.alloc(MAX_CASE_BYTES - held)]) }]);
    expect(more.status).toBe(413);
  });
});

describe('a zip counts once against MAX_UPLOAD_CASE_BYTES', () => {
  it('as the larger of itself and its files: two zips inflating to 45 % of the limit each are both extracted', async () => {
    const caseId = await openCaseIn(svc, cm, 'collecting_records');
    const inflated = Math.floor(MAX_CASE_BYTES * 0.45);
    const zips = [3, 4].map((n) => buildZip(buildZipEntries(n, inflated).map((data, i) => ({ name: `CD${n}/${i}`, data }))));
    const res = await upload(caseId, zips.map((data, i) => ({ name: `cd${i}.zip`, data })));
    expect(res.status).toBe(202);
    const { uploadId } = (await res.json()) as { uploadId: string };
    const done = await ingested(caseId, uploadId);
    // Counted as zip plus files, the second would have been refused (2 × (45 % + its own size) > 100 %).
    expect(done.files.filter((f) => f.fromZip === undefined).map((f) => f.state)).toEqual(['parsed', 'parsed']);
    const listed = (await (await svc.request('GET', `/api/cases/${caseId}/uploads`, { token: cm })).json()) as { bytes: number };
    expect(listed.bytes).toBe(done.files.filter((f) => f.fromZip !== undefined).reduce((n, f) => n + f.size, 0));
  });
});

function buildZipEntries(n: number, inflated: number): Buffer[] {
  return [moderatelyCompressible(inflated / 2, n * 7), moderatelyCompressible(inflated / 2, n * 11)];
}

describe('two files with one SOP Instance UID but different bytes', () => {
  it('are both kept and flagged, and their study is tagged for review', async () => {
    const caseId = await openCaseIn(svc, cm, 'collecting_records');
    const original = fs.readFileSync(path.join(SHARED_DATA, 'dicom/pydicom__MR_small_implicit.dcm'));
    const edited = Buffer.from(original);
    // One pixel byte changed (the file ends in its Pixel Data).
    const last = edited.length - 1;
    edited[last] = (edited[last] ?? 0) ^ 0x01;
    const res = await upload(caseId, [
      { name: 'IM1', data: original },
      { name: 'IM1-copy', data: edited },
    ]);
    expect(res.status).toBe(202);
    const { uploadId } = (await res.json()) as { uploadId: string };
    const done = await ingested(caseId, uploadId);
    expect(done.files.map((f) => f.state)).toEqual(['flagged', 'flagged']);
    for (const f of done.files) expect(f.reason).toContain('SOP Instance UID shared by different content');
    const bundle = (await (await svc.request('GET', `/api/cases/${caseId}/bundle?version=${done.bundleVersion ?? 0}`, { token: cm })).json()) as Bundle;
    const studies = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is ImagingStudy => r?.resourceType === 'ImagingStudy');
    expect(studies).toHaveLength(1);
    const study = studies[0]!;
    expect((study.meta?.tag ?? []).filter((t) => t.system === UPLOAD_FLAG_SYSTEM).map((t) => t.code)).toContain('sop-instance-uid-conflict');
    // Neither file vanished: both instances are listed, each with its own blob.
    const instances = (study.series ?? []).flatMap((s) => s.instance ?? []);
    expect(instances).toHaveLength(2);
    const blobsOf = instances.map((i) => i.extension?.find((e) => e.url.endsWith('/upload-blob-sha256'))?.valueString).sort();
    expect(blobsOf).toEqual([sha256(original), sha256(edited)].sort());
  });
});

describe('an upload token revoked while its upload streams', () => {
  it('answers 401 and keeps nothing', async () => {
    const caseId = await openCaseIn(svc, cm, 'collecting_records');
    const issued = (await (await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token: cm })).json()) as { token: string; tokenId: string };
    const data = Buffer.concat([fs.readFileSync(path.join(SHARED_DATA, 'pdf/minimal-document.pdf')), Buffer.from(`%${'x'.repeat(256 * 1024)}\n`)]);
    const boundary = 'sob-test-boundary-7f3a';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="portal.pdf"\r\nContent-Type: application/pdf\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const half = Math.floor(data.length / 2);
    const url = new URL(`${svc.url}/api/cases/${caseId}/uploads`);
    const answer = new Promise<{ status: number; body: string; authenticate: string | undefined }>((resolve, reject) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { authorization: `Bearer ${issued.token}`, 'content-type': `multipart/form-data; boundary=${boundary}` } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), authenticate: res.headers['www-authenticate'] }));
        },
      );
      req.on('error', reject);
      req.write(Buffer.concat([head, data.subarray(0, half)]));
      // The first half is streaming in; the case manager revokes the token; then the rest arrives.
      setTimeout(() => {
        void (async () => {
          const revoked = await svc.request('DELETE', `/api/cases/${caseId}/upload-tokens/${issued.tokenId}`, { token: cm });
          expect(revoked.status).toBe(204);
          req.end(Buffer.concat([data.subarray(half), tail]));
        })().catch(reject);
      }, 300);
    });
    const res = await answer;
    expect(res.status).toBe(401);
    expect(res.authenticate).toContain('invalid_token');
    expect(await uploads(caseId)).toEqual([]);
    const blobs = new BlobStore(path.join(svc.config.dataDir, 'blobs'));
    expect(fs.existsSync(blobs.pathOf(sha256(data)))).toBe(false);
  });

  it('a token still valid at the end keeps the upload (202)', async () => {
    const caseId = await openCaseIn(svc, cm, 'collecting_records');
    const issued = (await (await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token: cm })).json()) as { token: string };
    const form = new FormData();
    form.append('file', new Blob([fs.readFileSync(path.join(SHARED_DATA, 'pdf/minimal-document.pdf'))]), 'portal.pdf');
    const res = await fetch(`${svc.url}/api/cases/${caseId}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${issued.token}` }, body: form });
    expect(res.status).toBe(202);
  });
});

describe('a stored file whose bytes no longer match its SHA-256', () => {
  it('is not answered whole: the download fails', async () => {
    const caseId = await openCaseIn(svc, cm, 'collecting_records');
    const data = fs.readFileSync(path.join(SHARED_DATA, 'pdf/minimal-document.pdf'));
    const res = await upload(caseId, [{ name: 'letter.pdf', data }]);
    expect(res.status).toBe(202);
    const { files } = (await res.json()) as { files: { id: string }[] };
    const route = `/api/cases/${caseId}/uploads/files/${files[0]?.id ?? ''}`;
    // Intact: answered whole.
    const intact = await svc.request('GET', route, { token: cm });
    expect(Buffer.from(await intact.arrayBuffer()).equals(data)).toBe(true);
    // One byte flipped on disk.
    const blob = new BlobStore(path.join(svc.config.dataDir, 'blobs')).pathOf(sha256(data));
    const fd = fs.openSync(blob, 'r+');
    try {
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, 100);
      b[0] = (b[0] ?? 0) ^ 0xff;
      fs.writeSync(fd, b, 0, 1, 100);
    } finally {
      fs.closeSync(fd);
    }
    // The connection is cut before the body ends (here before the headers: the file is one chunk, held back).
    const download = async (): Promise<Buffer> => Buffer.from(await (await svc.request('GET', route, { token: cm })).arrayBuffer());
    await expect(download()).rejects.toThrow();
    // A larger damaged file: the response started, its body is cut short, never the wrong bytes whole.
    const large = Buffer.concat([data, Buffer.from(`%${'y'.repeat(512 * 1024)}\n`)]);
    const big = await upload(caseId, [{ name: 'large.pdf', data: large }]);
    expect(big.status).toBe(202);
    const bigId = ((await big.json()) as { files: { id: string }[] }).files[0]?.id ?? '';
    const bigBlob = new BlobStore(path.join(svc.config.dataDir, 'blobs')).pathOf(sha256(large));
    const bfd = fs.openSync(bigBlob, 'r+');
    try {
      fs.writeSync(bfd, Buffer.from('Z'), 0, 1, large.length - 10);
    } finally {
      fs.closeSync(bfd);
    }
    const started = await svc.request('GET', `/api/cases/${caseId}/uploads/files/${bigId}`, { token: cm });
    expect(started.status).toBe(200);
    await expect(started.arrayBuffer()).rejects.toThrow();
  });
});
