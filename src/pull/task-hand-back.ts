import type { Queryable } from '../db/database';

/**
 * A running pull task handed back when its worker stops (SIGTERM) at a page boundary: `queued` again,
 * its cursor and counters as its last page committed them, so the next run — another worker, or this
 * service once restarted — marks it `running` (`markTaskRunning` takes a queued task) and resumes from
 * that cursor. `queued`, not `running`: no worker is asking the EHR for it now, and a pull whose
 * handed-back query nobody picks up is shown as waiting for a worker (`awaiting_worker`,
 * pull-activity.ts), not for the EHR. Its `last_error` is kept (a stop is not an error), and the
 * retries this run counted after its last commit are added. A task that ended meanwhile (cancelled) is
 * left as it is.
 * @returns the pages committed for the task (its cursor's position), or undefined when it was not running.
 */
export async function handTaskBack(db: Queryable, taskId: string, retriesDelta: number): Promise<number | undefined> {
  const { rows } = await db.query<{ pages: number }>(
    `UPDATE pull_tasks SET state = 'queued', retries = retries + $2, waiting_until = NULL, updated_at = now()
     WHERE id = $1 AND state = 'running'
     RETURNING pages`,
    [taskId, retriesDelta],
  );
  return rows[0]?.pages;
}
