/**
 * The receipt of a case that ended without a report tells the truth: when the family withdrew
 * (`cancelled`), or the request was refused (`ineligible`), nothing is due, and what the family
 * paid that still stands is owed back to them (payment-service: "a charge taken as the family
 * withdrew (to be refunded)"; a refund recorded through the reversal route leaves the receipt).
 * Through the real API on a fresh PostgreSQL database, reading the PDF's lines.
 */
import { pdfText } from '../support/pdf-text';
import { sampleIntake } from '../support/intake';
import { processorReference, ReviewClient } from '../support/review-case';
import { startTestService, type TestService } from '../support/service';

let svc: TestService;
let cm: ReviewClient;

beforeAll(async () => {
  svc = await startTestService();
  cm = new ReviewClient(svc, await svc.token('case_manager', 'cm-withdrawn'));
});
afterAll(async () => {
  await svc.stop();
});

/** The receipt's lines, as a reader sees them. */
async function receiptLines(id: string): Promise<string[]> {
  const res = await svc.request('GET', `/api/cases/${id}/receipt.pdf`, { token: cm.token });
  expect(res.status).toBe(200);
  return (await pdfText(new Uint8Array(await res.arrayBuffer()))).split('\n');
}

/** The day (program time zone) the case entered `status`, from its timeline. */
async function enteredOn(id: string, status: string): Promise<string> {
  const detail = await cm.json<{ timeline: { type: string; to?: string; at: string }[] }>('GET', `/api/cases/${id}`);
  const event = detail.body.timeline.find((e) => e.type === 'transition' && e.to === status);
  if (!event) throw new Error(`no transition to ${status}`);
  return new Intl.DateTimeFormat('en-CA', { timeZone: svc.config.programTimeZone }).format(new Date(event.at));
}

async function withdraw(id: string): Promise<void> {
  const res = await cm.json('POST', `/api/cases/${id}/transitions`, { to: 'cancelled', reason: 'The family withdrew the request' });
  expect(res.status).toBe(200);
}

async function pay(id: string, amountCents: number): Promise<string> {
  const res = await cm.json<{ payment: { id: string } }>('POST', `/api/cases/${id}/payments`, { amountCents, method: 'card', processorReference: processorReference() });
  expect(res.status).toBe(201);
  return res.body.payment.id;
}

describe('GET /api/cases/:id/receipt.pdf of a withdrawn case', () => {
  it('paid in part: says withdrawn, nothing due, and the payment is to be refunded — no balance due', async () => {
    const id = await cm.openCase();
    await pay(id, 50000);
    await withdraw(id);
    const lines = await receiptLines(id);
    expect(lines.join(' ')).toContain(`Case withdrawn on ${await enteredOn(id, 'cancelled')}: the second opinion was not provided, so nothing is due.`);
    expect(lines).toContain('Total quoted$850.00');
    expect(lines).toContain('Amount paid$500.00');
    expect(lines).toContain('Withdrawn — nothing due$0.00');
    expect(lines).toContain('Credit (to be refunded)$500.00');
    expect(lines.join('\n')).not.toMatch(/Balance due|Total\$/);
  });

  it('paid in full, one payment refunded after the withdrawal: the refund leaves the receipt, the rest is still owed back', async () => {
    const id = await cm.openCase();
    const first = await pay(id, 60000);
    await pay(id, 25000);
    await withdraw(id);
    const refund = await cm.json('POST', `/api/cases/${id}/payments/${first}/reversal`, { kind: 'refund', reason: 'Withdrawn', refundReference: processorReference() });
    expect(refund.status).toBe(200);
    const lines = await receiptLines(id);
    expect(lines).toContain('Amount paid$250.00');
    expect(lines).toContain('Withdrawn — nothing due$0.00');
    expect(lines).toContain('Credit (to be refunded)$250.00');
    expect(lines.join('\n')).not.toContain('$600.00');
    expect(lines.join('\n')).not.toContain('Balance due');
  });

  it('of a request refused as ineligible: nothing due, the payment is to be refunded', async () => {
    const base = sampleIntake();
    const id = await cm.openCase({ ...base, urgent: true });
    await pay(id, 85000);
    const lines = await receiptLines(id);
    expect(lines.join(' ')).toContain(`Request found not eligible on ${await enteredOn(id, 'ineligible')}: the second opinion was not provided, so nothing is due.`);
    expect(lines).toContain('Not eligible — nothing due$0.00');
    expect(lines).toContain('Credit (to be refunded)$850.00');
    expect(lines.join('\n')).not.toContain('Balance due');
  });

  it('of a case still open: the balance due, as before', async () => {
    const id = await cm.openCase();
    await pay(id, 50000);
    const lines = await receiptLines(id);
    expect(lines).toContain('Total$850.00');
    expect(lines).toContain('Balance due$350.00');
    expect(lines.join('\n')).not.toMatch(/nothing due|withdrawn/i);
  });
});
