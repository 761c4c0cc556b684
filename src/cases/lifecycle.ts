/**
 * The case lifecycle as an explicit state machine.
 *
 * ```text
 * submitted ─► collecting_records ─► records_complete ─► assigned ─► in_review ─► report_signed ─► delivered ─► closed
 *    │                 ▲                    │                          │   ▲  │          │
 *    ▼                 └────────────────────┘ (another pull)           ▼   │  └──────────┘ (amendment before delivery)
 * ineligible                                                awaiting_information
 *
 * cancelled: from every non-terminal state except delivered.
 * ```
 *
 * Decisions (kept tight on purpose):
 * - `records_complete → collecting_records` is allowed: a reviewer-to-be or case manager finds a
 *   gap before assignment and another pull is needed. The SLA clock is restarted by the caller
 *   when records are complete again.
 * - `in_review → collecting_records` is NOT allowed: once a specialist is reviewing, any missing
 *   record (from the family or a care team) is asked for through `awaiting_information`, which
 *   pauses the SLA clock instead of restarting it.
 * - `report_signed → in_review` IS allowed, for an amendment found before delivery (the signed
 *   report is superseded). After delivery the case stays `delivered`: an amendment is a new signed
 *   version (FHIR status `amended`) delivered beside the first (src/opinion).
 * - `delivered → cancelled` is NOT allowed: the service has been rendered; a delivered case can
 *   only be closed.
 * - `ineligible`, `cancelled` and `closed` are terminal. A family refused as ineligible that
 *   corrects its request opens a new case.
 * - No state transitions to itself.
 * @packageDocumentation
 */

/** Every case status, in lifecycle order. */
export const CASE_STATUSES = [
  'submitted',
  'ineligible',
  'collecting_records',
  'records_complete',
  'assigned',
  'in_review',
  'awaiting_information',
  'report_signed',
  'delivered',
  'closed',
  'cancelled',
] as const;

/** A case status. */
export type CaseStatus = (typeof CASE_STATUSES)[number];

/** The transition table: for each status, the statuses it may move to. */
export const TRANSITIONS: Readonly<Record<CaseStatus, readonly CaseStatus[]>> = Object.freeze({
  submitted: ['collecting_records', 'ineligible', 'cancelled'],
  ineligible: [],
  collecting_records: ['records_complete', 'cancelled'],
  records_complete: ['assigned', 'collecting_records', 'cancelled'],
  assigned: ['in_review', 'cancelled'],
  in_review: ['awaiting_information', 'report_signed', 'cancelled'],
  awaiting_information: ['in_review', 'cancelled'],
  report_signed: ['delivered', 'in_review', 'cancelled'],
  delivered: ['closed'],
  closed: [],
  cancelled: [],
});

/** Statuses with no way out. */
export const TERMINAL_STATUSES: readonly CaseStatus[] = CASE_STATUSES.filter((s) => TRANSITIONS[s].length === 0);

/**
 * Statuses in which a case ended without a report (the family withdrew, or it was never eligible):
 * nothing more is pulled, assembled, uploaded or written into the child's chart for it.
 */
export const ENDED_WITHOUT_REPORT: readonly CaseStatus[] = ['cancelled', 'ineligible'];

/** True when `status` (a case's, possibly read from the database) is one of {@link ENDED_WITHOUT_REPORT}. */
export function endedWithoutReport(status: string): boolean {
  return (ENDED_WITHOUT_REPORT as readonly string[]).includes(status);
}

/** True when `value` is a known case status (e.g. a string read from the database). */
export function isCaseStatus(value: string): value is CaseStatus {
  return (CASE_STATUSES as readonly string[]).includes(value);
}

/** True when `status` is terminal (ineligible, closed, cancelled). */
export function isTerminal(status: CaseStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** The statuses a case in `from` may move to (empty for terminal or unknown statuses). */
export function allowedTransitions(from: CaseStatus): readonly CaseStatus[] {
  return isCaseStatus(from) ? TRANSITIONS[from] : [];
}

/** True when `from → to` is a legal transition. */
export function canTransition(from: CaseStatus, to: CaseStatus): boolean {
  return allowedTransitions(from).includes(to);
}

/** Thrown by {@link assertTransition} for a transition the lifecycle does not allow. */
export class IllegalTransitionError extends Error {
  override readonly name = 'IllegalTransitionError';
  /** The statuses that are allowed from `from`. */
  readonly allowed: readonly CaseStatus[];

  constructor(
    readonly from: string,
    readonly to: string,
  ) {
    const allowed = isCaseStatus(from) ? TRANSITIONS[from] : [];
    let message: string;
    if (!isCaseStatus(from)) {
      message = `Unknown case status "${from}".`;
    } else if (!isCaseStatus(to)) {
      message = `Unknown case status "${to}". From ${from} a case can move to: ${allowed.join(', ')}.`;
    } else if (allowed.length === 0) {
      message = `A case cannot move from ${from} to ${to}: ${from} is a final status, no further transitions are allowed.`;
    } else {
      message = `A case cannot move from ${from} to ${to}. From ${from} it can move to: ${allowed.join(', ')}.`;
    }
    super(message);
    this.allowed = allowed;
  }
}

/**
 * Throws {@link IllegalTransitionError} unless `from → to` is allowed.
 * Accepts plain strings so statuses read from storage are checked too.
 */
export function assertTransition(from: string, to: string): void {
  if (!isCaseStatus(from) || !isCaseStatus(to) || !TRANSITIONS[from].includes(to)) {
    throw new IllegalTransitionError(from, to);
  }
}
