/**
 * The JSON views of payments tell the receipt's story. A case that ended without a report
 * (`cancelled`: the family withdrew; `ineligible`) owes nothing and every payment that still stands
 * is owed back (`billing/receipt-balance.ts`); its payment status carries a `settlement` saying so,
 * in `GET /api/cases/:id/payments`, `GET /api/cases/:id/quote`, the case detail's `payment`, the answers of recording and
 * reversing a payment, and the timeline's wording. The balance against the quote keeps its meaning;
 * a live case's answers are as before (no `settlement`). Through the real API on a fresh
 * PostgreSQL database.
 */
import { pdfText } from '../support/pdf-text';
import { sampleIntake } from '../support/intake';
import { processorReference, ReviewClient } from '../support/review-case';
import { startTestService, type TestService } from '../support/service';

let svc: TestService;
let cm: ReviewClient;

beforeAll(async () => {
  svc = await startTestService();
  cm = new ReviewClient(svc, await svc.token('case_manager', 'cm-settlement'));
});
afterAll(async () => {
  await svc.stop();
});

interface Settlement {
  state: string;
  endedAs?: string;
  endedOn?: string;
  refundDueCents?: number;
}

interface Status {
  currency: string;
  totalCents: number;
  paidCents: number;
  balanceCents: number;
  state: string;
  settlement?: Settlement;
}

interface TimelineEvent {
  type: string;
  to?: string;
  at: string;
  reason: string | null;
  data?: Record<string, unknown>;
}

interface Detail {
  payment: Status;
  timeline: TimelineEvent[];
}

const detailOf = async (id: string): Promise<Detail> => (await cm.json<Detail>('GET', `/api/cases/${id}`)).body;
const paymentsOf = async (id: string): Promise<Status> => (await cm.json<{ status: Status }>('GET', `/api/cases/${id}/payments`)).body.status;

/** The day (program time zone) the case entered `status`, from its timeline. */
async function enteredOn(id: string, status: string): Promise<string> {
  const event = (await detailOf(id)).timeline.find((e) => e.type === 'transition' && e.to === status);
  if (!event) throw new Error(`no transition to ${status}`);
  return new Intl.DateTimeFormat('en-CA', { timeZone: svc.config.programTimeZone }).format(new Date(event.at));
}

async function withdraw(id: string): Promise<void> {
  const res = await cm.json('POST', `/api/cases/${id}/transitions`, { to: 'cancelled', reason: 'The family withdrew the request' });
  expect(res.status).toBe(200);
}

async function pay(id: string, amountCents: number): Promise<{ id: string; status: Status }> {
  const res = await cm.json<{ payment: { id: string }; status: Status }>('POST', `/api/cases/${id}/payments`, { amountCents, method: 'card', processorReference: processorReference() });
  expect(res.status).toBe(201);
  return { id: res.body.payment.id, status: res.body.status };
}

async function refund(id: string, paymentId: string): Promise<Status> {
  const res = await cm.json<{ status: Status }>('POST', `/api/cases/${id}/payments/${paymentId}/reversal`, { kind: 'refund', reason: 'Withdrawn', refundReference: processorReference() });
  expect(res.status).toBe(200);
  return res.body.status;
}

const reasons = (detail: Detail, type: string): (string | null)[] => detail.timeline.filter((e) => e.type === type).map((e) => e.reason);

