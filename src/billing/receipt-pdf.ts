/**
 * Renders a {@link Receipt} as a US Letter PDF with pdf-lib: program and case header, patient,
 * payer and date of service, the billed lines with their total, every payment with its processor
 * reference, the amount paid and the balance (`receipt-balance.ts`: for a withdrawn or ineligible
 * case, a notice, "nothing due" and the credit to refund instead of a balance due). Document title and language (en-US) are set; text
 * in any script is drawn with the report's embedded fonts (`src/report/report-fonts.ts`,
 * `embed-fonts.ts`: `assets/fonts/` or `REPORT_FONT_PATH` & co.); long lists continue on further
 * pages, each numbered.
 * @packageDocumentation
 */
import { PDFDocument, rgb, type PDFPage } from 'pdf-lib';
import { SERVICE_NAME } from '../normalize/composition';
import { formatUsd } from './money';
import { embedFontFaces, type EmbeddedFaces } from '../report/embed-fonts';
import { loadReportFonts, type ReportFontPaths } from '../report/report-fonts';
import type { Receipt } from './receipt';
import { receiptBalance } from './receipt-balance';

const PAGE = { width: 612, height: 792, margin: 54 } as const;
const SIZE = 10;
const LEADING = 15;
const GREY = rgb(0.35, 0.35, 0.35);
const RIGHT = PAGE.width - PAGE.margin;
const AMOUNT_WIDTH = 90;

type Weight = 'regular' | 'bold';

/** A cursor over pages: writes lines top to bottom, starting a new page when one is full. */
class Writer {
  readonly pages: PDFPage[] = [];
  private y = 0;

  constructor(
    private readonly doc: PDFDocument,
    private readonly faces: EmbeddedFaces,
  ) {
    this.newPage();
  }

  private get page(): PDFPage {
    const page = this.pages[this.pages.length - 1];
    if (!page) throw new Error('no page');
    return page;
  }

  private newPage(): void {
    this.pages.push(this.doc.addPage([PAGE.width, PAGE.height]));
    this.y = PAGE.height - PAGE.margin;
  }

  /** Makes room for `lines` lines, on a new page when needed. */
  room(lines: number): void {
    if (this.y - lines * LEADING < PAGE.margin + 30) this.newPage();
  }

  gap(points: number): void {
    this.y -= points;
  }

  text(value: string, x: number, options: { size?: number; weight?: Weight; grey?: boolean; alignRight?: boolean } = {}): void {
    const size = options.size ?? SIZE;
    const weight = options.weight ?? 'regular';
    let cursor = options.alignRight ? x - this.width(value, weight, size) : x;
    for (const run of this.faces[weight].runs(value)) {
      this.page.drawText(run.text, { x: cursor, y: this.y, size, font: run.font, color: options.grey ? GREY : rgb(0, 0, 0) });
      cursor += run.font.widthOfTextAtSize(run.text, size);
    }
  }

  /** Width of `value` at `size` in points. */
  width(value: string, weight: Weight, size: number): number {
    return this.faces[weight].width(value, size);
  }

  /** Draws `value` at (x, y) on `page`, run by run. */
  drawAt(page: PDFPage, value: string, x: number, y: number, size: number): void {
    let cursor = x;
    for (const run of this.faces.regular.runs(value)) {
      page.drawText(run.text, { x: cursor, y, size, font: run.font, color: GREY });
      cursor += run.font.widthOfTextAtSize(run.text, size);
    }
  }

  newline(size: number = SIZE): void {
    this.y -= Math.max(LEADING, size * 1.4);
  }

  rule(): void {
    this.page.drawLine({ start: { x: PAGE.margin, y: this.y + 10 }, end: { x: RIGHT, y: this.y + 10 }, thickness: 0.5, color: GREY });
  }

  /** Cuts `value` (no spaces needed, e.g. a processor reference) into pieces that fit `width`. */
  chunks(value: string, width: number): string[] {
    const pieces: string[] = [];
    let current = '';
    for (const char of value) {
      if (current && this.width(current + char, 'regular', SIZE) > width) {
        pieces.push(current);
        current = '';
      }
      current += char;
    }
    return current ? [...pieces, current] : pieces;
  }

  /** Word-wraps `value` to `width`. */
  wrap(value: string, width: number, weight: Weight = 'regular', size: number = SIZE): string[] {
    const lines: string[] = [];
    let current = '';
    for (const word of value.split(/\s+/).filter(Boolean)) {
      const candidate = current ? `${current} ${word}` : word;
      if (!current || this.width(candidate, weight, size) <= width) current = candidate;
      else {
        lines.push(current);
        current = word;
      }
    }
    if (current) lines.push(current);
    return lines;
  }
}

function header(w: Writer, r: Receipt): void {
  w.text(r.programName, PAGE.margin, { size: 16, weight: 'bold' });
  w.newline(16);
  w.text('Payment receipt', PAGE.margin, { size: 13, weight: 'bold' });
  w.newline(13);
  w.text('Self-pay service: no insurance claim was filed.', PAGE.margin, { grey: true });
  w.newline();
  w.gap(6);
  const facts: [string, string][] = [
    ['Receipt date', r.issuedOn],
    ['Case ID', r.caseId],
    ['Patient', r.patientName],
    ['Payer', r.payer],
    ['Date of service', r.dateOfService],
  ];
  for (const [label, value] of facts) {
    w.text(`${label}:`, PAGE.margin, { weight: 'bold' });
    for (const line of w.wrap(value, RIGHT - PAGE.margin - 110)) {
      w.text(line, PAGE.margin + 110);
      w.newline();
    }
  }
  const notice = receiptBalance(r.status, r.ending).notice;
  if (notice) {
    w.gap(6);
    for (const line of w.wrap(notice, RIGHT - PAGE.margin)) {
      w.text(line, PAGE.margin);
      w.newline();
    }
  }
}

