import { randomUUID } from 'node:crypto';
import type { Bundle, Communication, DiagnosticReport, DocumentReference, FhirResource } from 'fhir/r4';
import { CaptureTransport } from '../support/capture-log';
import { REPORT_COMMUNICATION_SYSTEM, REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import { LENIENT_SCAN_MAX_PAGES, LENIENT_SCAN_PAGE_SIZE } from '../../src/delivery/report-writer';
import { OffOriginUrlError } from '../../src/fhir/errors';
import { scanPagesForIdentifier, type IdentifierPager, type IdentifierSearchPage } from '../../src/fhir/identifier-match';
import { logger } from '../../src/log';
import type { SandboxServer } from '../../src/sandbox';
import { fixturePatientId } from '../support/fixture-child';
import { startForFile } from '../support/for-file';
import { openCaseIn, opinionFor, referredIntake, searchSandbox } from '../support/opinion-case';
import { startReferringEhr, startServiceAndReferringEhr } from '../support/referring-ehr-world';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { eventually, type TestService } from '../support/service';

/**
 * A recipient that ignores the `identifier` search parameter (lenient handling,
 * https://hl7.org/fhir/R4/search.html#errors) answers a look-up of our report with every report it
 * holds. Where ours is not on the first page, a run after a crash (the report written, its ids not
 * recorded) must still find it, by reading the id our records hold or by paging
 * (https://hl7.org/fhir/R4/http.html#paging), and never write a second copy into the child's chart,
 * even on a server that does not evaluate `If-None-Exist` either.
 */
let svc: TestService;
let ehr: SandboxServer;
let endpointId: string;
let cm: string;
let specialist: string;

/**
 * Other reports at the recipient, of each type we write: more than fit on the first look-up's page
 * (10), and on the first page of the look through a lenient answer, so ours lies beyond both.
 */
const OTHERS_PER_TYPE = LENIENT_SCAN_PAGE_SIZE + 5;

interface DeliveryRow {
  readonly id: string;
  readonly state: string;
  readonly remoteIds: Record<string, string>;
}

startForFile(
  () =>
    startServiceAndReferringEhr({
      env: { DELIVERY_BACKOFF_MS: '50', DELIVERY_ATTEMPTS: '3' },
      load: otherCasesReports(fixturePatientId('referring-ehr'), OTHERS_PER_TYPE),
    }),
  (started) => ({ svc, ehr } = started),
);

beforeAll(async () => {
  endpointId = await registerOpenEndpoint(svc, 'Lenient referring EHR', ehr.baseUrl);
  cm = await svc.token('case_manager', 'cm-lenient');
  specialist = await svc.token('specialist', 'spec-lenient');
});

afterEach(() => {
  ehr.faults.clear();
});

/** `count` reports of other cases of this program, already in the child's chart (with their DocumentReferences and Communications). */
function otherCasesReports(patientId: string, count: number): FhirResource[] {
  const subject = { reference: `Patient/${patientId}` };
  return Array.from({ length: count }, () => `${randomUUID()}-v1`).flatMap((value): FhirResource[] => [
    { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'Second opinion consult note' }, subject, identifier: [{ system: REPORT_IDENTIFIER_SYSTEM, value }] },
    {
      resourceType: 'DocumentReference',
      status: 'current',
      subject,
      masterIdentifier: { system: REPORT_IDENTIFIER_SYSTEM, value },
      identifier: [{ system: REPORT_IDENTIFIER_SYSTEM, value }],
      content: [{ attachment: { contentType: 'application/pdf', url: 'urn:example:elsewhere' } }],
    },
    { resourceType: 'Communication', status: 'completed', subject, identifier: [{ system: REPORT_COMMUNICATION_SYSTEM, value }] },
  ]);
}

/** A case signed for the recipient at `recipientEndpoint`: its delivery starts. */
async function signedCase(recipientEndpoint = endpointId): Promise<string> {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: recipientEndpoint } })).status).toBe(201);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  return caseId;
}

