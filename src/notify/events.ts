/**
 * The events the service announces (outbox → case-manager notifications and webhook subscribers).
 * Payloads carry ids, versions and states only: no names or clinical text, so a subscriber (a
 * family portal) fetches details through its own authorised channel.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';

/** Event types a webhook subscriber may ask for. */
export const EVENT_TYPES = [
  'records.complete',
  'records.updated',
  'pull.partial',
  'pull.failed',
  'assembly.failed',
  'sla.target_missed',
  'sla.limit_missed',
  'opinion.signed',
  'report.delivered',
  'delivery.needs_review',
  'delivery.failed',
  'delivery.in_doubt',
  'delivery.physician_not_told',
  'transfer.requested',
  'case.awaiting_assignment',
] as const;
/** One of {@link EVENT_TYPES}. */
export type EventType = (typeof EVENT_TYPES)[number];

/** How many of a pull's failed sources it put in review (`reviewSourceIds`: the child's record there merged or made inactive). */
function reviewed(data: Record<string, unknown>): number {
  return Array.isArray(data.reviewSourceIds) ? data.reviewSourceIds.length : 0;
}

/** What a pull event says of the sources it put in review: retrying does not help them, choosing the patient again does. */
function inReviewText(data: Record<string, unknown>): string {
  const n = reviewed(data);
  if (n === 0) return '';
  return ` ${n === 1 ? 'One source needs' : `${n} sources need`} review: the care team merged or deactivated the child's record there (POST /api/cases/${String(data.caseId ?? '{id}')}/sources/{sourceId}/patient to choose the child's patient again).`;
}

/** A sentence for the case manager's notification list. */
export function eventMessage(type: string, data: Record<string, unknown>): string {
  const v = typeof data.version === 'number' ? ` (version ${data.version})` : '';
  const failed = Array.isArray(data.failedSourceIds) ? data.failedSourceIds.length : 0;
  switch (type) {
    case 'records.complete': {
      const said = typeof data.serverMessages === 'number' && data.serverMessages > 0
        ? ` But the EHRs said ${data.serverMessages} thing${data.serverMessages === 1 ? '' : 's'} about their searches that may mean records are missing (results cut short, records withheld…): read them with the case's sources before assigning.`
        : '';
      return `All records are in${v ? ` and the case bundle is assembled${v}` : ''}: the case can be assigned to a specialist.${said}`;
    }
    case 'records.updated': {
      // `specialist` (absent in older events: active): whether the case's specialist can still act on it.
      const why = data.specialist === 'inactive' ? 'its specialist was deactivated' : data.specialist === 'none' ? 'the case has no specialist' : undefined;
      const who = why && `${why}: give it to one (PUT /api/cases/${String(data.caseId ?? '{id}')}/assignment) to review what is new`;
      const signed = typeof data.opinionVersion === 'number'
        ? ` Opinion version ${data.opinionVersion} was signed on ${typeof data.opinionBundleVersion === 'number' ? `bundle version ${data.opinionBundleVersion}` : 'earlier records'}: ${who ? `${who} and amend it if needed.` : 'the specialist should review what is new and amend it if needed.'}`
        : who ? ` But ${who}.` : ' Let the specialist know what is new.';
      const what = typeof data.changes === 'string' ? ` What changed: ${data.changes}` : '';
      return `The case records changed while the case is ${String(data.status ?? 'with the specialist')}: the case bundle was assembled again${v}, after ${triggerText(data.trigger)}.${signed}${what}`;
    }
    case 'pull.partial':
      return `The record pull ended partial: ${failed} source${failed === 1 ? '' : 's'} could not be pulled.${inReviewText(data)} ${reviewed(data) === failed ? 'Choose the patient there, then pull again.' : 'Check the pull and retry it.'}`;
    case 'pull.failed':
      return `The record pull failed: no source could be pulled.${inReviewText(data)} ${reviewed(data) === failed && failed > 0 ? 'Choose the patient there, then pull again.' : 'Check the sources and endpoints, then retry it.'}`;
    case 'assembly.failed':
      if (typeof data.trigger === 'string' && data.trigger.startsWith('source-')) {
        return `The case record could not be assembled again after ${triggerText(data.trigger)} (${typeof data.reason === 'string' ? data.reason : 'the assembly failed'}): ` +
          `until it is, the current record is not served, so the specialist cannot open it. Once the cause is fixed, rebuild it (POST /api/cases/${String(data.caseId ?? '{id}')}/bundle/rebuild).`;
      }
      return typeof data.uploadId === 'string'
        ? `The family's upload could not be taken into the case bundle (${typeof data.reason === 'string' ? data.reason : 'the job failed for good'}); its files are kept. Once the cause is fixed, rebuild the bundle (POST /api/cases/${String(data.caseId ?? '{id}')}/bundle/rebuild).`
        : `The case bundle could not be assembled after the record pull (${typeof data.reason === 'string' ? data.reason : 'the job failed for good'}). Once the cause is fixed, rebuild it (POST /api/cases/${String(data.caseId ?? '{id}')}/bundle/rebuild), then move the case to records_complete.`;
    case 'sla.target_missed':
      return `The report is past its 5-business-day target (due ${dueText(data)}).`;
    case 'sla.limit_missed':
      return `The report is past its 7-business-day limit (due ${dueText(data)}): act now.`;
    case 'opinion.signed':
      return data.recipients === 0
        ? `The opinion was signed${v}, but the case has no recipient: add the referring physician's EHR (POST /api/cases/${String(data.caseId ?? '{id}')}/recipients) and it is delivered at once.`
        : `The opinion was signed${v}; delivery to the referring physician's EHR has started.`;
    case 'report.delivered':
      return `The report${v} was delivered to the referring physician's EHR.`;
    case 'delivery.needs_review':
      if (Array.isArray(data.earlierInDoubt) && data.earlierInDoubt.length > 0) {
        return `The report${v} was not delivered: version ${data.earlierInDoubt.map(String).join(', ')} may already be in the child's chart at the recipient (its write was sent, its answer never came) and the recipient could not confirm whether it is. Check the chart there, then record what you found on that version's delivery (settle it: found, with its report's id there, or absent); this version is then queued again.`;
      }
      return data.patientOnRecord === true
        ? `The report${v} was not delivered: the child's record on file at the recipient was merged into another, made inactive or no longer matches the child there. Choose the child's patient there again.`
        : `The report${v} could not be delivered: the patient was not found exactly once at the recipient. Choose the patient there.`;
    case 'delivery.failed':
      return `Delivery of the report${v} keeps failing; it was stopped after ${String(data.attempts ?? 'several')} attempts. Check the recipient and retry.`;
    case 'delivery.in_doubt': {
      const versions = Array.isArray(data.versions) && data.versions.length > 0 ? ` (version ${data.versions.map(String).join(', ')})` : v;
      return `The case was ${String(data.status ?? 'ended')}, but the report${versions} may already be in the referring physician's EHR: its write was sent and the answer never came. Check the child's chart there and have it withdrawn if it is.`;
    }
    case 'delivery.physician_not_told':
      return `The report${v} is in the referring physician's EHR, but the EHR refused the message telling the physician (Communication): phone the referring physician to say the second opinion is in the child's chart.`;
    case 'transfer.requested':
      return 'The family asked to transfer care.';
    case 'case.awaiting_assignment': {
      const status = typeof data.status === 'string' ? ` (${data.status})` : '';
      const why = data.trigger === 'report-reopened'
        ? `The signed report was reopened for correction, but its specialist was deactivated: no specialist can amend it, and the case${status} waits for you.`
        : `The case's specialist was deactivated and no other active specialist fits: the case${status} has no specialist and waits for you.`;
      const clock = data.slaClock === 'paused'
        ? "Its SLA clock is paused while the family's information is awaited, and runs again once it is answered, specialist or not."
        : data.slaClock === 'stopped'
          ? 'Its SLA clock stopped at the first signature and stays stopped, but the referring physician waits for the correction.'
          : 'Its SLA clock keeps running meanwhile.';
      return `${why} Give it to one: PUT /api/cases/${String(data.caseId ?? '{id}')}/assignment with {specialistId} (or {match: true} once a fitting specialist is active) and a reason. ${clock}`;
    }
    case 'webhook.disabled':
      if (data.gone === true) {
        return `Webhook subscriber ${String(data.webhookId ?? '')} answered 410 Gone (its URL is no longer there) and was disabled: it gets no events until an admin enables it again (POST /api/webhooks/${String(data.webhookId ?? '{id}')}/enable), or removes it.`;
      }
      return `Webhook subscriber ${String(data.webhookId ?? '')} kept failing and was disabled: it gets no events until an admin enables it again (POST /api/webhooks/${String(data.webhookId ?? '{id}')}/enable) once it answers.`;
    default:
      return type;
  }
}

