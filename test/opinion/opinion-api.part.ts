import { randomUUID } from 'node:crypto';
import { PDFDocument } from 'pdf-lib';
import { openCaseIn, opinionFor, referredIntake } from '../support/opinion-case';
import { pdfText } from '../support/pdf-text';
import { startSandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixturePatientId } from '../support/fixture-child';
import { eventually, startTestService, type TestService } from '../support/service';
import { CASE_ROW_LOCK } from '../../src/db/case-repository';

/** The opinion routes without a recipient: lifecycle rules, versions, the PDF, the assigned specialist. */
let svc: TestService;
let cm: string;
let specialist: string;

beforeAll(async () => {
  svc = await startTestService();
  cm = await svc.token('case_manager', 'cm-op');
  specialist = await svc.token('specialist', 'spec-op');
});
afterAll(async () => {
  await svc.stop();
});

const status = async (caseId: string): Promise<string> => ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string }).status;

it('refuses to write before assignment and to sign without a draft (409 naming the state)', async () => {
  const early = await openCaseIn(svc, cm, 'records_complete');
  const res = await svc.request('PUT', `/api/cases/${early}/opinion`, { token: specialist, body: opinionFor(referredIntake()) });
  expect(res.status).toBe(409);
  expect(await res.text()).toContain('records_complete');
  const assigned = await openCaseIn(svc, cm, 'assigned');
  expect((await svc.request('POST', `/api/cases/${assigned}/opinion/sign`, { token: specialist })).status).toBe(409);
  expect((await svc.request('GET', `/api/cases/${assigned}/report.pdf`, { token: cm })).status).toBe(404);
  const bad = await svc.request('PUT', `/api/cases/${assigned}/opinion`, { token: specialist, body: { ...opinionFor(referredIntake()), summary: '' } });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe('summary');
});

