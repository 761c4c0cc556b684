import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ifNoneMatchHits } from '../../src/http/conditional-get';
import { entityTag } from '../../src/http/entity-tags';
import { openCaseIn, opinionFor, referredIntake } from '../support/opinion-case';
import { eventually, startTestService, type TestService } from '../support/service';
import { SHARED_DATA } from '../support/synthea';

describe('If-None-Match (RFC 9110 weak comparison)', () => {
  const tag = entityTag('abc-1', true);

  it('matches the same opaque tag, weak or strong, alone or in a list, and *', () => {
    expect(tag).toBe('W/"abc-1"');
    for (const header of ['W/"abc-1"', '"abc-1"', '"x", W/"abc-1"', ' "x" ,"abc-1" ', '*', ['"x"', 'W/"abc-1"']]) {
      expect({ header, hit: ifNoneMatchHits(header, tag) }).toEqual({ header, hit: true });
    }
  });

  it('does not match another tag, a prefix of it, an unquoted or an absent one', () => {
    for (const header of [undefined, '', '"abc"', '"abc-10"', 'abc-1', 'W/abc-1', '"x", "y"']) {
      expect({ header, hit: ifNoneMatchHits(header, tag) }).toEqual({ header, hit: false });
    }
  });

  it('refuses to make a tag of characters a tag cannot hold', () => {
    expect(() => entityTag('a"b', false)).toThrow(RangeError);
    expect(() => entityTag('a b', false)).toThrow(RangeError);
  });
});

describe('conditional GET of what never changes once written', () => {
  let svc: TestService;
  let cm: string;
  let admin: string;

  beforeAll(async () => {
    svc = await startTestService();
    cm = await svc.token('case_manager', 'cm-etag');
    admin = await svc.token('admin', 'admin-etag');
  });
  afterAll(async () => {
    await svc.stop();
  });

  const get = (route: string, token: string, headers: Record<string, string> = {}) => svc.request('GET', route, { token, headers });
  const rebuild = async (caseId: string): Promise<number> => {
    const res = await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} });
    expect(res.status).toBe(201);
    return ((await res.json()) as { version: number }).version;
  };

  it('a bundle version: 304 without a body for the version the client holds, 200 with the new one once there is one', async () => {
    const caseId = await openCaseIn(svc, cm, 'records_complete');
    await rebuild(caseId);
    const first = await get(`/api/cases/${caseId}/bundle`, cm);
    expect(first.status).toBe(200);
    const bundle = (await first.json()) as { identifier: { value: string } };
    const etag = first.headers.get('etag') ?? '';
    expect(etag).toBe(`W/"${bundle.identifier.value}"`);
    expect(new Date(first.headers.get('last-modified') ?? '').getTime()).toBeGreaterThan(Date.now() - 120_000);

    const again = await get(`/api/cases/${caseId}/bundle`, cm, { 'if-none-match': etag });
    expect({ status: again.status, body: await again.text(), etag: again.headers.get('etag'), version: again.headers.get('x-bundle-version') }).toEqual({
      status: 304, body: '', etag, version: '1',
    });
    // The gzip representation has the same (weak) tag: a client that asked for it is answered the same.
    const gzipped = await get(`/api/cases/${caseId}/bundle`, cm, { 'if-none-match': etag, 'accept-encoding': 'gzip' });
    expect(gzipped.status).toBe(304);

    expect(await rebuild(caseId)).toBe(2);
    const newer = await get(`/api/cases/${caseId}/bundle`, cm, { 'if-none-match': etag });
    expect({ status: newer.status, version: newer.headers.get('x-bundle-version') }).toEqual({ status: 200, version: '2' });
    expect(newer.headers.get('etag')).not.toBe(etag);
    expect(((await newer.json()) as { identifier: { value: string } }).identifier.value).not.toBe(bundle.identifier.value);
    // Version 1 asked by number is still the one the client holds.
    expect((await get(`/api/cases/${caseId}/bundle?version=1`, cm, { 'if-none-match': etag })).status).toBe(304);
    // A tag of another version, of another case or made up: the bundle is sent.
    expect((await get(`/api/cases/${caseId}/bundle?version=2`, cm, { 'if-none-match': etag })).status).toBe(200);
    expect((await get(`/api/cases/${caseId}/bundle`, cm, { 'if-none-match': 'W/"not-a-bundle"' })).status).toBe(200);

    // The access log still accounts for the 304: the client was shown that version is the current one.
    // Audit rows are written once each answer is sent, on pooled connections: wait for the three.
    type Log = { items: { route: string; status: number; bundleVersion: number | null }[] };
    const notModifiedOf = (log: Log) => log.items.filter((i) => i.route === '/api/cases/:id/bundle' && i.status === 304);
    const log = await eventually(
      async () => (await (await get(`/api/cases/${caseId}/access-log?limit=20`, admin)).json()) as Log,
      (l) => notModifiedOf(l).length >= 3,
      10_000,
    );
    expect(notModifiedOf(log).map((i) => i.bundleVersion).sort()).toEqual([1, 1, 1]);
  });

  it('a 404 stays a 404 whatever If-None-Match says', async () => {
    const caseId = await openCaseIn(svc, cm, 'records_complete');
    expect((await get(`/api/cases/${caseId}/bundle`, cm, { 'if-none-match': '*' })).status).toBe(404);
    expect((await get(`/api/cases/${caseId}/report.pdf`, cm, { 'if-none-match': '*' })).status).toBe(404);
  });

  it('a signed report PDF: its SHA-256 is the tag', async () => {
    const specialist = await svc.token('specialist', 'spec-etag');
    const intake = referredIntake();
    const caseId = await openCaseIn(svc, cm, 'assigned', intake);
    expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
    expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
    const first = await get(`/api/cases/${caseId}/report.pdf`, cm);
    const pdf = Buffer.from(await first.arrayBuffer());
    const etag = `"${createHash('sha256').update(pdf).digest('hex')}"`;
    expect({ status: first.status, etag: first.headers.get('etag') }).toEqual({ status: 200, etag });
    const again = await get(`/api/cases/${caseId}/report.pdf?version=1`, cm, { 'if-none-match': etag });
    expect({ status: again.status, bytes: (await again.arrayBuffer()).byteLength, version: again.headers.get('x-report-version') }).toEqual({
      status: 304, bytes: 0, version: '1',
    });
    expect((await get(`/api/cases/${caseId}/report.pdf`, cm, { 'if-none-match': '"another-pdf"' })).status).toBe(200);
  });

  it('an uploaded file: its SHA-256 is the tag', async () => {
    const caseId = await openCaseIn(svc, cm, 'collecting_records');
    const data = fs.readFileSync(path.join(SHARED_DATA, 'pdf/minimal-document.pdf'));
    const form = new FormData();
    form.append('file', new Blob([data]), 'letter.pdf');
    const posted = await fetch(`${svc.url}/api/cases/${caseId}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${cm}` }, body: form });
    expect(posted.status).toBe(202);
    const { files } = (await posted.json()) as { files: { id: string }[] };
    const route = `/api/cases/${caseId}/uploads/files/${files[0]?.id ?? ''}`;
    const first = await get(route, cm);
    const etag = `"${createHash('sha256').update(data).digest('hex')}"`;
    expect({ status: first.status, etag: first.headers.get('etag'), same: Buffer.from(await first.arrayBuffer()).equals(data) }).toEqual({ status: 200, etag, same: true });
    const again = await get(route, cm, { 'if-none-match': `W/"x", ${etag}` });
    expect({ status: again.status, bytes: (await again.arrayBuffer()).byteLength }).toEqual({ status: 304, bytes: 0 });
  });
});