/** The due day of an SLA miss as the program counts it (`2026-01-20, end of day America/New_York`), else the instant. */
function dueText(data: Record<string, unknown>): string {
  if (typeof data.dueDay === 'string' && typeof data.timeZone === 'string') return `${data.dueDay}, end of day ${data.timeZone}`;
  return String(data.dueAt ?? '');
}

/** What an assembly trigger (`pull:<id>:<n>`, `upload:<id>`, `rebuild`, `source-removed:<id>`, …) was, in words. */
function triggerText(trigger: unknown): string {
  const kind = typeof trigger === 'string' ? trigger.split(':')[0] : undefined;
  switch (kind) {
    case 'pull': return 'a record pull';
    case 'upload': return 'a family upload';
    case 'rebuild': return 'a rebuild';
    case 'source-removed': return 'a source was removed';
    case 'source-patient': return 'another patient was chosen at a source';
    case 'source-change-reconcile': return 'a source change whose own assembly never ended (the process stopped)';
    default: return 'a change';
  }
}

/** Writes an event to the outbox, in the caller's transaction. */
export async function recordEvent(db: Queryable, type: EventType, caseId: string | null, data: Record<string, unknown>): Promise<void> {
  await db.query('INSERT INTO outbox (type, case_id, data) VALUES ($1, $2, $3)', [type, caseId, JSON.stringify(data)]);
}

/**
 * {@link recordEvent} unless the case already has an event of the type whose `data[key]` equals this
 * one's (a job run again after a crash tells once). Processed events are pruned after
 * `NOTIFY_OUTBOX_RETENTION_DAYS`: "once" holds within that time, far longer than any job's retries.
 * @returns whether it was recorded
 */
export async function recordEventOnce(db: Queryable, type: EventType, caseId: string, data: Record<string, unknown>, key: string): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO outbox (type, case_id, data) SELECT $1, $2, $3
     WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE case_id = $2 AND type = $1 AND data->>$4 = $3::jsonb->>$4)`,
    [type, caseId, JSON.stringify(data), key],
  );
  return result.rowCount === 1;
}

/** What workers and the API use to start work after a commit (BullMQ producers, see queues/deliver-report.ts). */
export interface WorkDispatch {
  /** Queues the delivery job; `requeues` makes a new job id after a manual retry. */
  deliver(deliveryId: string, requeues: number): Promise<void>;
  /** Asks the notify worker to drain the outbox now (it also polls). */
  notify(): Promise<void>;
}