it('lets the specialist keep drafting while the case awaits the family\'s information (the status and the SLA pause stay), and sign once the review resumes', async () => {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/transitions`, { token: cm, body: { to: 'awaiting_information', reason: 'Asked the family for the MRI report' } })).status).toBe(200);
  const saved = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { summary: 'Drafted while waiting.' }) });
  expect(saved.status).toBe(200);
  expect(await status(caseId)).toBe('awaiting_information');
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(409);
  expect((await svc.request('POST', `/api/cases/${caseId}/transitions`, { token: cm, body: { to: 'in_review', reason: 'The family answered' } })).status).toBe(200);
  const signed = await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist });
  expect(signed.status).toBe(201);
  expect(((await signed.json()) as { current: { content: { summary: string } } }).current.content.summary).toBe('Drafted while waiting.');
});

it('signs versions: an amendment before delivery goes back to in_review and signs version 2 (amended)', async () => {
  const intake = referredIntake({ patient: { ...referredIntake().patient, name: { given: ['小明'], family: '王' } } });
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: { ...opinionFor(intake), specialist: { name: 'Dr. Adán Ruiz' } } })).status).toBe(200);
  expect(await status(caseId)).toBe('in_review');
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  expect(await status(caseId)).toBe('report_signed');
  // Nothing new to sign.
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(409);
  const v1 = Buffer.from(await (await svc.request('GET', `/api/cases/${caseId}/report.pdf`, { token: cm })).arrayBuffer());
  const text = (await pdfText(v1)).replace(/\s+/g, ' ');
  expect(text).toContain('小明 王');
  expect(text).toContain('Dr. Adán Ruiz');
  expect((await PDFDocument.load(v1)).getTitle()).toBe(`Second opinion report, case ${caseId}, version 1`);

  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { summary: 'Corrected summary.' }) })).status).toBe(200);
  expect(await status(caseId)).toBe('in_review');
  const signed = await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist });
  const body = (await signed.json()) as { current: { version: number; status: string; content: { summary: string } }; versions: unknown[] };
  expect(body.current).toMatchObject({ version: 2, status: 'amended', content: { summary: 'Corrected summary.' } });
  expect(body.versions).toHaveLength(2);
  const v2 = await svc.request('GET', `/api/cases/${caseId}/report.pdf?version=2`, { token: specialist });
  expect(v2.headers.get('x-report-version')).toBe('2');
  expect(await pdfText(Buffer.from(await v2.arrayBuffer()))).toContain('Corrected summary.');
  expect((await svc.request('GET', `/api/cases/${caseId}/report.pdf?version=3`, { token: cm })).status).toBe(404);
});

it('takes the name and NPI from the specialist directory and refuses another specialist when the case is assigned', async () => {
  const caseId = await openCaseIn(svc, cm, 'assigned');
  const specialistId = randomUUID();
  await svc.service.db.query(`INSERT INTO specialists (id, npi, name, specialty_codes, user_sub) VALUES ($1, '1245319599', $2, ARRAY['endocrinology'], 'spec-dir')`, [
    specialistId,
    JSON.stringify({ family: 'Okafor', given: ['Chiamaka'], prefix: ['Dr.'] }),
  ]);
  await svc.service.db.query(`INSERT INTO assignments (id, case_id, specialist_id, method, assigned_by, assigned_at) VALUES ($1, $2, $3, 'named', 'cm-op', now())`, [
    randomUUID(),
    caseId,
    specialistId,
  ]);
  const other = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(referredIntake()) });
  expect(other.status).toBe(403);
  const own = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: await svc.token('specialist', 'spec-dir'), body: opinionFor(referredIntake()) });
  expect(own.status).toBe(200);
  // The directory's name in parts too: the report's Practitioner needs name.family (US Core).
  expect(((await own.json()) as { draft: { specialist: unknown } }).draft.specialist).toEqual({
    sub: 'spec-dir', name: 'Dr. Chiamaka Okafor', npi: '1245319599', humanName: { family: 'Okafor', given: ['Chiamaka'], prefix: ['Dr.'] },
  });
});

it('refuses a specialist bound to another directory entry on a case assigned to an unbound specialist (no writing under another doctor\'s name and NPI)', async () => {
  const caseId = await openCaseIn(svc, cm, 'assigned');
  const [unbound, bound] = [randomUUID(), randomUUID()];
  await svc.service.db.query(`INSERT INTO specialists (id, npi, name, specialty_codes) VALUES ($1, '1679576722', $2, ARRAY['endocrinology'])`, [unbound, JSON.stringify({ family: 'Unbound', given: ['Ada'] })]);
  await svc.service.db.query(`INSERT INTO specialists (id, npi, name, specialty_codes, user_sub) VALUES ($1, '1962422005', $2, ARRAY['endocrinology'], 'spec-other')`, [bound, JSON.stringify({ family: 'Other', given: ['Bo'] })]);
  await svc.service.db.query(`INSERT INTO assignments (id, case_id, specialist_id, method, assigned_by, assigned_at) VALUES ($1, $2, $3, 'named', 'cm-op', now())`, [randomUUID(), caseId, unbound]);
  const other = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: await svc.token('specialist', 'spec-other'), body: opinionFor(referredIntake()) });
  expect(other.status).toBe(403);
  // A subject bound to no specialist still writes for the unbound assigned one (deployments without bound subjects).
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(referredIntake()) })).status).toBe(200);
});

interface VersionsBody {
  items: { version: number; trigger: string; sources: string[]; opinionVersions: number[]; totals: { balanced: boolean }; url: string }[];
}
interface OpinionBodyView {
  current: { version: number; records: { bundleVersion: number; url: string } | null };
}

it('keeps the case record each opinion version rests on: printed on the report, shown by the API, listed with the bundle versions', async () => {
  const caseId = await openCaseIn(svc, cm, 'assigned');
  const rebuild = async (): Promise<number> => {
    const res = await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} });
    expect(res.status).toBe(201);
    return ((await res.json()) as { version: number }).version;
  };
  const versions = async (): Promise<VersionsBody['items']> => ((await (await svc.request('GET', `/api/cases/${caseId}/bundle/versions`, { token: specialist })).json()) as VersionsBody).items;
  expect(await versions()).toEqual([]);
  expect(await rebuild()).toBe(1);

  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(referredIntake()) })).status).toBe(200);
  const signed = (await (await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).json()) as OpinionBodyView;
  expect(signed.current.records).toEqual({ bundleVersion: 1, url: `/api/cases/${caseId}/bundle?version=1` });
  const pdf = Buffer.from(await (await svc.request('GET', `/api/cases/${caseId}/report.pdf`, { token: cm })).arrayBuffer());
  expect((await pdfText(pdf)).replace(/\s+/g, ' ')).toMatch(/Records reviewed ?Case record version 1, assembled on [A-Z][a-z]+ \d{1,2}, \d{4}/);

  // New records after signing (a re-pull, a rebuild): the signed version still names version 1.
  expect(await rebuild()).toBe(2);
  const listed = await versions();
  expect(listed.map((v) => [v.version, v.trigger, v.opinionVersions])).toEqual([[2, 'rebuild', []], [1, 'rebuild', [1]]]);
  expect(listed.every((v) => v.totals.balanced && v.url.endsWith(`?version=${v.version}`))).toBe(true);
  // The case view shows the current record.
  const view = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { records: { version: number; trigger: string; opinionVersions: number[]; url: string } | null };
  expect(view.records).toMatchObject({ version: 2, trigger: 'rebuild', opinionVersions: [], url: `/api/cases/${caseId}/bundle?version=2` });

  // The amendment rests on the record current when it is signed.
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(referredIntake(), { summary: 'Amended.' }) })).status).toBe(200);
  const amended = (await (await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).json()) as OpinionBodyView;
  expect(amended.current).toMatchObject({ version: 2, records: { bundleVersion: 2 } });
  expect((await versions()).map((v) => v.opinionVersions)).toEqual([[2], [1]]);
  const v2 = Buffer.from(await (await svc.request('GET', `/api/cases/${caseId}/report.pdf?version=2`, { token: cm })).arrayBuffer());
  expect((await pdfText(v2)).replace(/\s+/g, ' ')).toContain('Case record version 2');
  expect((await svc.request('GET', `/api/cases/${randomUUID()}/bundle/versions`, { token: cm })).status).toBe(404);
});

it('names the sources with records in a bundle version (not those whose records all left it)', async () => {
  const caseId = await openCaseIn(svc, cm, 'assigned');
  const report = {
    sources: [
      { sourceId: 'a', name: 'Pueblo Pediatrics', resourceTypes: [{ resourceType: 'Observation', inBundle: 0 }, { resourceType: 'Condition', inBundle: 2 }] },
      { sourceId: 'b', name: 'Removed Clinic', resourceTypes: [{ resourceType: 'Observation', inBundle: 0 }] },
      { sourceId: 'u', name: 'Family uploads', resourceTypes: [{ resourceType: 'DocumentReference', inBundle: 1 }] },
    ],
    totals: { pulled: 4, inBundle: 3, merged: 0, leftOut: 1, balanced: true },
  };
  await svc.service.db.query(
    `INSERT INTO case_bundles (case_id, version, bundle_id, bundle, report, options, trigger) VALUES ($1, 1, 'b-1', NULL, $2, $3, 'rebuild')`,
    [caseId, JSON.stringify(report), JSON.stringify({ disabledRules: ['observation:code-time-value'] })],
  );
  const body = (await (await svc.request('GET', `/api/cases/${caseId}/bundle/versions`, { token: cm })).json()) as { items: Record<string, unknown>[] };
  expect(body.items).toEqual([
    expect.objectContaining({ version: 1, bundleId: 'b-1', sources: ['Pueblo Pediatrics', 'Family uploads'], disabledRules: ['observation:code-time-value'], totals: report.totals }),
  ]);
});

it('tells the case managers when the records change while the case is with the specialist, naming the version a signed opinion rests on', async () => {
  const caseId = await openCaseIn(svc, cm, 'records_complete');
  const rebuild = async (): Promise<void> => {
    expect((await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} })).status).toBe(201);
  };
  type Note = { type: string; message: string };
  const notes = async (): Promise<Note[]> => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: Note[] }).items;
  await rebuild(); // version 1, before assignment: nothing to tell
  await svc.service.db.query(`UPDATE cases SET status = 'in_review', revision = revision + 1 WHERE id = $1`, [caseId]);
  await rebuild(); // version 2, in review
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(referredIntake()) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  await rebuild(); // version 3, after signing
  const updates = (await eventually(notes, (items) => items.filter((n) => n.type === 'records.updated').length >= 2)).filter((n) => n.type === 'records.updated');
  expect(updates.map((n) => n.message)).toEqual([
    `The case records changed while the case is report_signed: the case bundle was assembled again (version 3), after a rebuild. Opinion version 1 was signed on bundle version 2: the specialist should review what is new and amend it if needed. What changed: /api/cases/${caseId}/bundle/changes?from=2&to=3`,
    `The case records changed while the case is in_review: the case bundle was assembled again (version 2), after a rebuild. Let the specialist know what is new. What changed: /api/cases/${caseId}/bundle/changes?from=1&to=2`,
  ]);
});

it('serves the case record as a page to read: the sections, the family\'s words escaped, no script allowed, not cached', async () => {
  const base = referredIntake();
  const intake = { ...base, questions: [...base.questions, 'Is <script>alert("x")</script> & "this" safe?'] };
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('GET', `/api/cases/${caseId}/bundle/summary`, { token: specialist })).status).toBe(404);
  expect((await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} })).status).toBe(201);
  const res = await svc.request('GET', `/api/cases/${caseId}/bundle/summary`, { token: specialist });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('x-bundle-version')).toBe('1');
  const html = await res.text();
  for (const section of ['Reason for referral', 'History of present illness', 'Problems', 'Results', 'Documents']) expect(html).toContain(`>${section}`);
  expect(html).toContain('Is &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;this&quot; safe?');
  expect(html).not.toContain('<script');
  expect(html).toContain(`${intake.patient.name.given.join(' ')} ${intake.patient.name.family}`);
  // Other API answers are not cached either.
  expect((await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).headers.get('cache-control')).toBe('no-store');
});

it('refuses to sign (409) when the records are assembled again while the report is rendered, and signs on the new record after', async () => {
  const caseId = await openCaseIn(svc, cm, 'assigned');
  expect((await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} })).status).toBe(201);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(referredIntake()) })).status).toBe(200);
  let signing: Promise<Response> | undefined;
  // Hold the case row: the signing transaction waits for it after the report is rendered on version 1.
  await svc.service.db.transaction(async (tx) => {
    await tx.query('SELECT id FROM cases WHERE id = $1 FOR UPDATE', [caseId]);
    signing = svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist });
    await eventually(
      async () => (await svc.service.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1`,
        [`%FROM cases WHERE id = $1 ${CASE_ROW_LOCK}%`],
      )).rows[0]?.n ?? 0,
      (n) => n > 0,
      20_000,
    );
    // Meanwhile a re-pull's assembly stores version 2.
    await tx.query(
      `INSERT INTO case_bundles (case_id, version, bundle_id, bundle, report, options, trigger) VALUES ($1, 2, 'b-2', NULL, '{"totals": {}, "sources": []}', '{}', 'pull:x:1')`,
      [caseId],
    );
  });
  const refused = await (signing as Promise<Response>);
  expect(refused.status).toBe(409);
  expect(await refused.text()).toContain('assembled again (bundle version 2) while signing');
  const signed = (await (await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).json()) as OpinionBodyView;
  expect(signed.current).toMatchObject({ version: 1, records: { bundleVersion: 2 } });
});

