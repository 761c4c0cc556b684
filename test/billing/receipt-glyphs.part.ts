/**
 * The receipt's glyphs as viewers paint them: every character drawn has a non-empty glyph in the
 * embedded font program, the one the source font (the report's, `src/report/report-fonts.ts`) has.
 */
import { renderReceiptPdf } from '../../src/billing/receipt-pdf';
import type { Receipt } from '../../src/billing/receipt';
import { badGlyphs, pdfDrawnGlyphs, sourceFonts } from '../support/pdf-glyphs';

const receipt = (patientName: string): Receipt => ({
  programName: 'Online Second Opinion Program',
  caseId: '0b7e2c1a-5d7f-4c0e-9a55-3e2d1f0a9b8c',
  patientName,
  payer: 'Łukasz Żółć',
  dateOfService: '2026-01-05',
  issuedOn: '2026-01-06',
  lines: [
    { description: 'Online second opinion: specialist review of records and written report', amountCents: 85000 },
    { description: 'Pediatric radiologist review of imaging studies', amountCents: 35000 },
  ],
  payments: [
    { date: '2026-01-05', method: 'HSA/FSA card', reference: 'pi_3Nf0aZ2eZvKYlo2C1x9', amountCents: 85000 },
    { date: '2026-01-06', method: 'Check', reference: 'chk-000123', amountCents: 20000 },
  ],
  status: { currency: 'USD', totalCents: 120000, paidCents: 105000, balanceCents: 15000, state: 'partially_paid' },
});

const sources = sourceFonts();

it.each(['Adán Núñez', 'Łukasz Żółć', '王小明', 'Adán Łukasz Żółć-王'])('draws every glyph of the receipt for %s', async (name) => {
  const pdf = await renderReceiptPdf(receipt(name), new Date('2026-01-06T15:00:00Z'));
  const drawn = await pdfDrawnGlyphs(pdf);
  const text = drawn.map((d) => d.char).join('');
  for (const needle of [name, 'Łukasz Żółć', 'Payment receipt', '$1,200.00', 'Balance due']) expect(text).toContain(needle);
  expect(badGlyphs(drawn, sources)).toEqual([]);
  expect(pdf.length).toBeLessThan(100_000);
});

it('draws every glyph of a withdrawn case’s receipt (the em dash of “Withdrawn — nothing due”)', async () => {
  const withdrawn: Receipt = { ...receipt('Adán Núñez'), ending: { kind: 'withdrawn', on: '2026-01-06' } };
  const pdf = await renderReceiptPdf(withdrawn, new Date('2026-01-06T15:00:00Z'));
  const drawn = await pdfDrawnGlyphs(pdf);
  const text = drawn.map((d) => d.char).join('');
  for (const needle of ['Case withdrawn on 2026-01-06', 'Withdrawn — nothing due', 'Credit (to be refunded)', 'Total quoted']) expect(text).toContain(needle);
  expect(text).not.toContain('Balance due');
  expect(badGlyphs(drawn, sources)).toEqual([]);
});
