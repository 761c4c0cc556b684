/**
 * `case.awaiting_assignment`: an open case no specialist can open, waiting for a case manager's
 * `PUT /api/cases/:id/assignment`. Raised where that happens — a deactivation releasing a case no
 * other specialist fits (`specialist-deactivation.ts`), a signed report reopened for correction after
 * its author's deactivation (`cases/case-service.ts`) — in the caller's transaction, once per
 * assignment left (`recordEventOnce` on `previousAssignmentId`), ids and states only.
 * @packageDocumentation
 */
import type { SlaClockState } from '../cases/case-service';
import type { Queryable } from '../db/database';
import { recordEventOnce } from '../notify/events';

/** The reason a deactivation gives: on the timeline of each case it releases, and in the event. */
export const SPECIALIST_DEACTIVATED = 'specialist deactivated';

/** What the event says of the case. */
export interface AwaitingAssignment {
  readonly caseId: string;
  readonly status: string;
  /** The assignment of the deactivated specialist (ended by a release; still current on a reopened report). */
  readonly previousAssignmentId: string;
  readonly trigger: 'specialist-deactivated' | 'report-reopened';
  readonly slaClock: SlaClockState;
}

/** Records `case.awaiting_assignment` in `tx`, unless this assignment was announced already. */
export async function announceAwaitingAssignment(tx: Queryable, waiting: AwaitingAssignment): Promise<void> {
  await recordEventOnce(tx, 'case.awaiting_assignment', waiting.caseId, { ...waiting, reason: SPECIALIST_DEACTIVATED }, 'previousAssignmentId');
}