async function deliveryOf(caseId: string): Promise<DeliveryRow | undefined> {
  const { rows } = await svc.service.db.query<{ id: string; state: string; remote_ids: Record<string, string> }>(
    'SELECT id, state, remote_ids FROM deliveries WHERE case_id = $1 AND version = 1',
    [caseId],
  );
  const row = rows[0];
  return row && { id: row.id, state: row.state, remoteIds: row.remote_ids };
}

/** Awaits the end of the case's delivery (the queue runs it; nothing pushes its end to a test). */
async function settled(caseId: string): Promise<DeliveryRow> {
  const row = await eventually(() => deliveryOf(caseId), (d) => d !== undefined && ['delivered', 'failed', 'needs_review'].includes(d.state), 60_000);
  return row as DeliveryRow;
}

/**
 * What a run that wrote the report and died before recording it leaves behind (delivery-kill.part.ts
 * does it with real processes): the report at the recipient, the delivery not delivered, with only
 * `remoteIds` on record. Then the delivery is run again (re-queued as a case manager would).
 */
async function redeliverAfterCrash(caseId: string, remoteIds: Record<string, string>): Promise<DeliveryRow> {
  const delivery = (await deliveryOf(caseId)) as DeliveryRow;
  await svc.service.db.query("UPDATE deliveries SET state = 'failed', remote_ids = $2::jsonb WHERE id = $1", [delivery.id, JSON.stringify(remoteIds)]);
  expect((await svc.request('POST', `/api/cases/${caseId}/deliveries/${delivery.id}/retry`, { token: cm })).status).toBe(202);
  return settled(caseId);
}

/** The searches of a lenient server: `identifier` ignored; the rules' ids. */
function ignoreIdentifierSearches(server: SandboxServer): number[] {
  return ['DiagnosticReport', 'DocumentReference', 'Communication'].map((type) =>
    server.faults.add({ match: `GET /${type}`, action: { kind: 'ignore-parameter', name: 'identifier' } }),
  );
}

/**
 * A case signed for `server` and delivered, its report beyond the first {@link LENIENT_SCAN_MAX_PAGES}
 * pages of every report there; then `server` made to ignore the identifier search (the rules' ids).
 */
async function deliveredBeyondTheScan(server: SandboxServer, recipientEndpoint: string): Promise<{ caseId: string; first: DeliveryRow; searchRules: number[] }> {
  const caseId = await signedCase(recipientEndpoint);
  const first = await settled(caseId);
  expect(first.state).toBe('delivered');
  expect(await notInFirst(LENIENT_SCAN_MAX_PAGES * LENIENT_SCAN_PAGE_SIZE, caseId, server)).toBe(true);
  return { caseId, first, searchRules: ignoreIdentifierSearches(server) };
}

/** The recipient as a lenient server: ignores `identifier` in searches, and `If-None-Exist` in creates; the search rules' ids. */
function lenientRecipient(): number[] {
  const searches = ignoreIdentifierSearches(ehr);
  ehr.faults.add({ match: 'POST *', action: { kind: 'ignore-if-none-exist' } });
  return searches;
}

/** Our resources of `type` for the case's version 1 at `server`, by a search it honours (no faults). */
function ours<T extends DiagnosticReport | DocumentReference | Communication>(type: T['resourceType'], caseId: string, server = ehr): Promise<T[]> {
  const system = type === 'Communication' ? REPORT_COMMUNICATION_SYSTEM : REPORT_IDENTIFIER_SYSTEM;
  return searchSandbox<T>(server, '', type, { identifier: `${system}|${caseId}-v1` });
}

/** Whether the first `count` of every report the recipient holds (a lenient answer's first page) leave ours out. */
async function notInFirst(count: number, caseId: string, server = ehr): Promise<boolean> {
  const firstPage = await searchSandbox<DiagnosticReport>(server, '', 'DiagnosticReport', { _count: String(count) });
  return firstPage.length === count && !firstPage.some((r) => r.identifier?.some((i) => i.value === `${caseId}-v1`));
}

