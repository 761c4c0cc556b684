import { Worker, type ConnectionOptions } from 'bullmq';
import type { CaseServiceDeps } from '../src/cases/case-service';
import { errorFields, logger, withLogContext } from '../src/log';
import { finishPull } from '../src/pull/finish-pull';
import { QUEUES } from './names';
import { AssembleCasePayload } from './pull-flow';

/**
 * Queue `assemble-case`: the parent of a pull flow. It runs once every pull-source child (and
 * every attachment job added under it) is done, decides the pull's state and moves the case on.
 * Idempotent: it derives everything from the tasks in Postgres.
 */
export function startAssembleCaseWorker(deps: CaseServiceDeps, connection: () => ConnectionOptions, prefix: string, lockDurationMs: number): Worker<AssembleCasePayload> {
  const worker = new Worker<AssembleCasePayload>(
    QUEUES.assembleCase,
    async (job) =>
      withLogContext({ jobId: `${QUEUES.assembleCase}:${job.id ?? ''}` }, async () => {
        const { pullId } = AssembleCasePayload.parse(job.data);
        return finishPull(deps, pullId);
      }),
    { connection: connection(), prefix, concurrency: 2, lockDuration: lockDurationMs, stalledInterval: lockDurationMs },
  );
  worker.on('failed', (job, err) => logger.error('assemble job failed', { jobId: job?.id, ...errorFields(err) }));
  worker.on('error', () => undefined);
  return worker;
}
