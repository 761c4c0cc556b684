import { randomBytes, randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { QUEUES } from '../../queues/names';
import { enqueueWebhooks, requeueWebhooks, webhookJobId, type SendWebhookPayload } from '../../queues/send-webhook';
import { bullConnectionOptions, removeQueuePrefixKeys } from '../../src/redis';
import { jobState } from '../support/service';
import { TEST_REDIS_URL } from '../support/redis-url';

/**
 * A webhook delivery still `queued` whose job ended without sending (its subscriber was disabled
 * then) is run again when the stale sweep queues it once the subscriber is enabled: re-adding the
 * same job id did nothing while BullMQ kept the ended job. Real Redis.
 */
const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
const queue = new Queue<SendWebhookPayload>(QUEUES.sendWebhook, { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
const policy = { attempts: 2, backoffMs: 10 };

afterAll(async () => {
  await queue.close();
  await removeQueuePrefixKeys(TEST_REDIS_URL, prefix);
});

it('runs again a webhook job that ended while its delivery is still queued, and adds nothing for one still waiting', async () => {
  const ended = randomUUID();
  const runs: string[] = [];
  const worker = new Worker<SendWebhookPayload>(QUEUES.sendWebhook, async (job) => void runs.push(job.data.webhookDeliveryId), { connection: bullConnectionOptions(TEST_REDIS_URL), prefix });
  try {
    await enqueueWebhooks(queue, [ended], policy);
    expect(await jobState(queue, webhookJobId(ended), 'completed')).toBe('completed');
    await requeueWebhooks(queue, [ended], policy);
    expect(await jobState(queue, webhookJobId(ended), 'completed')).toBe('completed');
    expect(runs).toEqual([ended, ended]);
  } finally {
    await worker.close();
  }
  // No worker now: a job still waiting is neither doubled nor moved.
  const waiting = randomUUID();
  await enqueueWebhooks(queue, [waiting], policy);
  await requeueWebhooks(queue, [waiting], policy);
  expect(await queue.getJobState(webhookJobId(waiting))).toBe('waiting');
  expect((await queue.getJobs(['waiting'])).filter((j) => j.data.webhookDeliveryId === waiting)).toHaveLength(1);
});