it('refuses to sign (409) on a record a source change has outdated, and signs once it is assembled again', async () => {
  const server = await startSandboxServer({ name: 'care-team-a', auth: 'none' });
  try {
    await server.load(fixtureBundle('care-team-a'));
    const endpoint = await svc.request('POST', '/api/endpoints', {
      token: await svc.token('admin'), body: { name: `care-team-a-${randomUUID()}`, baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true },
    });
    expect(endpoint.status).toBe(201);
    const caseId = await openCaseIn(svc, cm, 'assigned');
    const source = await svc.request('POST', `/api/cases/${caseId}/sources`, {
      token: cm, body: { endpointId: ((await endpoint.json()) as { id: string }).id, patient: { id: fixturePatientId('care-team-a') } },
    });
    expect(source.status).toBe(201);
    const sourceId = ((await source.json()) as { id: string }).id;
    expect((await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} })).status).toBe(201);
    expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(referredIntake()) })).status).toBe(200);
    // The source was pointed at another child, and the process died before the record was assembled again.
    await svc.service.db.query("UPDATE case_sources SET changed_read_seq = nextval('assembly_read_seq') WHERE id = $1", [sourceId]);
    const refused = await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist });
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain(`source ${sourceId} now points at another patient after it was assembled`);
    expect((await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} })).status).toBe(201);
    const signed = await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist });
    expect(signed.status).toBe(201);
    expect(((await signed.json()) as OpinionBodyView).current).toMatchObject({ version: 1, records: { bundleVersion: 2 } });
  } finally {
    await server.stop();
  }
});

