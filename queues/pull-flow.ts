import { FlowProducer, Queue, type ConnectionOptions, type FlowJob } from 'bullmq';
import { z } from 'zod';
import { absentJobIds } from './absent-jobs';
import { ATTACHMENT_JOB_BACKOFF_MS, PULL_JOB_BACKOFF_MS } from '../src/config';
import { attachmentJobOptions, attachmentJobSpecs } from './fetch-attachment';
import { QUEUES } from './names';

/** Payload of a `pull-source` job: one pull task (one query at one source). */
export const PullSourcePayload = z
  .object({
    taskId: z.uuid(),
    pullId: z.uuid(),
    attempt: z.int().min(1),
    /** When the job first waited for its paused endpoint (epoch ms; see paused-endpoint.ts). */
    pausedSince: z.int().min(0).optional(),
  })
  .strict();
export type PullSourcePayload = z.infer<typeof PullSourcePayload>;

/** Payload of the `assemble-case` parent job: runs when every task of the pull attempt is done. */
export const AssembleCasePayload = z.object({ pullId: z.uuid(), caseId: z.uuid(), attempt: z.int().min(1) }).strict();
export type AssembleCasePayload = z.infer<typeof AssembleCasePayload>;

/** Retry policy of pull jobs: the HTTP client already retries each request politely; this covers the rest (worker crash, endpoint paused). */
export const PULL_JOB_ATTEMPTS = 4;

/** Job ids are derived from the pull attempt and task, so enqueuing twice adds nothing. */
export const assembleJobId = (pullId: string, attempt: number): string => `assemble-${pullId}-${attempt}`;
export const pullJobId = (taskId: string, attempt: number): string => `pull-${taskId}-${attempt}`;

/**
 * The flow of one pull attempt: an `assemble-case` parent with one `pull-source` child per task,
 * and the attachment jobs of `attachments` (pending attachments of tasks that are not run again, e.g.
 * the failed attachments a retry fetches again). A child that fails for good does not block the
 * parent (`ignoreDependencyOnFailure`): the pull then ends `partial`, naming what failed.
 */
export function pullFlow(
  pull: { id: string; caseId: string; attempt: number },
  taskIds: readonly string[],
  backoffMs = PULL_JOB_BACKOFF_MS,
  attachments: readonly { readonly id: string; readonly inline: boolean }[] = [],
  attachmentBackoffMs = ATTACHMENT_JOB_BACKOFF_MS,
): FlowJob {
  return {
    name: 'assemble',
    queueName: QUEUES.assembleCase,
    data: { pullId: pull.id, caseId: pull.caseId, attempt: pull.attempt } satisfies AssembleCasePayload,
    opts: { jobId: assembleJobId(pull.id, pull.attempt), attempts: 5, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: { age: 86_400 } },
    children: taskIds.map((taskId): FlowJob => ({
      name: 'pull',
      queueName: QUEUES.pullSource,
      data: { taskId, pullId: pull.id, attempt: pull.attempt } satisfies PullSourcePayload,
      opts: {
        jobId: pullJobId(taskId, pull.attempt),
        attempts: PULL_JOB_ATTEMPTS,
        backoff: { type: 'exponential', delay: backoffMs },
        ignoreDependencyOnFailure: true,
        removeOnComplete: { age: 86_400 },
        removeOnFail: { age: 7 * 86_400 },
      },
    })).concat(
      attachmentJobSpecs(attachments, pull.attempt).map(({ data, jobId }): FlowJob => ({
        name: 'fetch',
        queueName: QUEUES.fetchAttachment,
        data,
        opts: { ...attachmentJobOptions(jobId, attachmentBackoffMs), ignoreDependencyOnFailure: true },
      })),
    ),
  };
}

/**
 * Where a pull attempt's flow stands in Redis: `missing` when its parent job is not there (Redis
 * lost it, or enqueuing never happened), else the parent's BullMQ state.
 */
export type FlowState = 'missing' | 'pending' | 'completed' | 'failed';

/** Producer side of pulls: used by the API (start, retry) and the reconciler. */
export class PullFlowProducer {
  private readonly producer: FlowProducer;
  /** The parents' queue, to look a flow up (opened on first use). */
  private parents: Queue | undefined;
  private tasks: Queue | undefined;

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly prefix: string,
    private readonly backoffMs = PULL_JOB_BACKOFF_MS,
    private readonly attachmentBackoffMs = ATTACHMENT_JOB_BACKOFF_MS,
  ) {
    this.producer = new FlowProducer({ connection, prefix });
    this.producer.on('error', () => undefined);
  }

  async enqueue(
    pull: { id: string; caseId: string; attempt: number },
    taskIds: readonly string[],
    attachments: readonly { readonly id: string; readonly inline: boolean }[] = [],
  ): Promise<void> {
    await this.producer.add(pullFlow(pull, taskIds, this.backoffMs, attachments, this.attachmentBackoffMs));
  }

  /** Where the flow of the pull's current attempt stands ({@link FlowState}). */
  async flowState(pull: { id: string; attempt: number }): Promise<FlowState> {
    const state = await this.parentQueue().getJobState(assembleJobId(pull.id, pull.attempt));
    if (state === 'unknown') return 'missing';
    return state === 'completed' || state === 'failed' ? state : 'pending';
  }

  /**
   * Runs a parent that failed for good once more (its pull is still unfinished), unless it already
   * failed again after such a run. BullMQ keeps `attemptsMade` across a retry, so a parent that spent
   * exactly its attempts has not been retried yet.
   * @returns `spent` when it was retried before (the caller decides the pull without it); else
   *   `retried` (also when it is not failed any more: it runs, or ran, on its own)
   */
  async retryParent(pull: { id: string; attempt: number }): Promise<'retried' | 'spent'> {
    const job = await this.parentQueue().getJob(assembleJobId(pull.id, pull.attempt));
    if (!job || (await job.getState()) !== 'failed') return 'retried';
    if (job.attemptsMade > (job.opts.attempts ?? 1)) return 'spent';
    await job.retry('failed');
    return 'retried';
  }

  /**
   * The tasks of `taskIds` whose job for the pull's attempt is not in Redis (lost with it): only those
   * are added to a waiting flow again ({@link absentJobIds}). The task row may still say `running`
   * while its job fails for good: the two are not one transaction.
   */
  async withoutJobs(pull: { id: string; attempt: number }, taskIds: readonly string[]): Promise<string[]> {
    const absent = await absentJobIds(this.taskQueue(), taskIds.map((taskId) => pullJobId(taskId, pull.attempt)));
    return taskIds.filter((taskId) => absent.has(pullJobId(taskId, pull.attempt)));
  }

  private taskQueue(): Queue {
    if (!this.tasks) {
      this.tasks = new Queue(QUEUES.pullSource, { connection: this.connection, prefix: this.prefix });
      this.tasks.on('error', () => undefined);
    }
    return this.tasks;
  }

  private parentQueue(): Queue {
    if (!this.parents) {
      this.parents = new Queue(QUEUES.assembleCase, { connection: this.connection, prefix: this.prefix });
      this.parents.on('error', () => undefined);
    }
    return this.parents;
  }

  get queuePrefix(): string {
    return this.prefix;
  }

  async close(): Promise<void> {
    await Promise.all([this.producer.close(), this.parents?.close(), this.tasks?.close()]);
  }
}
