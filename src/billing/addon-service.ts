/**
 * Add-ons (radiology or pathology review): the case manager (or a specialist's expert-input
 * request, or an imaging upload) *offers* one; the family's decision is recorded by the case
 * manager. Only an approved add-on enters the quote total. Each step writes a timeline event;
 * repeating a step changes nothing.
 * @packageDocumentation
 */
import type { CaseServiceDeps } from '../cases/case-service';
import type { AddOnCode } from '../cases/prices';
import type { Quote } from '../cases/pricing';
import { insertCaseEvent, type CaseRecord } from '../db/case-repository';
import type { Queryable } from '../db/database';
import { conflict } from '../http/problem';
import { logger } from '../log';
import { answerExpertInputRequests } from '../review/information-request-answers';
import { saveAddOns } from './addon-repository';
import { caseFor, nowOf } from './billing-deps';
import { primaryRole, type Principal } from '../http/auth';
import { quoteOfCase } from './case-quote';
import { caseSettledStatus } from './case-settlement';
import { paidCents } from './payment-repository';
import { paymentStatus, type PaymentStatus } from './payment-status';

/** How the family's decision reached the case manager. */
export const DECISION_CHANNELS = ['phone', 'email', 'portal', 'in_person', 'written'] as const;
/** A decision channel. */
export type DecisionChannel = (typeof DECISION_CHANNELS)[number];

/** The family's answer to an offered add-on. */
export interface AddOnDecision {
  readonly addOn: AddOnCode;
  readonly decision: 'approved' | 'declined';
  readonly channel: DecisionChannel;
}

/** What offer and decision routes answer. */
export interface AddOnResult {
  readonly addOn: AddOnCode;
  readonly status: 'offered' | 'approved' | 'declined';
  /** False when the same step had been recorded before (nothing changed). */
  readonly changed: boolean;
  readonly quote: Quote;
}

/**
 * Offers an add-on inside the caller's transaction (the case row must be locked by the caller).
 * An add-on already offered or approved is left as it is.
 */
export async function offerAddOnInTx(
  deps: CaseServiceDeps,
  tx: Queryable,
  record: CaseRecord,
  offer: { addOn: AddOnCode; reason?: string | undefined; actor: Principal; now: Date; data?: Record<string, unknown> },
): Promise<AddOnResult> {
  if (record.addonsOffered.includes(offer.addOn) || record.addonsApproved.includes(offer.addOn)) {
    const status = record.addonsApproved.includes(offer.addOn) ? 'approved' : 'offered';
    return { addOn: offer.addOn, status, changed: false, quote: quoteOfCase(deps.domain.prices, record) };
  }
  const offered = [...record.addonsOffered, offer.addOn];
  const quote = quoteOfCase(deps.domain.prices, { addonsOffered: offered, addonsApproved: record.addonsApproved, quote: record.quote });
  await saveAddOns(tx, record.id, { offered, approved: record.addonsApproved, quote, at: offer.now });
  const fee = deps.domain.prices.addOns.find((a) => a.code === offer.addOn)?.fee;
  await insertCaseEvent(tx, {
    caseId: record.id,
    type: 'addon_offered',
    actorSub: offer.actor.sub,
    actorRole: primaryRole(offer.actor),
    reason: offer.reason,
    at: offer.now,
    data: { addOn: offer.addOn, fee, ...offer.data },
  });
  return { addOn: offer.addOn, status: 'offered', changed: true, quote };
}

/** `POST /api/cases/:id/offers`: the case manager offers an add-on to the family. */
export async function offerAddOn(
  deps: CaseServiceDeps,
  caseId: string,
  addOn: AddOnCode,
  reason: string | undefined,
  actor: Principal,
): Promise<AddOnResult> {
  const now = nowOf(deps);
  const result = await deps.db.transaction(async (tx) => {
    const record = await caseFor(tx, caseId, true, 'An add-on cannot be offered');
    return offerAddOnInTx(deps, tx, record, { addOn, reason, actor, now });
  });
  if (result.changed) logger.info('add-on offered', { caseId, event: 'addon_offered' });
  return result;
}

/**
 * `POST /api/cases/:id/approvals`: records the family's decision on an offered add-on. An
 * approval adds the fee to the quote; a decline withdraws the offer. Either answers the
 * specialist's open expert-input request for that add-on.
 * @throws HttpProblem 409 when the add-on was never offered (or was already decided otherwise)
 */
export async function decideAddOn(deps: CaseServiceDeps, caseId: string, decision: AddOnDecision, actor: Principal): Promise<AddOnResult> {
  const now = nowOf(deps);
  const { addOn } = decision;
  const result = await deps.db.transaction(async (tx): Promise<AddOnResult> => {
    const record = await caseFor(tx, caseId, true, 'An add-on decision cannot be recorded');
    const approved = record.addonsApproved.includes(addOn);
    if (approved && decision.decision === 'approved') {
      // Recorded before: nothing changes, but an expert-input request for the add-on still open (one
      // that slipped in after the approval) is answered, or it would keep the SLA clock paused.
      // `changed` stays false: the decision itself was recorded before.
      await answerExpertInputRequests(deps, tx, { caseId, addOn, answer: `The family approved the ${addOn} add-on.`, actor, now });
      return { addOn, status: 'approved', changed: false, quote: quoteOfCase(deps.domain.prices, record) };
    }
    if (approved) {
      throw conflict(`The family already approved ${addOn}; an approved add-on cannot be declined afterwards.`, { addOn });
    }
    if (!record.addonsOffered.includes(addOn)) {
      throw conflict(
        `The add-on ${addOn} cannot be ${decision.decision} because it was never offered. Offer it first (POST /api/cases/${caseId}/offers).`,
        { addOn, offered: record.addonsOffered },
      );
    }
    const offered = decision.decision === 'declined' ? record.addonsOffered.filter((c) => c !== addOn) : record.addonsOffered;
    const approvedList = decision.decision === 'approved' ? [...record.addonsApproved, addOn] : record.addonsApproved;
    const quote = quoteOfCase(deps.domain.prices, { addonsOffered: offered, addonsApproved: approvedList, quote: record.quote });
    await saveAddOns(tx, caseId, { offered, approved: approvedList, quote, at: now });
    await insertCaseEvent(tx, {
      caseId,
      type: decision.decision === 'approved' ? 'addon_approved' : 'addon_declined',
      actorSub: actor.sub,
      actorRole: primaryRole(actor),
      at: now,
      data: { addOn, channel: decision.channel, total: quote.total },
    });
    await answerExpertInputRequests(deps, tx, {
      caseId,
      addOn,
      answer: `The family ${decision.decision} the ${addOn} add-on.`,
      actor,
      now,
    });
    return { addOn, status: decision.decision, changed: true, quote };
  });
  logger.info('add-on decided', { caseId, state: decision.decision });
  return result;
}

/**
 * The case's current quote (base + offered and approved add-ons) and its payment status as the other JSON views show it (`case-settlement.ts`: a
 * case that ended without a report has its `settlement`, nothing due).
 */
export async function getCaseQuoteAndPayment(deps: CaseServiceDeps, caseId: string): Promise<{ quote: Quote; payment: PaymentStatus }> {
  const record = await caseFor(deps.db, caseId, false);
  const quote = quoteOfCase(deps.domain.prices, record);
  return { quote, payment: await caseSettledStatus(deps.db, deps.config.programTimeZone, record, paymentStatus(quote, await paidCents(deps.db, caseId))) };
}