describe('a recipient that ignores the identifier search', () => {
  it('finds our report on a later page after a crash before recording it, and records it instead of writing it again', async () => {
    const caseId = await signedCase();
    const first = await settled(caseId);
    expect(first.state).toBe('delivered');
    expect(await notInFirst(LENIENT_SCAN_PAGE_SIZE, caseId)).toBe(true);
    const reportsWritten = ehr.writtenResources('DiagnosticReport').length;

    const rules = lenientRecipient();
    const postsBefore = ehr.requestCount('POST *');
    const pagesBefore = ehr.requestCount('GET /DiagnosticReport?*_offset=*');
    const again = await redeliverAfterCrash(caseId, {});
    const lenientSearches = rules.map((r) => ehr.faults.rule(r)?.fired ?? 0);
    ehr.faults.clear();

    // Exactly one of each in the chart, and the delivery records the ones already there.
    expect(await ours('DiagnosticReport', caseId)).toHaveLength(1);
    expect(await ours('DocumentReference', caseId)).toHaveLength(1);
    expect(await ours('Communication', caseId)).toHaveLength(1);
    expect(again).toMatchObject({ state: 'delivered', remoteIds: first.remoteIds });
    expect(ehr.writtenResources('DiagnosticReport')).toHaveLength(reportsWritten);
    expect(ehr.requestCount('POST *')).toBe(postsBefore);
    // The recipient answered every look-up leniently; ours was found by following its next links.
    expect(lenientSearches.every((n) => n > 0)).toBe(true);
    expect(ehr.requestCount('GET /DiagnosticReport?*_offset=*')).toBeGreaterThan(pagesBefore);
  }, 120_000);

  it('reads the report by the id our records hold, and keeps it', async () => {
    const caseId = await signedCase();
    const first = await settled(caseId);
    expect(first.state).toBe('delivered');
    expect(await notInFirst(10, caseId)).toBe(true);
    const reportId = first.remoteIds.DiagnosticReport as string;
    const reads = ehr.requestCount(`GET /DiagnosticReport/${reportId}`);
    const pagesBefore = ehr.requestCount('GET /DiagnosticReport?*_offset=*');

    lenientRecipient();
    const again = await redeliverAfterCrash(caseId, first.remoteIds);
    ehr.faults.clear();

    expect(await ours('DiagnosticReport', caseId)).toHaveLength(1);
    expect(await ours('Communication', caseId)).toHaveLength(1);
    expect(again).toMatchObject({ state: 'delivered', remoteIds: first.remoteIds });
    expect(ehr.requestCount(`GET /DiagnosticReport/${reportId}`)).toBe(reads + 1);
    // Found by reading it: no paging through the recipient's other reports.
    expect(ehr.requestCount('GET /DiagnosticReport?*_offset=*')).toBe(pagesBefore);
  }, 120_000);
});

describe('a recipient that honours the identifier search', () => {
  it('is searched once per resource: not paged, and nothing written again', async () => {
    const caseId = await signedCase();
    const first = await settled(caseId);
    expect(first.state).toBe('delivered');
    const searches = ehr.requestCount('GET /DiagnosticReport');
    const reads = ehr.requestCount('GET /DiagnosticReport/*');
    const posts = ehr.requestCount('POST *');

    const again = await redeliverAfterCrash(caseId, {});

    expect(again).toMatchObject({ state: 'delivered', remoteIds: first.remoteIds });
    expect(ehr.requestCount('GET /DiagnosticReport')).toBe(searches + 1);
    expect(ehr.requestCount('GET /DiagnosticReport/*')).toBe(reads);
    expect(ehr.requestCount('POST *')).toBe(posts);
    expect(await ours('DiagnosticReport', caseId)).toHaveLength(1);
  }, 120_000);
});

