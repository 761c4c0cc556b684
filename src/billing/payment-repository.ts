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

/** Inserts a payment unless its (method, processor reference) is already recorded; true when inserted. */
export async function insertPayment(db: Queryable, p: Omit<PaymentRecord, 'createdAt' | 'currency'>): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO payments (id, case_id, amount_cents, method, processor_reference, payer_name, received_at, recorded_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (method, processor_reference) DO NOTHING`,
    [p.id, p.caseId, p.amountCents, p.method, p.processorReference, p.payer, p.receivedAt, p.recordedBy],
  );
  return result.rowCount === 1;
}

/** The payment recorded for a processor reference, whichever case it belongs to. */
export async function findPaymentByReference(db: Queryable, method: string, reference: string): Promise<PaymentRecord | undefined> {
  const { rows } = await db.query<PaymentRow>(`SELECT ${COLUMNS} FROM payments WHERE method = $1 AND processor_reference = $2`, [method, reference]);
  return rows[0] ? toPayment(rows[0]) : undefined;
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
