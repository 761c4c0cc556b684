/**
 * `GET /api/cases/:id/uploads/files/:fileId` when the stored bytes are gone from the blob store (a
 * data folder not mounted, a restore that missed it): a clear problem naming what is missing, not an
 * anonymous 500.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BlobStore } from '../../src/blobs/blob-store';
import { startCaseManagerService } from '../support/case-manager';
import { startForFile } from '../support/for-file';
import { openCaseIn } from '../support/opinion-case';
import type { TestService } from '../support/service';
import { SHARED_DATA } from '../support/synthea';

describe('download of an uploaded file', () => {
  let svc: TestService;
  let cm: string;

  startForFile(() => startCaseManagerService({}, 'cm-download'), (s) => ({ svc, cm } = s));

  async function upload(name: string): Promise<{ route: string; data: Buffer }> {
    const caseId = await openCaseIn(svc, cm, 'collecting_records');
    const data = fs.readFileSync(path.join(SHARED_DATA, 'pdf/minimal-document.pdf'));
    const form = new FormData();
    form.append('file', new Blob([data]), name);
    const posted = await fetch(`${svc.url}/api/cases/${caseId}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${cm}` }, body: form });
    expect(posted.status).toBe(202);
    const { files } = (await posted.json()) as { files: { id: string }[] };
    return { route: `/api/cases/${caseId}/uploads/files/${files[0]?.id ?? ''}`, data };
  }

  it('answers the bytes as received', async () => {
    const { route, data } = await upload('letter.pdf');
    const res = await svc.request('GET', route, { token: cm });
    expect({ status: res.status, same: Buffer.from(await res.arrayBuffer()).equals(data) }).toEqual({ status: 200, same: true });
  });

  it('answers a problem that says the stored bytes are missing when the blob is gone', async () => {
    const { route, data } = await upload('scan.pdf');
    const blobs = new BlobStore(path.join(svc.config.dataDir, 'blobs'));
    const sha256 = createHash('sha256').update(data).digest('hex');
    fs.rmSync(blobs.pathOf(sha256));
    const res = await svc.request('GET', route, { token: cm });
    const body = (await res.json()) as { title: string; detail: string };
    expect({ status: res.status, type: res.headers.get('content-type') }).toEqual({ status: 500, type: expect.stringContaining('application/problem+json') });
    expect(body.title).toBe('Stored file missing');
    expect(body.detail).toContain('blob store');
    // The file's name is the family's (it may name the child): not in the answer.
    expect(body.detail).not.toContain('scan.pdf');
  });
});
