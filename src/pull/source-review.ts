/**
 * A resolved source whose child Patient a pull found no longer standing (merged into another record,
 * or inactive: `source-patient-standing.ts`) goes to `needs_review`, once: the same state and fields a
 * source gets when patient matching cannot decide (`source-service.ts`), so the case manager chooses
 * the patient again through the same route, from the same `candidates`.
 * @packageDocumentation
 */
import { insertCaseEvent } from '../db/case-repository';
import type { Database } from '../db/database';
import { logger } from '../log';
import { stopSourceInRunningPulls, type TaskRow } from './pull-repository';
import type { Patient } from 'fhir/r4';
import { sourcePatientReview, SourcePatientReviewError, type SourcePatientReview } from './source-patient-standing';

const SYSTEM_PULL_SUB = 'system:pull';

/**
 * In one transaction: the source `needs_review` with the reason and candidates, only while it is still
 * resolved to the patient the task pulled for (a source already in review, removed, or pointed at
 * another child by the case manager meanwhile is left as it is); the task `failed` with the reason;
 * the source's other queries in the pulls under way stopped (`cancelled`, their stored pages kept: they
 * would go on asking the EHR for a record it says is no longer the child's); and the case timeline
 * event `source_needs_review`. A page read again (a retried job, two queries that both read the
 * Patient) finds the source in review already: nothing is changed or written twice.
 * @returns whether the source was put in review now
 */
export async function putSourceInReview(db: Database, task: TaskRow, caseId: string, review: SourcePatientReview): Promise<boolean> {
  const done = await db.transaction(async (tx) => {
    const { rowCount } = await tx.query(
      `UPDATE case_sources SET state = 'needs_review', review_reason = $2, candidates = $3, updated_at = now()
       WHERE id = $1 AND state = 'resolved' AND remote_patient_id = $4`,
      [task.sourceId, review.reason, JSON.stringify(review.candidates), task.remotePatientId],
    );
    if (rowCount !== 1) return undefined;
    // This query ends failed with the reason (the pull names its source); only then are the others stopped.
    await tx.query(
      "UPDATE pull_tasks SET state = 'failed', last_error = $2, waiting_until = NULL, finished_at = now(), updated_at = now() WHERE id = $1 AND state <> 'cancelled'",
      [task.id, review.reason],
    );
    const stopped = await stopSourceInRunningPulls(tx, task.sourceId, "stopped: the care team's record for this child was merged or made inactive; the source needs review");
    await insertCaseEvent(tx, {
      caseId,
      type: 'source_needs_review',
      actorSub: SYSTEM_PULL_SUB,
      reason: review.reason,
      data: {
        sourceId: task.sourceId,
        pullId: task.pullId,
        remotePatientId: task.remotePatientId,
        replacedBy: review.replacedBy,
        inactive: review.inactive,
        queriesStopped: stopped.tasks,
      },
    });
    return stopped;
  });
  if (done) logger.info('source needs review: its patient record was merged or made inactive', { caseId, sourceId: task.sourceId, pullId: task.pullId, queriesStopped: done.tasks });
  return done !== undefined;
}

/**
 * Judges the child's Patient a query read at the source (`sourcePatientReview`): one that still stands
 * passes; one merged into another record or inactive puts the source in review ({@link putSourceInReview})
 * and ends the query.
 * @throws SourcePatientReviewError (permanent) when the record no longer stands, whether put in review now or before
 */
export async function judgeSourcePatient(db: Database, task: TaskRow, at: { caseId: string; baseUrl: string }, patient: Patient): Promise<void> {
  const review = sourcePatientReview(patient, { caseId: at.caseId, sourceId: task.sourceId, baseUrl: at.baseUrl });
  if (!review) return;
  await putSourceInReview(db, task, at.caseId, review);
  throw new SourcePatientReviewError(review.reason, review.logReason);
}
