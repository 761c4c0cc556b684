/**
 * Where the report draws its text, read back from the PDF: every text run's position (`Tm`) and
 * width (the glyph advances of the embedded font's `/W` array), so text running off the page, text
 * overprinting other text and blocks split across pages show, not only lost characters.
 */
import { PDFArray, PDFDict, PDFDocument, PDFName, PDFNumber } from 'pdf-lib';
import { renderReportPdf, type ReportInput } from '../../src/report/report-pdf';
import { contentOf, pdfPageTexts } from '../support/pdf-text';
import { SAMPLE_REPORT } from '../support/report-input';

const PAGE_WIDTH = 612;
const MARGIN = 56;

const base: ReportInput = SAMPLE_REPORT;

/** One text run as drawn: page, baseline, left and right edge. */
interface Run {
  readonly page: number;
  readonly y: number;
  readonly left: number;
  readonly right: number;
}

/** Glyph id → advance (1/1000 em) of a Type0 font, from its descendant's `/W` array. */
function advances(font: PDFDict): Map<number, number> {
  const cid = font.lookup(PDFName.of('DescendantFonts'), PDFArray).lookup(0, PDFDict);
  const w = cid.lookup(PDFName.of('W'), PDFArray).asArray();
  const out = new Map<number, number>();
  for (let i = 0; i < w.length; ) {
    const first = (w[i] as PDFNumber).asNumber();
    const next = w[i + 1];
    if (next instanceof PDFArray) {
      next.asArray().forEach((v, k) => out.set(first + k, (v as PDFNumber).asNumber()));
      i += 2;
    } else {
      for (let c = first; c <= (next as PDFNumber).asNumber(); c++) out.set(c, (w[i + 2] as PDFNumber).asNumber());
      i += 3;
    }
  }
  return out;
}

/** Every text run of the PDF (pdf-lib writes one `BT … Tf … Tm <hex> Tj … ET` per drawText). */
async function textRuns(pdf: Uint8Array): Promise<Run[]> {
  const doc = await PDFDocument.load(pdf);
  return doc.getPages().flatMap((page, index) => {
    const fonts = page.node.Resources()?.lookup(PDFName.of('Font'), PDFDict);
    const runs: Run[] = [];
    for (const block of contentOf(doc, page).split(/\bBT\b/).slice(1)) {
      const tf = /\/(\S+) ([\d.]+) Tf/.exec(block);
      const tm = /1 0 0 1 ([-\d.]+) ([-\d.]+) Tm/.exec(block);
      const tj = /<([0-9A-Fa-f]*)> Tj/.exec(block);
      if (!tf || !tm || !tj || !fonts) continue;
      const widths = advances(fonts.lookup(PDFName.of(tf[1] ?? ''), PDFDict));
      const hex = tj[1] ?? '';
      let units = 0;
      for (let i = 0; i + 4 <= hex.length; i += 4) units += widths.get(parseInt(hex.slice(i, i + 4), 16)) ?? 1000;
      const left = Number(tm[1]);
      runs.push({ page: index, y: Number(tm[2]), left, right: left + (units * Number(tf[2])) / 1000 });
    }
    return runs;
  });
}

const overlaps = (a: Run, b: Run): boolean => a.page === b.page && Math.abs(a.y - b.y) < 1 && a.left < b.right && b.left < a.right;

it('keeps the running header and footer inside the margins and clear of "Page i of N", however long the patient name', async () => {
  const name = 'María Guadalupe Alejandra Fernández-Castillo de la Cruz y Villanueva';
  const pdf = await renderReportPdf({ ...base, patient: { ...base.patient, name }, summary: 'word '.repeat(1500) });
  const runs = await textRuns(pdf);
  expect(Math.max(...runs.map((r) => r.page))).toBeGreaterThan(0);
  const outside = runs.filter((r) => r.left < MARGIN - 0.5 || r.right > PAGE_WIDTH - MARGIN + 0.5);
  expect(outside).toEqual([]);
  const overprinted = runs.flatMap((a, i) => runs.slice(i + 1).filter((b) => overlaps(a, b)).map((b) => [a, b]));
  expect(overprinted).toEqual([]);
  // Shortened where it must be, the running line still names the case and version on every page.
  for (const page of await pdfPageTexts(pdf)) expect(page).toMatch(new RegExp(`Online Second Opinion Program · María.*… · case ${base.caseId} · version 1`));
});

it('wraps a long signer name inside the margins', async () => {
  const specialist = { name: 'Dr. María Fernanda de los Ángeles Rodríguez-Villanueva y Echeverría, MD, PhD, FAAP', npi: '1234567893' };
  const runs = await textRuns(await renderReportPdf({ ...base, specialist }));
  expect(runs.filter((r) => r.right > PAGE_WIDTH - MARGIN + 0.5)).toEqual([]);
});

it('keeps the signature line, the signer and the date of signing on one page', async () => {
  // Follow-ups of 8 to 20 lines after one or three questions put the signature block at every height near a page's foot.
  for (let lines = 8; lines <= 20; lines++) {
    for (const questions of [1, 3]) {
      const answers = Array.from({ length: questions }, (_, i) => ({ question: `Question ${i + 1}?`, answer: 'Answer.' }));
      const followUp = Array.from({ length: lines }, (_, i) => `Follow-up line ${i + 1}.`).join('\n');
      const pdf = await renderReportPdf({ ...base, answers, followUp });
      const doc = await PDFDocument.load(pdf);
      const contents = doc.getPages().map((page) => contentOf(doc, page));
      // The signature line is the only 240-point rule (56 → 296).
      const signatureLine = /\n56 ([\d.]+) m\n296 [\d.]+ l/;
      const linePage = contents.findIndex((c) => signatureLine.test(c));
      const last = contents.length - 1;
      expect({ lines, questions, linePage }).toEqual({ lines, questions, linePage: last });
      // Below the signature line, above the footer: the signer's name and the date of signing.
      const lineY = Number(signatureLine.exec(contents[last] ?? '')?.[1]);
      const below = (await textRuns(pdf)).filter((r) => r.page === last && r.left === MARGIN && r.y < lineY && r.y > 40);
      expect(below.length).toBe(2);
    }
  }
});

it('never ends a page with a question whose answer starts on the next one', async () => {
  // Summaries of 20 to 60 lines put the questions at every height near a page's foot.
  for (let lines = 20; lines <= 60; lines += 2) {
    const summary = Array.from({ length: lines }, (_, i) => `Summary line ${i + 1}.`).join('\n');
    const answers = Array.from({ length: 4 }, (_, i) => ({ question: `Question number ${i + 1}?`, answer: `Answer${i + 1} begins here.\nIt goes on.\nAnd on.` }));
    const pages = await pdfPageTexts(await renderReportPdf({ ...base, summary, answers }));
    for (let i = 1; i <= 4; i++) {
      const questionPage = pages.findIndex((text) => text.includes(`Question number ${i}?`));
      const answerPage = pages.findIndex((text) => text.includes(`Answer${i} begins`));
      expect({ lines, question: i, answerPage }).toEqual({ lines, question: i, answerPage: questionPage });
    }
  }
});
