/**
 * Writes the add-on selection of a case (columns of `cases`, migration 001) with the quote it
 * gives, so `cases.quote` always shows what the family was quoted last.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import type { Quote } from '../cases/pricing';

/** Replaces the offered and approved add-ons and the stored quote of a case. */
export async function saveAddOns(
  db: Queryable,
  caseId: string,
  selection: { offered: readonly string[]; approved: readonly string[]; quote: Quote; at: Date },
): Promise<void> {
  await db.query(
    `UPDATE cases SET addons_offered = $2::text[], addons_approved = $3::text[], quote = $4, updated_at = $5 WHERE id = $1`,
    [caseId, [...selection.offered], [...selection.approved], JSON.stringify(selection.quote), selection.at],
  );
}
