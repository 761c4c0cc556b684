import { fetchAttachment } from '../../src/pull/attachment-fetcher';
import type { PullWorkerDeps } from '../../src/pull/pull-deps';
import type { SandboxServer } from '../../src/sandbox';
import type { TestDatabase } from '../support/postgres';
import { pendingBinaryDocument } from '../support/pull-task';
import { eventually } from '../support/service';
import { startForFile } from '../support/for-file';
import { startPullWorkerWorld } from '../support/pull-worker-world';

/**
 * Two fetch jobs can hold the same document at once (its job added again after Redis lost track of
 * it). Only the first outcome recorded counts: the second neither counts another attempt nor turns
 * the fetched document into a failed one (nor the other way round), and says it did nothing.
 * Real PostgreSQL, Redis and a sandbox EHR.
 */
let t: TestDatabase;
let ehr: SandboxServer;
let deps: PullWorkerDeps;

const PDF = Buffer.from('%PDF-1.4\n% a discharge summary\n%%EOF\n');
/** A redirect off the endpoint's origin is refused for good (no retry, no breaker). */
const OFF_ORIGIN = { kind: 'redirect', location: 'https://elsewhere.example/x' } as const;

startForFile(() => startPullWorkerWorld({ maxAttachmentBytes: 4096 }), (w) => ({ t, ehr, deps } = w));

beforeAll(async () => {
  await ehr.load([{ resourceType: 'Binary', id: 'b1', contentType: 'application/pdf', data: PDF.toString('base64') }]);
});

afterEach(() => {
  ehr.faults.clear();
});

/** Waits until the sandbox has received `n` more document requests than `before`. */
const documentRequests = (before: number, n: number): Promise<number> =>
  eventually(async () => ehr.requestCount('GET /Binary/*') - before, (seen) => seen === n, 10_000);

async function row(id: string): Promise<{ state: string; attempts: number; error: string | null } | undefined> {
  return (await t.db.query<{ state: string; attempts: number; error: string | null }>('SELECT state, attempts, error FROM attachments WHERE id = $1', [id])).rows[0];
}

it('a second job that fails a document the first fetched meanwhile records nothing', async () => {
  const { id } = await pendingBinaryDocument(t.db, ehr.baseUrl, 2); // two requests at once (the two jobs)
  // Both jobs read the row pending and ask for the document; the first answer comes first, the second
  // (refused for good) once the first job has recorded the document.
  const firstAnswer = ehr.faults.add({ match: 'GET /Binary/*', action: { kind: 'hold' }, nth: 1 });
  const secondAnswer = ehr.faults.add({ match: 'GET /Binary/*', action: { kind: 'hold' }, nth: 2 });
  ehr.faults.add({ match: 'GET /Binary/*', action: OFF_ORIGIN, nth: 2 });
  const before = ehr.requestCount('GET /Binary/*');
  const first = fetchAttachment(deps, id, { isLastAttempt: false });
  first.catch(() => undefined);
  await documentRequests(before, 1);
  const second = fetchAttachment(deps, id, { isLastAttempt: false });
  second.catch(() => undefined);
  await documentRequests(before, 2);

  ehr.faults.release(firstAnswer);
  expect(await first).toBe('fetched');
  expect(await row(id)).toMatchObject({ state: 'fetched', attempts: 1 });
  ehr.faults.release(secondAnswer);
  expect(await second).toBe('skipped');
  expect(await row(id)).toEqual({ state: 'fetched', attempts: 1, error: null });
});

it('a second job that fetches a document the first failed for good meanwhile records nothing', async () => {
  const { id } = await pendingBinaryDocument(t.db, ehr.baseUrl, 2); // two requests at once (the two jobs)
  const firstAnswer = ehr.faults.add({ match: 'GET /Binary/*', action: { kind: 'hold' }, nth: 1 });
  ehr.faults.add({ match: 'GET /Binary/*', action: OFF_ORIGIN, nth: 1 });
  const secondAnswer = ehr.faults.add({ match: 'GET /Binary/*', action: { kind: 'hold' }, nth: 2 });
  const before = ehr.requestCount('GET /Binary/*');
  const first = fetchAttachment(deps, id, { isLastAttempt: false });
  first.catch(() => undefined);
  await documentRequests(before, 1);
  const second = fetchAttachment(deps, id, { isLastAttempt: false });
  second.catch(() => undefined);
  await documentRequests(before, 2);

  ehr.faults.release(firstAnswer);
  expect(await first).toBe('failed');
  const failed = await row(id);
  expect(failed).toMatchObject({ state: 'failed', attempts: 1 });
  ehr.faults.release(secondAnswer);
  expect(await second).toBe('skipped');
  // As the first job left it: a retry of the pull sets it pending again and fetches it.
  expect(await row(id)).toEqual(failed);
});
