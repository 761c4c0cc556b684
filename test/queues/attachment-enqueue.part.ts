import { randomBytes } from 'node:crypto';
import { FlowProducer, Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import { enqueueAttachments } from '../../queues/fetch-attachment';
import { PullFlowProducer } from '../../queues/pull-flow';
import { ATTACHMENT_JOB_BACKOFF_MS } from '../../src/config';
import { QUEUES } from '../../queues/names';
import { bullConnectionOptions, removeQueuePrefixKeys } from '../../src/redis';
import { TEST_REDIS_URL } from '../support/redis-url';

/**
 * An attachment job is added under its pull's parent (`assemble-case`) by the page that found the
 * attachment; another page or query may find the same attachment later and add its job again. BullMQ
 * answers a second add of a job id that exists and is not completed by putting the job back among the
 * parent's pending dependencies: for a job that already failed for good (ignored by the parent) the
 * parent would then wait for it for ever, and the pull would stay `running`. Real Redis, own prefix.
 */

it('does not make a pull wait again for an attachment whose job already failed for good when another page finds it', async () => {
  const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
  const connection = bullConnectionOptions(TEST_REDIS_URL);
  const flows = new FlowProducer({ connection, prefix });
  const attachments = new Queue(QUEUES.fetchAttachment, { connection, prefix });
  const events = new QueueEvents(QUEUES.fetchAttachment, { connection, prefix });
  let worker: Worker<unknown, void> | undefined;
  try {
    await events.waitUntilReady();
    // The pull's parent, waiting for one task (no worker takes it here).
    const { job: parent } = await flows.add({
      name: 'assemble',
      queueName: QUEUES.assembleCase,
      data: {},
      opts: { jobId: 'assemble-p-1' },
      children: [{ name: 'pull', queueName: QUEUES.pullSource, data: {}, opts: { jobId: 'pull-t-1', ignoreDependencyOnFailure: true } }],
    });
    const underParent = { id: parent.id as string, queue: parent.queueQualifiedName };

    // A page finds the attachment; its job fails for good (say the document was refused).
    const failed = new Promise<void>((resolve) => events.once('failed', () => resolve()));
    await enqueueAttachments(attachments, [{ id: 'doc-1', inline: false }], 1, underParent);
    worker = new Worker<unknown, void>(QUEUES.fetchAttachment, async () => {
      throw new UnrecoverableError('refused');
    }, { connection, prefix });
    await failed;
    expect(await parent.getDependenciesCount()).toMatchObject({ unprocessed: 1, ignored: 1 });

    // Another page finds it again: the parent still waits for the task only.
    await enqueueAttachments(attachments, [{ id: 'doc-1', inline: false }, { id: 'doc-2', inline: false }], 1, underParent);
    const { unprocessed = [] } = await parent.getDependencies({ unprocessed: {} });
    expect(unprocessed.map((key) => key.split(':').at(-1)).sort()).toEqual(['att-doc-2-1', 'pull-t-1']);
  } finally {
    await worker?.close();
    await events.close();
    await flows.close();
    await attachments.close();
    await removeQueuePrefixKeys(TEST_REDIS_URL, prefix);
  }
});

it('adds attachment jobs with the backoff it is given (ATTACHMENT_JOB_BACKOFF_MS), by itself and in a pull flow', async () => {
  const prefix = `sobtest-${randomBytes(4).toString('hex')}`;
  const connection = bullConnectionOptions(TEST_REDIS_URL);
  const attachments = new Queue(QUEUES.fetchAttachment, { connection, prefix });
  const flows = new PullFlowProducer(connection, prefix, 5000, 250);
  try {
    await enqueueAttachments(attachments, [{ id: 'doc-1', inline: false }], 1, undefined, 40);
    await enqueueAttachments(attachments, [{ id: 'doc-2', inline: false }], 1);
    await flows.enqueue({ id: 'pull-1', caseId: 'case-1', attempt: 1 }, [], [{ id: 'doc-3', inline: false }]);
    const backoff = async (jobId: string): Promise<unknown> => (await attachments.getJob(jobId))?.opts.backoff;
    expect(await backoff('att-doc-1-1')).toEqual({ type: 'exponential', delay: 40 });
    expect(await backoff('att-doc-2-1')).toEqual({ type: 'exponential', delay: ATTACHMENT_JOB_BACKOFF_MS });
    expect(await backoff('att-doc-3-1')).toEqual({ type: 'exponential', delay: 250 });
  } finally {
    await flows.close();
    await attachments.close();
    await removeQueuePrefixKeys(TEST_REDIS_URL, prefix);
  }
});
