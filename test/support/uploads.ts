/**
 * A family's upload through the real HTTP API (multipart, as the upload page sends it), and its
 * ingestion waited for: what the upload tests share.
 */
import type { Bundle } from 'fhir/r4';
import { eventually, type TestService } from './service';

/** One file of an upload, as `GET /api/cases/:id/uploads` lists it (the fields the tests read). */
export interface FileView {
  id: string;
  name: string;
  kind: string;
  state: string;
  reason: string | null;
  fromZip?: string;
}

/** One upload of a case, as `GET /api/cases/:id/uploads` lists it. */
export interface UploadView<F extends FileView = FileView> {
  uploadId: string;
  state: string;
  bundleVersion?: number;
  files: F[];
}

/** A file to upload: its name as the browser sends it, and its bytes. */
export interface UploadFile {
  readonly name: string;
  readonly data: Buffer;
}

/** `POST /api/cases/:id/uploads` with the files as multipart `file` parts; the answer unread. */
export async function postUpload(svc: TestService, token: string, caseId: string, files: readonly UploadFile[]): Promise<Response> {
  const form = new FormData();
  for (const f of files) form.append('file', new Blob([f.data]), f.name);
  return fetch(`${svc.url}/api/cases/${caseId}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
}

/** The case's uploads (`GET /api/cases/:id/uploads`, expected 200). */
export async function listUploads<F extends FileView = FileView>(svc: TestService, token: string, caseId: string): Promise<UploadView<F>[]> {
  const res = await svc.request('GET', `/api/cases/${caseId}/uploads`, { token });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: UploadView<F>[] }).items;
}

/**
 * Uploads the files (expected 202), waits until ingestion ends (at most 90 s), expects it `ingested`,
 * and reads the case bundle version the upload was assembled into.
 */
export async function uploadAndIngest<F extends FileView = FileView>(
  svc: TestService,
  token: string,
  caseId: string,
  files: readonly UploadFile[],
): Promise<{ upload: UploadView<F>; bundle: Bundle }> {
  const res = await postUpload(svc, token, caseId, files);
  expect(res.status).toBe(202);
  const { uploadId } = (await res.json()) as { uploadId: string };
  const upload = await eventually(
    async () => (await listUploads<F>(svc, token, caseId)).find((u) => u.uploadId === uploadId),
    (u) => u?.state === 'ingested' || u?.state === 'failed',
    90_000,
  );
  expect(upload?.state).toBe('ingested');
  if (!upload) throw new Error('upload not listed');
  const bundle = await svc.request('GET', `/api/cases/${caseId}/bundle?version=${upload.bundleVersion ?? 0}`, { token });
  expect(bundle.status).toBe(200);
  return { upload, bundle: (await bundle.json()) as Bundle };
}