describe('a lenient recipient holding more reports than are looked through', () => {
  let big: SandboxServer;
  let bigEndpoint: string;

  beforeAll(async () => {
    big = await startReferringEhr({ name: 'referring-ehr-big' });
    const reports = otherCasesReports(fixturePatientId('referring-ehr'), LENIENT_SCAN_MAX_PAGES * LENIENT_SCAN_PAGE_SIZE);
    await big.load(reports.filter((r) => r.resourceType === 'DiagnosticReport'));
    bigEndpoint = await registerOpenEndpoint(svc, 'Big lenient referring EHR', big.baseUrl);
  }, 60_000);

  afterAll(async () => {
    await big.stop();
  });

  it('stops at the page bound, says so without PHI, and relies on the conditional create', async () => {
    const { caseId, first, searchRules } = await deliveredBeyondTheScan(big, bigEndpoint);
    const pagesBefore = big.requestCount('GET /DiagnosticReport?*_offset=*');

    const capture = new CaptureTransport();
    const others = [...logger.transports];
    for (const t of others) t.silent = true;
    logger.add(capture);
    let again: DeliveryRow;
    try {
      again = await redeliverAfterCrash(caseId, {});
    } finally {
      logger.remove(capture);
      for (const t of others) t.silent = false;
      for (const r of searchRules) big.faults.remove(r);
    }

    // The look-up read its bound of pages (the first, then next links), no more.
    expect(big.requestCount('GET /DiagnosticReport?*_offset=*') - pagesBefore).toBe(LENIENT_SCAN_MAX_PAGES - 1);
    // This recipient honours If-None-Exist: the conditional create answered with the report already there.
    expect(again).toMatchObject({ state: 'delivered', remoteIds: { DiagnosticReport: first.remoteIds.DiagnosticReport } });
    expect(await ours('DiagnosticReport', caseId, big)).toHaveLength(1);
    const warnings = capture.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => String(l.message).startsWith('report look-up at a lenient recipient stopped'));
    expect(warnings).toEqual([
      expect.objectContaining({ level: 'warn', endpointId: bigEndpoint, caseId, version: 1, resourceType: 'DiagnosticReport', pages: LENIENT_SCAN_MAX_PAGES, reason: 'page-limit' }),
    ]);
    const { patient } = referredIntake();
    const line = JSON.stringify(warnings);
    expect(line).not.toContain('[redacted]');
    for (const phi of [patient.name.family, ...patient.name.given, patient.birthDate]) expect(line).not.toContain(phi);
  }, 120_000);
});

describe("a lenient recipient holding more reports than are looked through, of other patients", () => {
  let crowded: SandboxServer;
  let crowdedEndpoint: string;

  beforeAll(async () => {
    crowded = await startReferringEhr({ name: 'referring-ehr-crowded' });
    // Other children's reports, as many as a look through every report of the server reads at most.
    const others = Array.from({ length: LENIENT_SCAN_MAX_PAGES * LENIENT_SCAN_PAGE_SIZE }, (_, i) => otherCasesReports(`other-child-${i}`, 1)[0] as FhirResource);
    await crowded.load(others);
    crowdedEndpoint = await registerOpenEndpoint(svc, 'Crowded lenient referring EHR', crowded.baseUrl);
  }, 60_000);

  afterAll(async () => {
    await crowded.stop();
  });

  it("looks through the child's chart only, finds the report there, and writes nothing again even where If-None-Exist is ignored", async () => {
    const { caseId, first, searchRules } = await deliveredBeyondTheScan(crowded, crowdedEndpoint);
    const createRule = crowded.faults.add({ match: 'POST *', action: { kind: 'ignore-if-none-exist' } });
    const posts = crowded.requestCount('POST *');
    let again: DeliveryRow;
    try {
      again = await redeliverAfterCrash(caseId, {});
    } finally {
      for (const r of [...searchRules, createRule]) crowded.faults.remove(r);
    }

    // Each look-up was narrowed to the chart the report is filed under (https://hl7.org/fhir/R4/search.html#reference).
    const chart = `subject=${encodeURIComponent(`Patient/${fixturePatientId('referring-ehr')}`)}`;
    expect(crowded.requestCount(`GET /DiagnosticReport?*${chart}*`)).toBeGreaterThan(0);
    expect(again).toMatchObject({ state: 'delivered', remoteIds: first.remoteIds });
    expect(crowded.requestCount('POST *')).toBe(posts);
    expect(await ours('DiagnosticReport', caseId, crowded)).toHaveLength(1);
    expect(await ours('DocumentReference', caseId, crowded)).toHaveLength(1);
    expect(await ours('Communication', caseId, crowded)).toHaveLength(1);
  }, 120_000);
});