describe('payment status of a withdrawn case', () => {
  it('says nothing is due and what is to be refunded, in the payments list and the case detail alike; the balance against the quote keeps its meaning', async () => {
    const id = await cm.openCase();
    await pay(id, 50000);
    await withdraw(id);
    const expected = {
      currency: 'USD',
      totalCents: 85000,
      paidCents: 50000,
      balanceCents: 35000,
      state: 'partially_paid',
      settlement: { state: 'nothing_due', endedAs: 'withdrawn', endedOn: await enteredOn(id, 'cancelled'), refundDueCents: 50000 },
    };
    expect(await paymentsOf(id)).toEqual(expected);
    expect((await detailOf(id)).payment).toEqual(expected);
    expect((await cm.json<{ payment: Status }>('GET', `/api/cases/${id}/quote`)).body.payment).toEqual(expected);
  });

  it('agrees with the receipt after a refund: the refunded payment leaves the credit, the rest is still owed back; the timeline says no balance is due', async () => {
    const id = await cm.openCase();
    const first = await pay(id, 60000);
    await pay(id, 25000);
    await withdraw(id);
    const endedOn = await enteredOn(id, 'cancelled');
    const afterRefund = await refund(id, first.id);
    expect(afterRefund.settlement).toEqual({ state: 'nothing_due', endedAs: 'withdrawn', endedOn, refundDueCents: 25000 });
    expect(await paymentsOf(id)).toEqual(afterRefund);
    const receipt = await svc.request('GET', `/api/cases/${id}/receipt.pdf`, { token: cm.token });
    expect(receipt.status).toBe(200);
    expect((await pdfText(new Uint8Array(await receipt.arrayBuffer()))).split('\n')).toContain('Credit (to be refunded)$250.00');
    const detail = await detailOf(id);
    expect(detail.payment).toEqual(afterRefund);
    expect(reasons(detail, 'payment_reversed')).toEqual([`$600.00 refunded: Withdrawn; case withdrawn on ${endedOn}: nothing due, $250.00 to be refunded.`]);
  });

  it('a payment recorded after the withdrawal (a charge to refund) answers and is told as nothing due, never "balance"', async () => {
    const id = await cm.openCase();
    await withdraw(id);
    const endedOn = await enteredOn(id, 'cancelled');
    const late = await pay(id, 35000);
    expect(late.status).toMatchObject({ paidCents: 35000, balanceCents: 50000, settlement: { state: 'nothing_due', endedAs: 'withdrawn', endedOn, refundDueCents: 35000 } });
    const detail = await detailOf(id);
    const recorded = detail.timeline.filter((e) => e.type === 'payment_recorded');
    expect(recorded.map((e) => e.reason)).toEqual([`$350.00 by card; case withdrawn on ${endedOn}: nothing due, $350.00 to be refunded.`]);
    expect(recorded[0]?.data).toMatchObject({ amountCents: 35000, settlement: { state: 'nothing_due', refundDueCents: 35000 } });
    expect(recorded[0]?.reason).not.toMatch(/balance/i);
  });

  it('once every payment is refunded: nothing due, nothing left to refund', async () => {
    const id = await cm.openCase();
    const only = await pay(id, 85000);
    await withdraw(id);
    const endedOn = await enteredOn(id, 'cancelled');
    const status = await refund(id, only.id);
    expect(status).toMatchObject({ paidCents: 0, settlement: { state: 'nothing_due', endedAs: 'withdrawn', endedOn, refundDueCents: 0 } });
    expect(reasons(await detailOf(id), 'payment_reversed')).toEqual([`$850.00 refunded: Withdrawn; case withdrawn on ${endedOn}: nothing due, nothing left to refund.`]);
  });
});

describe('payment status of a request found ineligible', () => {
  it('says nothing is due and the payment is to be refunded', async () => {
    const id = await cm.openCase({ ...sampleIntake(), urgent: true });
    const endedOn = await enteredOn(id, 'ineligible');
    const paid = await pay(id, 85000);
    const settlement = { state: 'nothing_due', endedAs: 'ineligible', endedOn, refundDueCents: 85000 };
    expect(paid.status.settlement).toEqual(settlement);
    expect((await paymentsOf(id)).settlement).toEqual(settlement);
    const detail = await detailOf(id);
    expect(detail.payment.settlement).toEqual(settlement);
    expect(reasons(detail, 'payment_recorded')).toEqual([`$850.00 by card; request found not eligible on ${endedOn}: nothing due, $850.00 to be refunded.`]);
  });
});

describe('payment status of a case that did not end without a report', () => {
  it('a live case: exactly the fields as before, no settlement, the timeline tells the balance', async () => {
    const id = await cm.openCase();
    const paid = await pay(id, 50000);
    const asBefore = { currency: 'USD', totalCents: 85000, paidCents: 50000, balanceCents: 35000, state: 'partially_paid' };
    expect(paid.status).toEqual(asBefore);
    expect(await paymentsOf(id)).toEqual(asBefore);
    expect((await detailOf(id)).payment).toEqual(asBefore);
    expect((await cm.json<{ payment: Status }>('GET', `/api/cases/${id}/quote`)).body.payment).toEqual(asBefore);
    expect(reasons(await detailOf(id), 'payment_recorded')).toEqual(['$500.00 by card; balance $350.00.']);
  });

  it('a closed case (the opinion was provided): the balance against the quote is still due, no settlement', async () => {
    const id = await cm.openCase();
    await svc.service.db.query(`UPDATE cases SET status = 'closed' WHERE id = $1`, [id]);
    const paid = await pay(id, 50000);
    expect(paid.status).toEqual({ currency: 'USD', totalCents: 85000, paidCents: 50000, balanceCents: 35000, state: 'partially_paid' });
    expect((await detailOf(id)).payment).not.toHaveProperty('settlement');
  });
});
