/**
 * What `GET /api/cases/:id` shows of billing and review: the current quote with what the family
 * approved, the payment status, the assigned specialist and the information requests.
 * @packageDocumentation
 */
import type { CaseServiceDeps } from '../cases/case-service';
import { findCase } from '../db/case-repository';
import { quoteOfCase } from '../billing/case-quote';
import { paidCents } from '../billing/payment-repository';
import { paymentStatus } from '../billing/payment-status';
import { caseSettledStatus } from '../billing/case-settlement';
import { findCurrentAssignment } from './assignment-repository';
import { informationRequestView } from './information-request-service';
import { listInformationRequests } from './information-request-repository';
import { findSpecialist } from './specialist-repository';
import { displayName } from './practitioner';

/** Billing and review facts of a case, for its detail view (empty for an unknown case). */
export async function caseReviewExtras(deps: CaseServiceDeps, caseId: string): Promise<Record<string, unknown>> {
  const record = await findCase(deps.db, caseId);
  if (!record) return {};
  const quote = quoteOfCase(deps.domain.prices, record);
  const [paid, assignment, requests] = await Promise.all([
    paidCents(deps.db, caseId),
    findCurrentAssignment(deps.db, caseId),
    listInformationRequests(deps.db, caseId),
  ]);
  const specialist = assignment ? await findSpecialist(deps.db, assignment.specialistId) : undefined;
  return {
    quote,
    payment: await caseSettledStatus(deps.db, deps.config.programTimeZone, record, paymentStatus(quote, paid)),
    assignment:
      assignment && specialist
        ? { id: assignment.id, specialistId: specialist.id, specialist: displayName(specialist), npi: specialist.npi, method: assignment.method, matchedSpecialty: assignment.matchedSpecialty, assignedAt: assignment.assignedAt.toISOString() }
        : null,
    informationRequests: requests.map(informationRequestView),
  };
}
