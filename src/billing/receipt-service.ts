/**
 * `GET /api/cases/:id/receipt.pdf`: the family's receipt for an HSA/FSA, from what is recorded.
 * @packageDocumentation
 */
import type { CaseServiceDeps } from '../cases/case-service';
import type { Intake } from '../cases/intake-schema';
import { listCaseEvents } from '../db/case-repository';
import { conflict } from '../http/problem';
import { processPdfThread } from '../report/pdf-thread';
import type { ReportFontPaths } from '../report/report-fonts';
import { caseFor, nowOf } from './billing-deps';
import { endingOf } from './case-ending';
import { quoteOfCase } from './case-quote';
import { listPayments, stands } from './payment-repository';
import { buildReceipt } from './receipt';

/** The case services' dependencies, with the PDF fonts when configured (the API passes them). */
export type ReceiptDeps = CaseServiceDeps & { readonly reportFonts?: ReportFontPaths };

/**
 * Renders the receipt of a case, with the report's fonts (`deps.reportFonts`, else `assets/fonts/`).
 * @throws HttpProblem 409 when no payment is recorded yet (there is nothing to give a receipt for)
 */
export async function caseReceiptPdf(deps: ReceiptDeps, caseId: string): Promise<Uint8Array> {
  const record = await caseFor(deps.db, caseId, false);
  // Voided and refunded payments are not money paid: the receipt lists what stands.
  const payments = (await listPayments(deps.db, caseId)).filter(stands);
  if (payments.length === 0) {
    throw conflict(`No payment stands for case ${caseId} (none recorded, or all voided or refunded); record one with POST /api/cases/${caseId}/payments first.`);
  }
  const events = await listCaseEvents(deps.db, caseId);
  const signed = events.find((e) => e.type === 'transition' && e.toStatus === 'report_signed');
  // Withdrawn or refused: the service was not provided, nothing is due (settlement.ts).
  const ending = endingOf(record, events, deps.config.programTimeZone);
  const now = nowOf(deps);
  const receipt = buildReceipt({
    caseId,
    intake: record.intake as Intake,
    createdAt: record.createdAt,
    signedAt: signed?.at,
    quote: quoteOfCase(deps.domain.prices, record),
    prices: deps.domain.prices,
    payments,
    now,
    timeZone: deps.config.programTimeZone,
    ...(ending ? { ending } : {}),
  });
  // Rendered in the PDF thread (`renderReceiptPdf` there): the event loop keeps serving meanwhile.
  return processPdfThread.renderReceipt(receipt, now, deps.reportFonts);
}