describe('scanPagesForIdentifier', () => {
  const wanted = { system: REPORT_IDENTIFIER_SYSTEM, value: 'case-1-v1' };
  const report = (value: string): DiagnosticReport => ({ resourceType: 'DiagnosticReport', id: value, status: 'final', code: {}, identifier: [{ system: REPORT_IDENTIFIER_SYSTEM, value }] });
  const page = (values: string[], nextUrl?: string): IdentifierSearchPage => ({
    bundle: { resourceType: 'Bundle', type: 'searchset', entry: values.map((v) => ({ resource: report(v), search: { mode: 'match' } })) } satisfies Bundle,
    ...(nextUrl ? { nextUrl } : {}),
  });
  /** A lenient server's pages by URL (`first` answers the search); a URL in `offOrigin` is refused as the client refuses it. */
  const pager = (pages: Record<string, IdentifierSearchPage>, offOrigin: string[] = []): IdentifierPager & { readonly fetched: string[] } => {
    const fetched: string[] = [];
    return {
      fetched,
      search: async () => pages.first as IdentifierSearchPage,
      fetchPage: async (url) => {
        if (offOrigin.includes(url)) throw new OffOriginUrlError('next-page', 'http://elsewhere.example', 'http://ehr.example');
        fetched.push(url);
        return pages[url] as IdentifierSearchPage;
      },
    };
  };

  it('follows next links to the first resource that carries the identifier', async () => {
    const client = pager({ first: page(['a', 'b'], 'p2'), p2: page(['c', 'case-1-v1', 'case-1-v1'], 'p3'), p3: page(['d']) });
    await expect(scanPagesForIdentifier(client, 'DiagnosticReport', wanted, { maxPages: 5 })).resolves.toMatchObject({ outcome: 'found', resource: { id: 'case-1-v1' }, pages: 2 });
    expect(client.fetched).toEqual(['p2']);
  });

  it('says absent only when it read the last page', async () => {
    const client = pager({ first: page(['a'], 'p2'), p2: page(['b']) });
    await expect(scanPagesForIdentifier(client, 'DiagnosticReport', wanted, { maxPages: 5 })).resolves.toEqual({ outcome: 'absent', pages: 2 });
  });

  it('stops at the page bound, at a next link back to a page it read, and at one off the endpoint origin', async () => {
    const endless = pager({ first: page(['a'], 'p2'), p2: page(['b'], 'p3'), p3: page(['c'], 'p4') });
    await expect(scanPagesForIdentifier(endless, 'DiagnosticReport', wanted, { maxPages: 2 })).resolves.toEqual({ outcome: 'stopped', reason: 'page-limit', pages: 2 });
    expect(endless.fetched).toEqual(['p2']);
    const loop = pager({ first: page(['a'], 'p2'), p2: page(['b'], 'p2') });
    await expect(scanPagesForIdentifier(loop, 'DiagnosticReport', wanted, { maxPages: 10 })).resolves.toEqual({ outcome: 'stopped', reason: 'paging-loop', pages: 2 });
    const foreign = pager({ first: page(['a'], 'http://elsewhere.example/fhir/DiagnosticReport?page=2') }, ['http://elsewhere.example/fhir/DiagnosticReport?page=2']);
    await expect(scanPagesForIdentifier(foreign, 'DiagnosticReport', wanted, { maxPages: 10 })).resolves.toEqual({ outcome: 'stopped', reason: 'off-origin-next-link', pages: 1 });
  });
});
