/**
 * Imaging in a case makes the quote offer a pediatric radiologist's review (add-on
 * `radiology-review` of `mappings/prices.json`). Offering is automatic and idempotent; the fee
 * enters the quote's total only once the family approves the add-on (see `pricing.ts`), which is
 * recorded elsewhere.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import { findCase, hasCaseEvent, insertCaseEvent } from '../db/case-repository';
import { isCaseStatus, isTerminal } from './lifecycle';
import { loadPriceList, type AddOnCode, type PriceList } from './prices';
import { quoteOfCase } from '../billing/case-quote';

/** The add-on offered when a case holds imaging. */
export const RADIOLOGY_REVIEW: AddOnCode = 'radiology-review';

let defaultPrices: PriceList | undefined;

/**
 * Adds `radiology-review` to the case's offered add-ons (and re-prices the quote: offered add-ons
 * are listed, not charged) with a timeline event, in the caller's transaction `tx` (the case row is
 * locked). Does nothing when it is offered or approved already, the family declined it, or the case
 * has ended. Returns whether it was offered now. The assembly calls it in the transaction that
 * stores a bundle version holding imaging, so the version and its offer commit together.
 * @param prices - the price list the service loaded at start (the one a case manager's offer uses);
 *   without it, `mappings/prices.json` loaded once
 */
export async function offerRadiologyReviewIn(tx: Queryable, caseId: string, cause: 'upload' | 'bundle', prices?: PriceList): Promise<boolean> {
  const priceList = prices ?? (defaultPrices ??= loadPriceList());
  const record = await findCase(tx, caseId, true);
  if (!record || record.addonsOffered.includes(RADIOLOGY_REVIEW) || record.addonsApproved.includes(RADIOLOGY_REVIEW)) return false;
  if (isCaseStatus(record.status) && isTerminal(record.status)) return false;
  // The family said no: more imaging (a re-pull, an upload, a rebuild) does not ask again (a case manager still can).
  if (await hasCaseEvent(tx, caseId, 'addon_declined', 'addOn', RADIOLOGY_REVIEW)) return false;
  const addons = [...record.addonsOffered, RADIOLOGY_REVIEW];
  const quote = quoteOfCase(priceList, { addonsOffered: addons, addonsApproved: record.addonsApproved, quote: record.quote });
  await tx.query('UPDATE cases SET addons_offered = $2, quote = $3, updated_at = now() WHERE id = $1', [caseId, addons, JSON.stringify(quote)]);
  await insertCaseEvent(tx, {
    caseId,
    type: 'addon_offered',
    actorSub: 'system:imaging',
    reason: 'The case holds imaging: a pediatric radiologist review is offered. Its fee is added only after the family approves it.',
    data: { addOn: RADIOLOGY_REVIEW, fee: priceList.addOns.find((a) => a.code === RADIOLOGY_REVIEW)?.fee, cause },
  });
  return true;
}
