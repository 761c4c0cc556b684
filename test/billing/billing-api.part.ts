import { offerRadiologyReviewIn } from '../../src/cases/radiology-offer';
import { PDFDocument, PDFName, PDFString } from 'pdf-lib';
import { sampleIntake } from '../support/intake';
import { pdfText } from '../support/pdf-text';
import { processorReference, ReviewClient, type Problem } from '../support/review-case';
import { startTestService, type TestService } from '../support/service';

let svc: TestService;
let cm: ReviewClient;

beforeAll(async () => {
  svc = await startTestService();
  cm = new ReviewClient(svc, await svc.token('case_manager', 'cm-billing'));
});
afterAll(async () => {
  await svc.stop();
});

interface PaymentStatus {
  totalCents: number;
  paidCents: number;
  balanceCents: number;
  state: string;
}

describe('POST /api/cases/:id/payments', () => {
  it('refuses anything that looks like card data with 400 naming each field, and stores nothing', async () => {
    const id = await cm.openCase();
    const res = await cm.json<Problem>('POST', `/api/cases/${id}/payments`, {
      amountCents: 85000,
      method: 'card',
      processorReference: '4111 1111 1111 1111',
      payer: 'Orla Marrowvale',
      cvv: '737',
      card: { expiryDate: '12/29' },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors?.map((e) => e.field).sort()).toEqual(['card.expiryDate', 'cvv', 'processorReference']);
    // The instance is a random request id: its hex digits may spell 737 or 4111 by chance.
    const { instance: _requestId, ...answer } = res.body as Problem & { instance?: string };
    expect(JSON.stringify(answer)).not.toMatch(/4111|737|12\/29/);
    const list = await cm.json<{ items: unknown[] }>('GET', `/api/cases/${id}/payments`);
    expect(list.body.items).toEqual([]);
    const stored = await svc.service.db.query('SELECT count(*)::int AS n FROM payments');
    expect(stored.rows[0]).toEqual({ n: 0 });
  });

  it('records a payment in cents, shows the balance, and records a replay only once', async () => {
    const id = await cm.openCase();
    const body = { amountCents: 50000, method: 'hsa_fsa_card', processorReference: processorReference() };
    const first = await cm.json<{ payment: { id: string; amountCents: number; payer: string }; status: PaymentStatus }>('POST', `/api/cases/${id}/payments`, body);
    expect(first.status).toBe(201);
    expect(first.body.payment).toMatchObject({ amountCents: 50000, currency: 'USD', method: 'hsa_fsa_card', payer: sampleIntake().requester.name });
    expect(first.body.status).toEqual({ currency: 'USD', totalCents: 85000, paidCents: 50000, balanceCents: 35000, state: 'partially_paid' });

    const replay = await cm.json<{ payment: { id: string } }>('POST', `/api/cases/${id}/payments`, body);
    expect(replay.status).toBe(200);
    expect(replay.body.payment.id).toBe(first.body.payment.id);
    const otherAmount = await cm.json<Problem>('POST', `/api/cases/${id}/payments`, { ...body, amountCents: 100 });
    expect(otherAmount.status).toBe(409);

    await cm.pay(id, 35000);
    const list = await cm.json<{ items: { amountCents: number }[]; status: PaymentStatus }>('GET', `/api/cases/${id}/payments`);
    expect(list.body.items.map((p) => p.amountCents)).toEqual([50000, 35000]);
    expect(list.body.status).toMatchObject({ paidCents: 85000, balanceCents: 0, state: 'paid' });
    const detail = await cm.json<{ payment: PaymentStatus; timeline: { type: string }[] }>('GET', `/api/cases/${id}`);
    expect(detail.body.payment.state).toBe('paid');
    expect(detail.body.timeline.filter((e) => e.type === 'payment_recorded')).toHaveLength(2);
  });

  it('names bad fields: fractional cents, unknown method, future date', async () => {
    const id = await cm.openCase();
    const res = await cm.json<Problem>('POST', `/api/cases/${id}/payments`, { amountCents: 850.5, method: 'bitcoin', processorReference: 'x' });
    expect(res.status).toBe(400);
    expect(res.body.errors?.map((e) => e.field).sort()).toEqual(['amountCents', 'method', 'processorReference']);
    const future = await cm.json<Problem>('POST', `/api/cases/${id}/payments`, {
      amountCents: 100,
      method: 'check',
      processorReference: 'check-1001',
      receivedAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    expect(future.status).toBe(400);
    expect(future.body.errors?.[0]?.field).toBe('receivedAt');
    // Year 0 passes the ISO format but no PostgreSQL timestamp: a 400 naming the field, not a 500.
    const yearZero = await cm.json<Problem>('POST', `/api/cases/${id}/payments`, { amountCents: 100, method: 'check', processorReference: 'check-1002', receivedAt: '0000-01-01T00:00:00Z' });
    expect(yearZero.status).toBe(400);
    expect(yearZero.body.errors?.[0]).toMatchObject({ field: 'receivedAt', detail: 'receivedAt must be in 1900 or later' });
    const pull = await cm.json<Problem>('POST', `/api/cases/${id}/pulls`, { since: '0000-01-01T00:00:00Z' });
    expect(pull.status).toBe(400);
    expect(pull.body.errors?.[0]).toMatchObject({ field: 'since', detail: 'since must be in 1900 or later' });
  });
});

describe('processor references', () => {
  it('counts one card-processor charge once, under card or HSA/FSA card; a check number is the payer\'s, so two families may both pay with check 1001', async () => {
    const id = await cm.openCase();
    const charge = processorReference();
    expect((await cm.json('POST', `/api/cases/${id}/payments`, { amountCents: 85000, method: 'card', processorReference: charge })).status).toBe(201);
    const again = await cm.json<Problem>('POST', `/api/cases/${id}/payments`, { amountCents: 85000, method: 'hsa_fsa_card', processorReference: charge });
    expect(again.status).toBe(409);
    expect(again.body.detail).toContain('already recorded as a card payment');
    const list = await cm.json<{ items: unknown[]; status: PaymentStatus }>('GET', `/api/cases/${id}/payments`);
    expect(list.body.items).toHaveLength(1);
    expect(list.body.status).toMatchObject({ paidCents: 85000, state: 'paid' });

    const checkNumber = `${Math.floor(1000 + Math.random() * 8000)}`;
    const other = await cm.openCase();
    for (const caseId of [id, other]) {
      const res = await cm.json('POST', `/api/cases/${caseId}/payments`, { amountCents: 5000, method: 'check', processorReference: `chk-${checkNumber}` });
      expect({ caseId, status: res.status }).toEqual({ caseId, status: 201 });
    }
    // The same check again on a case: idempotent, nothing added.
    expect((await cm.json('POST', `/api/cases/${other}/payments`, { amountCents: 5000, method: 'check', processorReference: `chk-${checkNumber}` })).status).toBe(200);
    expect((await cm.json<{ items: unknown[] }>('GET', `/api/cases/${other}/payments`)).body.items).toHaveLength(1);
  });
});

describe('payments on ended cases', () => {
  it('records money taken after the case closed or as it was cancelled (the balance, a charge to refund) instead of refusing it', async () => {
    for (const end of ['closed', 'cancelled'] as const) {
      const id = await cm.openCase();
      if (end === 'closed') await svc.service.db.query(`UPDATE cases SET status = 'closed' WHERE id = $1`, [id]);
      else expect((await cm.json('POST', `/api/cases/${id}/transitions`, { to: 'cancelled', reason: 'The family withdrew.' })).status).toBe(200);
      const paid = await cm.json<{ status: PaymentStatus }>('POST', `/api/cases/${id}/payments`, { amountCents: 35000, method: 'card', processorReference: processorReference() });
      expect({ end, status: paid.status }).toEqual({ end, status: 201 });
      expect(paid.body.status.paidCents).toBe(35000);
    }
  });
});

describe('POST /api/cases/:id/payments/:paymentId/reversal', () => {
  interface Reversed {
    payment: { id: string; amountCents: number; reversal: { kind: string; reason: string; by: string; at: string; refundReference: string | null } | null };
    status: PaymentStatus;
  }
  it('voids a payment recorded in error and refunds one given back: both stay listed with who and why, neither counts; the timeline says so', async () => {
    const id = await cm.openCase();
    const pay = async (cents: number): Promise<string> => {
      const paid = await cm.pay(id, cents);
      // The answer in full if it is not a recorded payment (one CI run saw a body without one).
      expect({ status: paid.status, body: paid.body }).toMatchObject({ status: 201, body: { payment: { amountCents: cents } } });
      return (paid.body as { payment: { id: string } }).payment.id;
    };
    const [mistake, given, kept] = [await pay(85000), await pay(10000), await pay(85000)];
    const voided = await cm.json<Reversed>('POST', `/api/cases/${id}/payments/${mistake}/reversal`, { kind: 'void', reason: 'Recorded twice: the processor charged once' });
    expect(voided.status).toBe(200);
    expect(voided.body.payment.reversal).toMatchObject({ kind: 'void', reason: 'Recorded twice: the processor charged once', by: 'cm-billing', refundReference: null });
    expect(voided.body.status).toMatchObject({ paidCents: 95000, state: 'overpaid' });
    const refunded = await cm.json<Reversed>('POST', `/api/cases/${id}/payments/${given}/reversal`, { kind: 'refund', reason: 'Overpaid by $100', refundReference: 're_3Pq9' });
    expect(refunded.body.payment.reversal).toMatchObject({ kind: 'refund', refundReference: 're_3Pq9' });
    expect(refunded.body.status).toMatchObject({ paidCents: 85000, balanceCents: 0, state: 'paid' });
    const list = await cm.json<{ items: Reversed['payment'][]; status: PaymentStatus }>('GET', `/api/cases/${id}/payments`);
    expect(list.body.items.map((p) => [p.id, p.reversal?.kind ?? null])).toEqual([[mistake, 'void'], [given, 'refund'], [kept, null]]);
    expect(list.body.status).toMatchObject({ paidCents: 85000, state: 'paid' });
    const timeline = (await cm.json<{ timeline: { type: string; reason: string | null }[] }>('GET', `/api/cases/${id}`)).body.timeline.filter((e) => e.type === 'payment_reversed');
    expect(timeline.map((e) => e.reason)).toEqual([
      '$850.00 voided: Recorded twice: the processor charged once; balance -$100.00.',
      '$100.00 refunded: Overpaid by $100; balance $0.00.',
    ]);
    // Once only, and only a payment of this case.
    const again = await cm.json<Problem>('POST', `/api/cases/${id}/payments/${mistake}/reversal`, { kind: 'refund', reason: 'again' });
    expect(again.status).toBe(409);
    expect(again.body.detail).toMatch(/already voided .* by cm-billing/);
    const other = await cm.openCase();
    expect((await cm.json('POST', `/api/cases/${other}/payments/${kept}/reversal`, { kind: 'void', reason: 'x' })).status).toBe(404);
  });

  it('records again, as it should have been, a charge whose payment was voided as recorded in error (wrong case or amount)', async () => {
    const wrongCase = await cm.openCase();
    const rightCase = await cm.openCase();
    const charge = { amountCents: 85000, method: 'card', processorReference: processorReference() };
    const first = await cm.json<{ payment: { id: string } }>('POST', `/api/cases/${wrongCase}/payments`, charge);
    expect(first.status).toBe(201);
    // While it stands, the charge belongs to that payment.
    expect((await cm.json('POST', `/api/cases/${rightCase}/payments`, charge)).status).toBe(409);
    const voided = await cm.json('POST', `/api/cases/${wrongCase}/payments/${first.body.payment.id}/reversal`, { kind: 'void', reason: 'Recorded on the wrong case' });
    expect(voided.status).toBe(200);
    const again = await cm.json<{ payment: { id: string }; status: PaymentStatus }>('POST', `/api/cases/${rightCase}/payments`, charge);
    expect(again.status).toBe(201);
    expect(again.body.payment.id).not.toBe(first.body.payment.id);
    expect(again.body.status).toMatchObject({ paidCents: 85000, state: 'paid' });
    // The voided one stays on its case's ledger, not counted; the new one is idempotent as any.
    expect((await cm.json<{ payment: { id: string } }>('POST', `/api/cases/${rightCase}/payments`, charge)).body.payment.id).toBe(again.body.payment.id);
    const ledger = await cm.json<{ items: { id: string; reversal: { kind: string } | null }[]; status: PaymentStatus }>('GET', `/api/cases/${wrongCase}/payments`);
    expect(ledger.body.items.map((p) => [p.id, p.reversal?.kind])).toEqual([[first.body.payment.id, 'void']]);
    expect(ledger.body.status.paidCents).toBe(0);
  });

  it('names bad fields, refuses card data, and lets no specialist reverse a payment', async () => {
    const id = await cm.openCase();
    const paymentId = ((await cm.pay(id, 5000)).body as { payment: { id: string } }).payment.id;
    const path = `/api/cases/${id}/payments/${paymentId}/reversal`;
    const fields = async (body: unknown): Promise<string[]> => ((await cm.json<Problem>('POST', path, body)).body.errors ?? []).map((e) => e.field).sort();
    expect(await fields({ kind: 'chargeback', reason: 'x' })).toEqual(['kind']);
    expect(await fields({ kind: 'void' })).toEqual(['reason']);
    expect(await fields({ kind: 'void', reason: 'x', refundReference: 're_1234' })).toEqual(['refundReference']);
    expect(await fields({ kind: 'refund', reason: 'x', refundReference: '4111 1111 1111 1111' })).toEqual(['refundReference']);
    expect((await cm.json('POST', `/api/cases/${id}/payments/not-a-uuid/reversal`, { kind: 'void', reason: 'x' })).status).toBe(400);
    expect((await cm.json('POST', path, { kind: 'void', reason: 'x' }, await svc.token('specialist', 'dr-billing'))).status).toBe(403);
    expect((await cm.json<{ items: { reversal: unknown }[] }>('GET', `/api/cases/${id}/payments`)).body.items[0]?.reversal).toBeNull();
  });
});

describe('add-on offers and approvals', () => {
  it('refuses to approve an add-on that was never offered (409), then offer → approve adds the fee', async () => {
    const id = await cm.openCase();
    const early = await cm.json<Problem>('POST', `/api/cases/${id}/approvals`, { addOn: 'pathology-review', channel: 'phone' });
    expect(early.status).toBe(409);
    expect(early.body.detail).toMatch(/never offered/);

    const offer = await cm.json<{ status: string; quote: { total: number; addOns: { code: string; status: string }[] } }>('POST', `/api/cases/${id}/offers`, {
      addOn: 'pathology-review',
      reason: 'Biopsy slides at the local hospital',
    });
    expect(offer.status).toBe(200);
    expect(offer.body.quote.total).toBe(850);
    expect(offer.body.quote.addOns).toEqual([expect.objectContaining({ code: 'pathology-review', status: 'offered' })]);

    const approve = await cm.json<{ status: string; changed: boolean; quote: { total: number } }>('POST', `/api/cases/${id}/approvals`, {
      addOn: 'pathology-review',
      channel: 'email',
    });
    expect(approve.status).toBe(200);
    expect(approve.body).toMatchObject({ status: 'approved', changed: true, quote: { total: 1250 } });
    const again = await cm.json<{ changed: boolean }>('POST', `/api/cases/${id}/approvals`, { addOn: 'pathology-review', channel: 'email' });
    expect(again.body.changed).toBe(false);

    const quote = await cm.json<{ quote: { total: number }; payment: PaymentStatus }>('GET', `/api/cases/${id}/quote`);
    expect(quote.body.quote.total).toBe(1250);
    expect(quote.body.payment).toMatchObject({ totalCents: 125000, state: 'unpaid' });
    const detail = await cm.json<{ timeline: { type: string; data?: Record<string, unknown> }[] }>('GET', `/api/cases/${id}`);
    expect(detail.body.timeline.filter((e) => e.type.startsWith('addon_')).map((e) => [e.type, e.data?.addOn])).toEqual([
      ['addon_offered', 'pathology-review'],
      ['addon_approved', 'pathology-review'],
    ]);
  });

  it('a decline withdraws the offer and leaves the total alone; bad codes are named', async () => {
    const id = await cm.openCase();
    await cm.json('POST', `/api/cases/${id}/offers`, { addOn: 'radiology-review' });
    const decline = await cm.json<{ status: string; quote: { total: number; addOns: unknown[] } }>('POST', `/api/cases/${id}/approvals`, {
      addOn: 'radiology-review',
      decision: 'declined',
      channel: 'phone',
    });
    expect(decline.body).toMatchObject({ status: 'declined', quote: { total: 850, addOns: [] } });
    // More imaging later (a re-pull, an upload, a rebuild) does not offer it again: the family said no.
    expect(await svc.service.db.transaction((tx) => offerRadiologyReviewIn(tx, id, 'bundle'))).toBe(false);
    const after = await cm.json<{ quote: { addOns: unknown[] }; timeline: { type: string }[] }>('GET', `/api/cases/${id}`);
    expect(after.body.quote.addOns).toEqual([]);
    expect(after.body.timeline.filter((e) => e.type === 'addon_offered')).toHaveLength(1);
    const bad = await cm.json<Problem>('POST', `/api/cases/${id}/approvals`, { addOn: 'cardiology', channel: 'fax' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors?.map((e) => e.field).sort()).toEqual(['addOn', 'channel']);
  });
});

describe('GET /api/cases/:id/receipt.pdf', () => {
  it('answers 409 before any payment, and when every payment was voided or refunded', async () => {
    const id = await cm.openCase();
    const res = await svc.request('GET', `/api/cases/${id}/receipt.pdf`, { token: cm.token });
    expect(res.status).toBe(409);
    const paymentId = ((await cm.pay(id, 85000)).body as { payment: { id: string } }).payment.id;
    expect((await svc.request('GET', `/api/cases/${id}/receipt.pdf`, { token: cm.token })).status).toBe(200);
    expect((await cm.json('POST', `/api/cases/${id}/payments/${paymentId}/reversal`, { kind: 'void', reason: 'Test charge' })).status).toBe(200);
    expect((await svc.request('GET', `/api/cases/${id}/receipt.pdf`, { token: cm.token })).status).toBe(409);
  });

  it('is a PDF with title, language, patient, payer, date of service, lines, payments, paid and balance', async () => {
    const intake = sampleIntake();
    const base = intake.patient;
    const id = await cm.openCase({
      ...intake,
      patient: { ...base, name: { given: ['Adán', 'Łukasz'], family: 'Żółć-王' } },
      requester: { ...intake.requester, name: 'Νίκη Ивановa' },
    });
    await cm.json('POST', `/api/cases/${id}/offers`, { addOn: 'radiology-review' });
    await cm.json('POST', `/api/cases/${id}/approvals`, { addOn: 'radiology-review', channel: 'portal' });
    const refs = [processorReference(), processorReference()];
    await cm.json('POST', `/api/cases/${id}/payments`, { amountCents: 85000, method: 'hsa_fsa_card', processorReference: refs[0], receivedAt: '2026-01-05T15:00:00Z' });
    await cm.json('POST', `/api/cases/${id}/payments`, { amountCents: 20000, method: 'check', processorReference: refs[1], payer: 'Νίκη Ивановa' });

    const res = await svc.request('GET', `/api/cases/${id}/receipt.pdf`, { token: cm.token });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/pdf/);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const doc = await PDFDocument.load(bytes, { updateMetadata: false });
    expect(doc.getTitle()).toContain(id);
    expect(doc.getPageCount()).toBe(1);
    expect(doc.catalog.lookup(PDFName.of('Lang'), PDFString).decodeText()).toBe('en-US');

    const text = await pdfText(bytes);
    const created = (await cm.json<{ createdAt: string }>('GET', `/api/cases/${id}`)).body.createdAt;
    const dateOfService = new Intl.DateTimeFormat('en-CA', { timeZone: svc.config.programTimeZone }).format(new Date(created));
    for (const expected of [
      'Online Second Opinion Program',
      'Payment receipt',
      id,
      'Adán Łukasz Żółć-王',
      'Νίκη Ивановa',
      `Date of service:${dateOfService}`,
      'Online second opinion: specialist review of records and written report$850.00',
      'Pediatric radiologist review of imaging studies$350.00',
      'Total$1,200.00',
      `2026-01-05HSA/FSA card$850.00${refs[0]}`,
      `Check$200.00${refs[1]}`,
      'Amount paid$1,050.00',
      'Balance due$150.00',
    ]) {
      expect(text).toContain(expected);
    }
  });
});
