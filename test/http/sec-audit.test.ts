import http from 'node:http';
import { ReviewClient } from '../support/review-case';
import { eventually, startTestService, type TestService } from '../support/service';

/**
 * The access audit (`audit_log`, `GET /api/cases/:id/access-log`) must hold every read of a case's
 * PHI, also one whose client went away before the answer was fully sent: the bytes it received were
 * disclosed all the same. Real service, PostgreSQL and Redis.
 * The row was written on the response's `finish` only, which never fires when the client aborts a
 * streamed answer; it is now written on `close` too (once per request).
 */
let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
}, 60_000);
afterAll(async () => {
  await svc.stop();
});

/** GETs `path`, reads the first chunk of the body, then drops the connection; the status seen. */
function readFirstChunkAndAbort(path: string, token: string): Promise<number | undefined> {
  const url = new URL(`${svc.url}${path}`);
  return new Promise((resolve) => {
    const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve(res.statusCode);
      });
    });
    req.on('error', () => resolve(undefined));
  });
}

it('records a download of an uploaded file that the client cut off after the first bytes', async () => {
  const cm = new ReviewClient(svc, await svc.token('case_manager', 'cm-sec-audit'));
  const caseId = await cm.openCase();
  const reader = await svc.token('case_manager', 'cm-sec-reader');
  // A 40 MB PDF: far more than the socket buffers hold, so the answer is still streaming when cut.
  const form = new FormData();
  form.append('file', new Blob([Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(40 * 1024 * 1024, 0x20), Buffer.from('\n%%EOF\n')])]), 'large-scan.pdf');
  const uploaded = await fetch(`${svc.url}/api/cases/${caseId}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${reader}` }, body: form });
  expect(uploaded.status).toBe(202);
  const fileId = ((await uploaded.json()) as { files: { id: string }[] }).files[0]?.id ?? '';

  expect(await readFirstChunkAndAbort(`/api/cases/${caseId}/uploads/files/${fileId}`, reader)).toBe(200);

  const admin = await svc.token('admin', 'admin-sec-audit');
  type Log = { items: { actor: string; method: string; route: string }[] };
  const reads = (log: Log): string[] => log.items.filter((e) => e.actor === 'cm-sec-reader').map((e) => `${e.method} ${e.route}`);
  const log = await eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/access-log`, { token: admin })).json()) as Log,
    (l) => reads(l).includes('GET /api/cases/:id/uploads/files/:fileId'),
    15_000,
  );
  expect(reads(log).filter((r) => r === 'GET /api/cases/:id/uploads/files/:fileId')).toHaveLength(1);
}, 60_000);
