import { randomBytes, randomUUID } from 'node:crypto';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { ingestJobId, UploadIngestQueue } from '../../queues/ingest-upload';
import { QUEUES } from '../../queues/names';
import { bullConnectionOptions, removeQueuePrefixKeys } from '../../src/redis';
import { jobState } from '../support/service';
import { TEST_REDIS_URL } from '../support/redis-url';

/**
 * The reconciler re-queues uploads whose ingestion has not ended. An ingest job that failed for good
 * without its failure on record is run once more (re-adding its id alone does nothing while BullMQ
 * keeps the failed job); one whose failure is on record is not (it would fail every 30 s). Real Redis.
 */
const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
const producer = new UploadIngestQueue(bullConnectionOptions(TEST_REDIS_URL), prefix);
const queue = new Queue(QUEUES.ingestUpload, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
const runs: string[] = [];
const failFirstOf = new Set<string>();
const worker = new Worker(
  QUEUES.ingestUpload,
  async (job) => {
    const id = job.id ?? '';
    runs.push(id);
    if (failFirstOf.delete(id)) throw new UnrecoverableError('database down while recording the failure');
    return {};
  },
  { connection: bullConnectionOptions(TEST_REDIS_URL), prefix },
);

afterAll(async () => {
  await worker.close();
  await producer.close();
  await queue.close();
  await removeQueuePrefixKeys(TEST_REDIS_URL, prefix);
});

it('reruns a failed ingest job whose failure is not on record, and leaves one whose failure is', async () => {
  const lost = { uploadId: randomUUID(), caseId: randomUUID() };
  const recorded = { uploadId: randomUUID(), caseId: randomUUID() };
  for (const u of [lost, recorded]) {
    failFirstOf.add(ingestJobId(u.uploadId));
    await producer.enqueue(u);
    expect(await jobState(queue, ingestJobId(u.uploadId), 'failed')).toBe('failed');
  }
  await producer.requeue({ ...lost, notIngested: false });
  expect(await jobState(queue, ingestJobId(lost.uploadId), 'completed')).toBe('completed');
  await producer.requeue({ ...recorded, notIngested: true });
  expect(await queue.getJobState(ingestJobId(recorded.uploadId))).toBe('failed');
  expect(runs.filter((r) => r === ingestJobId(lost.uploadId))).toHaveLength(2);
  expect(runs.filter((r) => r === ingestJobId(recorded.uploadId))).toHaveLength(1);
});