it("records in the access log which record version and report version each answer served", async () => {
  const caseId = await openCaseIn(svc, cm, 'assigned');
  for (let i = 0; i < 2; i++) expect((await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} })).status).toBe(201);
  await (await svc.request('GET', `/api/cases/${caseId}/bundle?version=1`, { token: specialist })).text();
  await (await svc.request('GET', `/api/cases/${caseId}/bundle/summary`, { token: specialist })).text();
  expect((await svc.request('GET', `/api/cases/${caseId}/bundle?version=9`, { token: specialist })).status).toBe(404);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(referredIntake()) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  await (await svc.request('GET', `/api/cases/${caseId}/report.pdf`, { token: cm })).arrayBuffer();
  type Entry = { route: string; status: number; actor: string; bundleVersion?: number; reportVersion?: number };
  const log = await eventually(
    async () => ((await (await svc.request('GET', `/api/cases/${caseId}/access-log`, { token: await svc.token('admin', 'privacy-officer') })).json()) as { items: Entry[] }).items,
    (items) => items.some((e) => e.route.endsWith('/report.pdf')),
    10_000,
  );
  const served = log.filter((e) => e.bundleVersion !== undefined || e.reportVersion !== undefined).map((e) => [e.route, e.actor, e.bundleVersion ?? null, e.reportVersion ?? null]);
  expect(served).toEqual([
    ['/api/cases/:id/report.pdf', 'cm-op', null, 1],
    ['/api/cases/:id/bundle/summary', 'spec-op', 2, null],
    ['/api/cases/:id/bundle', 'spec-op', 1, null],
  ]);
  expect(log.find((e) => e.route === '/api/cases/:id/bundle' && e.status === 404)?.bundleVersion).toBeUndefined();
});

