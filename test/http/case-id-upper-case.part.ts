import { PDFDocument } from 'pdf-lib';
import { openCase, startCaseManagerService } from '../support/case-manager';
import { startForFile } from '../support/for-file';
import { eventually, type TestService } from '../support/service';

/**
 * A case id is a UUID, which names the same case in upper or lower case (RFC 9562 §4). PostgreSQL
 * takes either; the ids compared as strings (an upload token's case, a recipient's, a pull's) must
 * too: the route params are lower-cased where they are parsed, and the upload token's check ignores
 * case, so the upper-cased id gets the same answer as the lower-cased one.
 */
let svc: TestService;
let cm: string;

startForFile(() => startCaseManagerService({}, 'cm-upper'), (s) => ({ svc, cm } = s));

async function tinyPdf(): Promise<Buffer> {
  const doc = await PDFDocument.create();
  doc.addPage([200, 200]).drawText('From the family portal', { x: 10, y: 100, size: 10 });
  return Buffer.from(await doc.save());
}

async function upload(caseId: string, token: string, data: Buffer): Promise<Response> {
  const form = new FormData();
  form.append('file', new Blob([data]), 'portal.pdf');
  return fetch(`${svc.url}/api/cases/${caseId}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
}

interface Listing {
  items: { uploadId: string; caseId?: string; state: string }[];
  bytes: number;
  maxBytes: number;
}

it("takes the case's upload token on the upload routes with the case id in upper case, answering as for lower case", async () => {
  const caseId = await openCase(svc, cm);
  const upper = caseId.toUpperCase();
  expect(upper).not.toBe(caseId);
  const issued = await svc.request('POST', `/api/cases/${upper}/upload-token`, { token: cm });
  expect(issued.status).toBe(201);
  const { token, caseId: tokenCase } = (await issued.json()) as { token: string; caseId: string };
  expect(tokenCase).toBe(caseId);

  const sent = await upload(upper, token, await tinyPdf());
  expect(sent.status).toBe(202);
  expect(sent.headers.get('location')).toBe(`/api/cases/${caseId}/uploads`);
  const { uploadId } = (await sent.json()) as { uploadId: string };

  // Both forms list the same upload, once it is ingested (so the two answers are taken at rest).
  const read = async (id: string): Promise<{ status: number; body: Listing }> => {
    const res = await svc.request('GET', `/api/cases/${id}/uploads`, { token });
    return { status: res.status, body: (await res.json()) as Listing };
  };
  await eventually(() => read(caseId), (r) => r.body.items?.[0]?.state === 'ingested', 30_000);
  const [lower, upperAnswer] = [await read(caseId), await read(upper)];
  expect(lower.status).toBe(200);
  expect(upperAnswer).toEqual(lower);
  expect(lower.body.items.map((u) => u.uploadId)).toEqual([uploadId]);

  // Still refused on another case, whatever its case.
  const other = (await openCase(svc, cm)).toUpperCase();
  expect((await svc.request('GET', `/api/cases/${other}/uploads`, { token })).status).toBe(403);
});

it('hands every handler the lower-case id (staff routes too)', async () => {
  const caseId = await openCase(svc, cm);
  const upper = caseId.toUpperCase();
  const [lower, upperAnswer] = await Promise.all([
    svc.request('GET', `/api/cases/${caseId}/upload-tokens`, { token: cm }),
    svc.request('GET', `/api/cases/${upper}/upload-tokens`, { token: cm }),
  ]);
  expect(upperAnswer.status).toBe(200);
  expect(await upperAnswer.json()).toEqual(await lower.json());
  const revoke = (await (await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token: cm })).json()) as { tokenId: string };
  expect((await svc.request('DELETE', `/api/cases/${upper}/upload-tokens/${revoke.tokenId.toUpperCase()}`, { token: cm })).status).toBe(204);
});

it('answers a FHIR route asked for by its path in upper case as the route itself answers: an OperationOutcome', async () => {
  // express matches routes ignoring case; the answer's format must follow the route it ran.
  const caseId = await openCase(svc, cm);
  const cases: [string, number][] = [
    [`/api/cases/${caseId}/bundle`, 401],
    [`/API/CASES/${caseId}/BUNDLE`, 401],
    // A path express cannot decode is answered before any route runs, as the route would answer it.
    ['/API/CASES/%E0%A4%A/BUNDLE', 400],
  ];
  for (const [path, status] of cases) {
    const res = await fetch(`${svc.url}${path}`);
    expect({ path, status: res.status, type: res.headers.get('content-type') }).toEqual({ path, status, type: expect.stringContaining('application/fhir+json') });
    const outcome = (await res.json()) as { resourceType: string; issue: { location?: string[] }[] };
    expect(outcome.resourceType).toBe('OperationOutcome');
    if (status === 400) expect(outcome.issue[0]?.location).toEqual(['http.id']);
  }
});
