import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BlobStore } from '../../src/blobs/blob-store';
import { insertCase } from '../../src/db/case-repository';
import type { Database, Queryable } from '../../src/db/database';
import { EndpointClients } from '../../src/endpoints/endpoint-clients';
import { insertEndpoint } from '../../src/endpoints/endpoint-repository';
import type { PullWorkerDeps } from '../../src/pull/pull-deps';
import { scanSearchPage } from '../../src/fhir';
import { pageEntries } from '../../src/pull/page-resources';
import { commitPage, findTask, insertPull, insertTask, type TaskRow } from '../../src/pull/pull-repository';
import { attachmentsOf } from '../../src/pull/pull-task-runner';
import { insertSource } from '../../src/pull/source-repository';
import { SecretBox } from '../../src/security/secret-box';
import { fixtureIntake } from './fixture-child';

/** A case row as intake stores it (the fixture child), in `status`, created `at`: for tests below the API. */
export async function insertTestCase(db: Queryable, id: string, status = 'collecting_records', at: Date = new Date()): Promise<void> {
  await insertCase(db, { id, status, intake: fixtureIntake(), eligibility: { eligible: true, reasons: [] }, quote: { currency: 'USD', total: 850, items: [] }, createdBy: 'test', at });
}

/**
 * A registered endpoint (`name`, auth none), the case's source on it (patient `p`) and a queued
 * task of `pullId` for `path`: what a page commit needs, without planning a pull.
 */
export async function insertPullTask(
  db: Database,
  t: { caseId: string; pullId: string; name: string; baseUrl: string; resourceType: string; path: string },
): Promise<TaskRow> {
  const endpointId = randomUUID();
  await insertEndpoint(db, {
    id: endpointId, name: t.name, baseUrl: t.baseUrl, authType: 'none', clientId: null, scope: null, sealedSecret: null,
    maxRequestsPerSecond: 10, maxConcurrency: 1, allowInsecureHttp: false, rebaseNextLinks: false, inboundSubject: null,
  });
  const sourceId = randomUUID();
  await insertSource(db, { id: sourceId, caseId: t.caseId, endpointId, selector: { id: 'p' }, state: 'resolved', remotePatientId: 'p', candidates: [], reviewReason: null, createdBy: 'test' });
  const taskId = randomUUID();
  await insertTask(db, { id: taskId, pullId: t.pullId, sourceId, resourceType: t.resourceType, queryKey: t.resourceType, path: t.path, params: {}, remotePatientId: null });
  const task = await findTask(db, taskId);
  if (!task) throw new Error('the task just inserted is not there');
  return task;
}

/** How many pages the raw store holds for a pull (a cancelled or stopped query must add none). */
export async function pagesStoredFor(db: Database, pullId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM raw_pages p JOIN pull_tasks t ON t.id = p.task_id WHERE t.pull_id = $1', [pullId]);
  return rows[0]?.n ?? -1;
}

/**
 * The pull workers' dependencies for a test that runs a task or an attachment job directly (no
 * worker): a fixed test key, blobs under `blobDir`, client state under `fhirKeyPrefix` in `redis`.
 */
export function pullWorkerDepsForTest(db: Database, redis: Redis, fhirKeyPrefix: string, blobDir: string, maxAttachmentBytes: number): PullWorkerDeps {
  return {
    db,
    secrets: new SecretBox(Buffer.alloc(32, 1)),
    redis,
    fhirKeyPrefix,
    blobs: new BlobStore(blobDir),
    requestTimeoutMs: 5000,
    maxAttachmentBytes,
    clients: new EndpointClients(redis, fhirKeyPrefix),
  };
}

/**
 * A pending document behind `Binary/b1` at the sandbox `baseUrl`: a new case's pull with a
 * DocumentReference page committed as a pull commits it, its attachment found and `pending`. Its
 * endpoint allows plain http and takes `maxConcurrency` requests at once (1 unless given).
 * @returns the attachment's id and its endpoint's id
 */
export async function pendingBinaryDocument(db: Database, baseUrl: string, maxConcurrency = 1): Promise<{ id: string; endpointId: string }> {
  const caseId = randomUUID();
  await insertTestCase(db, caseId);
  const pullId = randomUUID();
  await insertPull(db, { id: pullId, caseId, since: null, types: null, requestedBy: 'test' });
  const task = await insertPullTask(db, { caseId, pullId, name: `ehr-${pullId.slice(0, 8)}`, baseUrl, resourceType: 'DocumentReference', path: 'DocumentReference' });
  const { rows } = await db.query<{ endpoint_id: string }>(
    'UPDATE endpoints e SET allow_insecure_http = true, max_concurrency = $2 FROM case_sources s WHERE s.id = $1 AND e.id = s.endpoint_id RETURNING e.id::text AS endpoint_id',
    [task.sourceId, maxConcurrency],
  );
  const entry = [{ resource: { resourceType: 'DocumentReference', id: 'd1', status: 'current', content: [{ attachment: { contentType: 'application/pdf', url: 'Binary/b1' } }] } }];
  const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry }));
  const entries = pageEntries(scanSearchPage(body, body.length, baseUrl));
  const attachments = attachmentsOf(entries.entries);
  await commitPage(db, { task, caseId, fromUrl: null, pageNo: 1, body, fetchedAt: new Date(), entries, nextUrl: null, retriesDelta: 0, attachments });
  const id = attachments[0]?.id;
  const endpointId = rows[0]?.endpoint_id;
  if (!id || !endpointId) throw new Error('no pending attachment or endpoint');
  return { id, endpointId };
}
