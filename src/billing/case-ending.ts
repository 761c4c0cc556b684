/**
 * How and when a case ended without a report (`ENDED_WITHOUT_REPORT`: `cancelled`, the family
 * withdrew; `ineligible`, the request was refused), read once for the receipt and the JSON views of
 * payments alike.
 * @packageDocumentation
 */
import { endedWithoutReport } from '../cases/lifecycle';
import { localDateOf } from '../cases/zoned-date';
import { listCaseEvents, type CaseEventRecord, type CaseRecord } from '../db/case-repository';
import type { Queryable } from '../db/database';

/** How a case ended without a report. */
export interface CaseEnding {
  /** `withdrawn`: the case was cancelled; `ineligible`: the request was refused. */
  readonly kind: 'withdrawn' | 'ineligible';
  /** `YYYY-MM-DD` in the program's time zone: the day the case ended. */
  readonly on: string;
}

/**
 * The ending of `record` given its timeline `events`, undefined while it is live (or once it ended
 * with its report: `closed`). The day is that of its last transition into its status (the row's
 * last update when the timeline has none).
 */
export function endingOf(record: Pick<CaseRecord, 'status' | 'updatedAt'>, events: readonly CaseEventRecord[], timeZone: string): CaseEnding | undefined {
  if (!endedWithoutReport(record.status)) return undefined;
  const endedAt = [...events].reverse().find((e) => e.type === 'transition' && e.toStatus === record.status)?.at;
  return { kind: record.status === 'cancelled' ? 'withdrawn' : 'ineligible', on: localDateOf(endedAt ?? record.updatedAt, timeZone) };
}

/** {@link endingOf} `record`, reading its timeline only when it has ended without a report. */
export async function caseEnding(db: Queryable, record: Pick<CaseRecord, 'id' | 'status' | 'updatedAt'>, timeZone: string): Promise<CaseEnding | undefined> {
  return endedWithoutReport(record.status) ? endingOf(record, await listCaseEvents(db, record.id), timeZone) : undefined;
}