function services(w: Writer, r: Receipt): void {
  w.gap(8);
  w.room(3);
  w.text('Services', PAGE.margin, { size: 12, weight: 'bold' });
  w.text('Amount', RIGHT, { weight: 'bold', alignRight: true });
  w.newline(12);
  w.rule();
  for (const line of r.lines) {
    const wrapped = w.wrap(line.description, RIGHT - PAGE.margin - AMOUNT_WIDTH);
    w.room(wrapped.length);
    wrapped.forEach((text, i) => {
      w.text(text, PAGE.margin);
      if (i === 0) w.text(formatUsd(line.amountCents), RIGHT, { alignRight: true });
      w.newline();
    });
  }
  w.rule();
  w.text(receiptBalance(r.status, r.ending).totalLabel, PAGE.margin, { weight: 'bold' });
  w.text(formatUsd(r.status.totalCents), RIGHT, { weight: 'bold', alignRight: true });
  w.newline();
}

function payments(w: Writer, r: Receipt): void {
  const columns = { date: PAGE.margin, method: PAGE.margin + 80, reference: PAGE.margin + 200 };
  w.gap(8);
  w.room(3);
  w.text('Payments', PAGE.margin, { size: 12, weight: 'bold' });
  w.newline(12);
  w.text('Date', columns.date, { weight: 'bold' });
  w.text('Method', columns.method, { weight: 'bold' });
  w.text('Processor reference', columns.reference, { weight: 'bold' });
  w.text('Amount', RIGHT, { weight: 'bold', alignRight: true });
  w.newline();
  w.rule();
  for (const p of r.payments) {
    const reference = w.chunks(p.reference, RIGHT - AMOUNT_WIDTH - columns.reference);
    w.room(reference.length);
    w.text(p.date, columns.date);
    w.text(p.method, columns.method);
    w.text(formatUsd(p.amountCents), RIGHT, { alignRight: true });
    for (const piece of reference) {
      w.text(piece, columns.reference);
      w.newline();
    }
  }
  w.rule();
  w.room(3);
  w.text('Amount paid', PAGE.margin, { weight: 'bold' });
  w.text(formatUsd(r.status.paidCents), RIGHT, { weight: 'bold', alignRight: true });
  w.newline();
  const balance = receiptBalance(r.status, r.ending);
  for (const line of balance.lines) {
    w.text(line.label, PAGE.margin, { weight: 'bold' });
    w.text(formatUsd(line.amountCents), RIGHT, { weight: 'bold', alignRight: true });
    w.newline();
  }
}

function footer(w: Writer): void {
  w.gap(12);
  w.room(2);
  for (const line of w.wrap(
    'Keep this receipt for your health savings (HSA) or flexible spending (FSA) account. Card details are held only by the hospital\'s card processor and never appear here.',
    RIGHT - PAGE.margin,
  )) {
    w.text(line, PAGE.margin, { grey: true, size: 9 });
    w.newline(9);
  }
  w.pages.forEach((page, i) => {
    const label = `Page ${i + 1} of ${w.pages.length}`;
    w.drawAt(page, label, (PAGE.width - w.width(label, 'regular', 8)) / 2, PAGE.margin / 2, 8);
  });
}

/**
 * The receipt as PDF bytes.
 * @param fontPaths - the configured PDF fonts (`REPORT_FONT_PATH` & co.; default `assets/fonts/`)
 * @throws ReportFontError when the fonts cannot be read (configuration)
 */
export async function renderReceiptPdf(receipt: Receipt, now: Date, fontPaths: ReportFontPaths = {}): Promise<Uint8Array> {
  const fonts = loadReportFonts(fontPaths);
  const doc = await PDFDocument.create();
  doc.setTitle(`Payment receipt, ${receipt.programName}, case ${receipt.caseId}`, { showInWindowTitleBar: true });
  doc.setLanguage('en-US');
  doc.setSubject('Receipt for a self-pay online second opinion (for HSA/FSA records)');
  doc.setAuthor(receipt.programName);
  doc.setCreator(SERVICE_NAME);
  doc.setCreationDate(now);
  doc.setModificationDate(now);
  const allText = [
    receipt.programName, receipt.caseId, receipt.patientName, receipt.payer, receipt.issuedOn, receipt.dateOfService,
    ...receipt.lines.map((l) => l.description), ...receipt.payments.map((p) => `${p.date} ${p.method} ${p.reference}`),
    receiptBalance(receipt.status, receipt.ending).notice ?? '', ...receiptBalance(receipt.status, receipt.ending).lines.map((l) => l.label),
  ].join('\n');
  const w = new Writer(doc, await embedFontFaces(doc, fonts, allText));
  header(w, receipt);
  services(w, receipt);
  payments(w, receipt);
  footer(w);
  return doc.save();
}
