import { Worker, type ConnectionOptions } from 'bullmq';
import { assembleCase, type AssembleDeps } from '../src/assembly/assemble';
import { AssemblyTooLargeError } from '../src/assembly/assembly-memory';
import { bundleVersionFor } from '../src/assembly/bundle-repository';
import type { CaseServiceDeps } from '../src/cases/case-service';
import { errorFields, logger } from '../src/log';
import { finishPull, recordPullAssemblyFailed, recordsCompleteAfter } from '../src/pull/finish-pull';
import { pullAssemblyTrigger } from '../src/pull/pull-progress';
import { answerRequestsOfPull } from '../src/review/information-request-answers';
import { QUEUES } from './names';
import { resumableJobLock } from './resumable';
import { AssembleCasePayload } from './pull-flow';
import { runJob } from './run-job';

/**
 * Queue `assemble-case`: the parent of a pull flow. It runs once every pull-source child (and
 * every attachment job added under it) is done: decides the pull's state, assembles a new version of
 * the case bundle from the raw store, then moves the case on (a case in records_complete has its bundle).
 * Idempotent: the pull state derives from the tasks in Postgres, and an attempt that already
 * produced its bundle version does not produce another. Its last attempt failing in the assembly
 * (the pull already finished) records `assembly.failed`, so the case managers learn the records are
 * in but the bundle is not.
 */
export function startAssembleCaseWorker(
  deps: CaseServiceDeps & AssembleDeps,
  connection: () => ConnectionOptions,
  prefix: string,
  lockDurationMs: number,
): Worker<AssembleCasePayload> {
  const worker = new Worker<AssembleCasePayload>(
    QUEUES.assembleCase,
    async (job) =>
      runJob(QUEUES.assembleCase, job, async () => {
        const { pullId, caseId, attempt } = AssembleCasePayload.parse(job.data);
        // The case moves to records_complete only once its bundle is assembled (below).
        const state = await finishPull(deps, pullId, { moveCase: false });
        // Nothing came in, or the pull was cancelled (records of a wrong patient, say): no new bundle version.
        if (state === 'failed' || state === 'cancelled') return { state };
        const trigger = pullAssemblyTrigger(pullId, attempt);
        const tellFailed = (reason: string) => recordPullAssemblyFailed(deps.db, { caseId, pullId, trigger, pullState: state }, reason);
        let version: number | undefined;
        try {
          // Run again after its version was stored (a crash before the case moved on): that version is
          // the one `records.complete` names.
          version = (await bundleVersionFor(deps.db, caseId, trigger)) ?? (await assembleCase(deps, caseId, { trigger })).version;
        } catch (err) {
          if (!(err instanceof AssemblyTooLargeError)) {
            // The pull is finished now, so the reconciler no longer looks at it: the last attempt tells
            // the case managers (the case stays in collecting_records until its bundle is rebuilt).
            const made = job.attemptsMade + 1;
            if (made >= (job.opts.attempts ?? 1)) {
              const reason = `the assembly failed ${made} time${made === 1 ? '' : 's'} (${errorFields(err).errorName})`;
              await tellFailed(reason).catch((e: unknown) => logger.error('assembly failure not recorded', { caseId, pullId, ...errorFields(e) }));
            }
            throw err;
          }
          // Retrying cannot help (this process is too small for the case): say so once (a run again
          // after a crash does not say it twice), and end the job.
          await tellFailed(err.detail);
          logger.error('case too large to assemble in this process', { caseId, pullId, resources: err.resources, budgetMb: Math.floor(err.budgetBytes / 1048576) });
          return { state, assembled: false };
        }
        await recordsCompleteAfter(deps, caseId, pullId, state, version);
        // A specialist's re-pull request is answered once its records are in the bundle (idempotent).
        await answerRequestsOfPull(deps, pullId, state);
        return { state, version };
      }),
    { connection: connection(), prefix, concurrency: 2, ...resumableJobLock(lockDurationMs) },
  );
  worker.on('failed', (job, err) => logger.error('assemble job failed', { jobId: job?.id, ...errorFields(err) }));
  worker.on('error', () => undefined);
  return worker;
}
