/**
 * What the billing and review services need, and their clock.
 * @packageDocumentation
 */
import type { CaseServiceDeps } from '../cases/case-service';
import type { CaseRecord } from '../db/case-repository';
import { findCase } from '../db/case-repository';
import type { Queryable } from '../db/database';
import { conflict, HttpProblem, notFound } from '../http/problem';

/** The current time of `deps` (tests pass a fixed clock). */
export function nowOf(deps: Pick<CaseServiceDeps, 'now'>): Date {
  return deps.now ? deps.now() : new Date();
}

/** Statuses in which nothing is billed or changed any more. */
export const CLOSED_FOR_BILLING: readonly string[] = ['ineligible', 'cancelled', 'closed'];

/**
 * Reads (and with `forUpdate` locks) a case; 404 when there is none.
 * @param closedMessage - when given, 409 with this text if the case is ineligible, cancelled or closed
 */
export async function caseFor(db: Queryable, id: string, forUpdate: boolean, closedMessage?: string): Promise<CaseRecord> {
  const record = await findCase(db, id, forUpdate);
  if (!record) throw notFound(`Case ${id}`);
  if (closedMessage !== undefined && CLOSED_FOR_BILLING.includes(record.status)) {
    throw conflict(`${closedMessage}: the case is ${record.status}.`, { currentStatus: record.status });
  }
  return record;
}

/** A 400 problem naming one field of the request body. */
export function fieldProblem(field: string, detail: string): HttpProblem {
  return new HttpProblem(400, 'Invalid request', `${field}: ${detail}`, [
    { field, pointer: `#/${field.split('.').join('/')}`, detail },
  ]);
}
