import http from 'node:http';
import { startForFile } from '../support/for-file';
import { ReviewClient } from '../support/review-case';
import { refuseWrites } from '../support/pg-fault';
import { eventually, startTestService, type TestService } from '../support/service';

/**
 * The access audit (`audit_log`, `GET /api/cases/:id/access-log`) must hold every read of a case's
 * PHI, also one whose client went away before the answer was fully sent: the bytes it received were
 * disclosed all the same. Real service, PostgreSQL and Redis.
 * The row was written on the response's `finish` only, which never fires when the client aborts a
 * streamed answer; it is now written on `close` too (once per request). And it was written only after
 * the answer was sent, so a crash (or a failed write) right after answering lost the access: a
 * request reaching its handler is now on record before the handler runs, or is not carried out.
 */
let svc: TestService;
startForFile(() => startTestService(), (started) => (svc = started));

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

interface AuditRow {
  status: number | null;
  route: string;
}

/** The audit rows of `actor` (read straight from the table: the access-log route hides answers still being written). */
async function auditRowsOf(actor: string): Promise<AuditRow[]> {
  return (await svc.service.db.query<AuditRow>('SELECT status, route FROM audit_log WHERE actor_sub = $1 ORDER BY id', [actor])).rows;
}

it('puts a read on record before answering it: when the write after the answer fails, the access stays on record', async () => {
  const cm = new ReviewClient(svc, await svc.token('case_manager', 'cm-sec-before'));
  const caseId = await cm.openCase();
  const reader = await svc.token('case_manager', 'cm-sec-before-reader');
  // Every write made once an answer is sent is refused, as if the service had stopped right after sending it.
  const late = await refuseWrites(svc.service.db, { name: 'audit_late_insert', table: 'audit_log', operation: 'INSERT', when: 'NEW.status IS NOT NULL' });
  const lateUpdate = await refuseWrites(svc.service.db, { name: 'audit_late_update', table: 'audit_log', operation: 'UPDATE', when: 'true' });
  try {
    const read = await svc.request('GET', `/api/cases/${caseId}`, { token: reader });
    expect(read.status).toBe(200);
    await eventually(() => late.refusals().then(async (n) => n + (await lateUpdate.refusals())), (n) => n > 0, 10_000);
  } finally {
    await late.remove();
    await lateUpdate.remove();
  }
  expect(await auditRowsOf('cm-sec-before-reader')).toEqual([{ status: null, route: '/api/cases/:id' }]);
  // While it may still be being answered the access log leaves it out (an answer logs within
  // milliseconds); once it is older than that, the privacy officer sees it, its answer not recorded.
  await svc.service.db.query(`UPDATE audit_log SET at = at - interval '1 hour' WHERE actor_sub = $1`, ['cm-sec-before-reader']);
  const admin = await svc.token('admin', 'admin-sec-before');
  const log = (await (await svc.request('GET', `/api/cases/${caseId}/access-log`, { token: admin })).json()) as { items: Record<string, unknown>[] };
  const entry = log.items.find((e) => e.actor === 'cm-sec-before-reader');
  expect(entry).toMatchObject({ method: 'GET', route: '/api/cases/:id', answerRecorded: false });
  expect(entry).not.toHaveProperty('status');
}, 60_000);

it('answers nothing it could not put on record first (503), and logs that refusal', async () => {
  const cm = new ReviewClient(svc, await svc.token('case_manager', 'cm-sec-closed'));
  const caseId = await cm.openCase();
  const reader = await svc.token('case_manager', 'cm-sec-closed-reader');
  const opening = await refuseWrites(svc.service.db, { name: 'audit_opening', table: 'audit_log', operation: 'INSERT', when: 'NEW.status IS NULL' });
  let read: Response;
  try {
    read = await svc.request('GET', `/api/cases/${caseId}`, { token: reader });
  } finally {
    await opening.remove();
  }
  expect(read.status).toBe(503);
  const body = await read.text();
  expect(body).toMatch(/access audit/);
  expect(body).not.toContain('Marrowvale');
  expect(JSON.parse(body)).not.toHaveProperty('intake');
  const rows = await eventually(() => auditRowsOf('cm-sec-closed-reader'), (r) => r.length > 0, 10_000);
  expect(rows).toEqual([{ status: 503, route: '/api/cases/:id' }]);
}, 60_000);

it("puts a case list's read on the access log of each case it showed (children's names and birth dates), recorded before it is answered", async () => {
  const opener = new ReviewClient(svc, await svc.token('case_manager', 'cm-list-opener'));
  const caseId = await opener.openCase();
  const lister = await svc.token('case_manager', 'cm-list');
  const list = await svc.request('GET', '/api/cases?limit=200', { token: lister });
  expect(list.status).toBe(200);
  const listed = ((await list.json()) as { items: { id: string }[] }).items.map((item) => item.id);
  expect(listed).toContain(caseId);

  const admin = await svc.token('admin', 'admin-list-audit');
  type Log = { items: { actor: string; method: string; route: string; status?: number }[] };
  const log = await eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/access-log`, { token: admin })).json()) as Log,
    (l) => l.items.some((e) => e.actor === 'cm-list' && e.status !== undefined),
    15_000,
  );
  expect(log.items.filter((e) => e.actor === 'cm-list')).toEqual([expect.objectContaining({ method: 'GET', route: '/api/cases', status: 200 })]);
  // One row for the request, with the ids it disclosed and nothing else about them.
  const { rows } = await svc.service.db.query<{ case_id: string | null; disclosed: boolean; n: number }>(
    'SELECT case_id, $2::uuid = ANY(disclosed_case_ids) AS disclosed, cardinality(disclosed_case_ids) AS n FROM audit_log WHERE actor_sub = $1',
    ['cm-list', caseId],
  );
  expect(rows).toEqual([{ case_id: null, disclosed: true, n: listed.length }]);

  // A list whose cases cannot be put on record is not answered.
  const refused = await refuseWrites(svc.service.db, { name: 'audit_disclosed', table: 'audit_log', operation: 'UPDATE', when: 'NEW.disclosed_case_ids IS NOT NULL' });
  let unrecorded: Response;
  try {
    unrecorded = await svc.request('GET', '/api/cases?limit=200', { token: await svc.token('case_manager', 'cm-list-unrecorded') });
  } finally {
    await refused.remove();
  }
  expect(unrecorded.status).toBeGreaterThanOrEqual(500);
  expect(await unrecorded.text()).not.toContain('Marrowvale');
}, 60_000);
