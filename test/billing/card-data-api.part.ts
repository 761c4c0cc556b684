/**
 * Card data hidden in free text: a card number followed by its security code or expiry makes one
 * longer run of digits, which is not a card number as a whole but holds one (`billing/card-data.ts`).
 * Refused with 400 naming the field, and nothing stored.
 */
import { ReviewClient, processorReference, type Problem } from '../support/review-case';
import { startTestService, type TestService } from '../support/service';

let svc: TestService;
let cm: ReviewClient;

beforeAll(async () => {
  svc = await startTestService();
  cm = new ReviewClient(svc, await svc.token('case_manager', 'cm-card-data'));
});
afterAll(async () => {
  await svc.stop();
});

interface Payment {
  id: string;
  payer: string;
  reversal: { kind: string; reason: string } | null;
}

describe('card number with its CVV or expiry in free text', () => {
  it('refuses a payer holding a card number and its CVV: 400 naming payer, no payment stored', async () => {
    const id = await cm.openCase();
    const res = await cm.json<Problem>('POST', `/api/cases/${id}/payments`, {
      amountCents: 85000,
      method: 'card',
      processorReference: processorReference(),
      payer: 'Anne Lovelace 4111 1111 1111 1111 123',
    });
    expect(res.status).toBe(400);
    expect(res.body.errors?.map((e) => e.field)).toEqual(['payer']);
    const { instance: _requestId, ...answer } = res.body as Problem & { instance?: string };
    expect(JSON.stringify(answer)).not.toMatch(/4111|Lovelace/);
    const { rows } = await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM payments WHERE case_id = $1', [id]);
    expect(rows[0]).toEqual({ n: 0 });
    // A payer without card data is recorded as before.
    const ok = await cm.json<{ payment: Payment }>('POST', `/api/cases/${id}/payments`, {
      amountCents: 85000,
      method: 'card',
      processorReference: processorReference(),
      payer: 'Anne Lovelace, +1 617-555-0123',
    });
    expect(ok.status).toBe(201);
    expect(ok.body.payment.payer).toBe('Anne Lovelace, +1 617-555-0123');
  });

  it('refuses a reversal reason holding a card number and its expiry: 400 naming reason, the payment unchanged', async () => {
    const id = await cm.openCase();
    const paid = await cm.pay(id, 85000);
    expect(paid.status).toBe(201);
    const paymentId = (paid.body as { payment: Payment }).payment.id;
    const res = await cm.json<Problem>('POST', `/api/cases/${id}/payments/${paymentId}/reversal`, { kind: 'void', reason: 'wrong card 4111-1111-1111-1111 0926 charged' });
    expect(res.status).toBe(400);
    expect(res.body.errors?.map((e) => e.field)).toEqual(['reason']);
    const list = await cm.json<{ items: Payment[] }>('GET', `/api/cases/${id}/payments`);
    expect(list.body.items.map((p) => [p.id, p.reversal])).toEqual([[paymentId, null]]);
    const { rows } = await svc.service.db.query<{ n: number }>("SELECT count(*)::int AS n FROM case_events WHERE case_id = $1 AND type = 'payment_reversed'", [id]);
    expect(rows[0]).toEqual({ n: 0 });
  });
});
