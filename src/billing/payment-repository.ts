/**
 * Rows of `payments` (migration 006).
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import type { PaymentMethod } from './payment-schema';

/** A recorded payment. */
export interface PaymentRecord {
  readonly id: string;
  readonly caseId: string;
  readonly amountCents: number;
  readonly currency: 'USD';
  readonly method: PaymentMethod;
  readonly processorReference: string;
  readonly payer: string | null;
  readonly receivedAt: Date;
  readonly recordedBy: string;
  readonly createdAt: Date;
}

interface PaymentRow {
  id: string;
  case_id: string;
  amount_cents: number;
  currency: 'USD';
  method: PaymentMethod;
  processor_reference: string;
  payer_name: string | null;
  received_at: Date;
  recorded_by: string;
  created_at: Date;
}

const COLUMNS = 'id, case_id, amount_cents, currency, method, processor_reference, payer_name, received_at, recorded_by, created_at';

const toPayment = (r: PaymentRow): PaymentRecord => ({
  id: r.id,
  caseId: r.case_id,
  amountCents: r.amount_cents,
  currency: r.currency,
  method: r.method,
  processorReference: r.processor_reference,
  payer: r.payer_name,
  receivedAt: r.received_at,
  recordedBy: r.recorded_by,
  createdAt: r.created_at,
});

/** Methods paid through the hospital's card processor: one space of processor references. */
const CARD_METHODS: readonly PaymentMethod[] = ['card', 'hsa_fsa_card'];

/** The methods whose references are in the same space as `method`'s (migration 029). */
function sameReferenceSpace(method: PaymentMethod): readonly PaymentMethod[] {
  return CARD_METHODS.includes(method) ? CARD_METHODS : [method];
}

/** Inserts a payment unless its processor reference is already recorded (migration 029); true when inserted. */
export async function insertPayment(db: Queryable, p: Omit<PaymentRecord, 'createdAt' | 'currency'>): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO payments (id, case_id, amount_cents, method, processor_reference, payer_name, received_at, recorded_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT DO NOTHING`,
    [p.id, p.caseId, p.amountCents, p.method, p.processorReference, p.payer, p.receivedAt, p.recordedBy],
  );
  return result.rowCount === 1;
}

/**
 * The payment already recorded under the reference `reference` of `method`: a check number of this
 * case (a check number is the payer's, not unique across families); otherwise the processor's
 * reference, whichever case it belongs to, under any method of the same processor.
 */
export async function findPaymentByReference(db: Queryable, method: PaymentMethod, reference: string, caseId: string): Promise<PaymentRecord | undefined> {
  const { rows } =
    method === 'check'
      ? await db.query<PaymentRow>(`SELECT ${COLUMNS} FROM payments WHERE method = 'check' AND processor_reference = $1 AND case_id = $2`, [reference, caseId])
      : await db.query<PaymentRow>(`SELECT ${COLUMNS} FROM payments WHERE method = ANY($1::text[]) AND processor_reference = $2 ORDER BY created_at LIMIT 1`, [
          sameReferenceSpace(method),
          reference,
        ]);
  return rows[0] ? toPayment(rows[0]) : undefined;
}

/** Serialises, until the transaction ends, the recording of payments under one processor reference. */
export async function lockPaymentReference(tx: Queryable, reference: string): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('payment-reference:' || $1))", [reference]);
}

/** The payments of a case, oldest first. */
export async function listPayments(db: Queryable, caseId: string): Promise<PaymentRecord[]> {
  const { rows } = await db.query<PaymentRow>(`SELECT ${COLUMNS} FROM payments WHERE case_id = $1 ORDER BY received_at, created_at, id`, [caseId]);
  return rows.map(toPayment);
}

/** Sum of a case's payments, in cents. */
export async function paidCents(db: Queryable, caseId: string): Promise<number> {
  const { rows } = await db.query<{ n: string | number | null }>('SELECT COALESCE(sum(amount_cents), 0) AS n FROM payments WHERE case_id = $1', [caseId]);
  return Number(rows[0]?.n ?? 0);
}