it("never overwrites a draft saved again since it was read: If-Match with the draft's ETag, 412 when stale", async () => {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  const put = (summary: string, ifMatch?: string) =>
    svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { summary }), ...(ifMatch ? { headers: { 'if-match': ifMatch } } : {}) });
  // No draft yet: nothing to match.
  const none = await put('First', '*');
  expect(none.status).toBe(412);
  expect((await svc.request('GET', `/api/cases/${caseId}/opinion`, { token: specialist })).headers.get('etag')).toBeNull();
  const first = await put('First');
  expect(first.status).toBe(200);
  expect(first.headers.get('etag')).toBe('W/"1"');
  // Two tabs read revision 1; the first saves (revision 2), the second's save is refused, naming the ETag now.
  const read = await svc.request('GET', `/api/cases/${caseId}/opinion`, { token: specialist });
  const tag = read.headers.get('etag') ?? '';
  expect(tag).toBe('W/"1"');
  expect(((await read.json()) as { draft: { revision: number } }).draft.revision).toBe(1);
  const tabA = await put('Tab A: the careful revision', tag);
  expect(tabA.status).toBe(200);
  expect(tabA.headers.get('etag')).toBe('W/"2"');
  const tabB = await put('Tab B: an older text', tag);
  expect(tabB.status).toBe(412);
  const problem = (await tabB.json()) as { detail: string; errors: { field: string }[] };
  expect(problem.errors[0]?.field).toBe('If-Match');
  expect(problem.detail).toContain('W/"2"');
  const kept = (await (await svc.request('GET', `/api/cases/${caseId}/opinion`, { token: specialist })).json()) as { draft: { content: { summary: string } } };
  expect(kept.draft.content.summary).toBe('Tab A: the careful revision');
  // The current tag (strong or weak form, in a list, or *) passes; no header keeps last-write-wins.
  expect((await put('Third', '"7", W/"2"')).status).toBe(200);
  expect((await put('Fourth', '*')).status).toBe(200);
  expect((await put('Fifth')).headers.get('etag')).toBe('W/"5"');
});
