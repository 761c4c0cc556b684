import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PDFDocument } from 'pdf-lib';
import { renderReportPdf, type ReportInput } from '../../src/report/report-pdf';
import { ReportFontError, defaultFontDir, loadReportFonts } from '../../src/report/report-fonts';
import { SHARED_DATA } from '../support/synthea';
import { pdfPageTexts, pdfText } from '../support/pdf-text';
import { SAMPLE_REPORT } from '../support/report-input';

const base: ReportInput = {
  ...SAMPLE_REPORT,
  answers: [...SAMPLE_REPORT.answers, { question: 'Should we change medication?', answer: 'No.' }],
};

const flat = (s: string): string => s.replace(/\s+/g, ' ');

it('renders names outside Latin-1 (Latin Extended, Chinese) as real text with the embedded fonts', async () => {
  const pdf = await renderReportPdf({ ...base, patient: { name: '王小明 (Łukasz Żółć)', birthDate: '2016-05-02' }, specialist: { name: 'Dr. Adán Ærøskøbing' } });
  const text = flat(await pdfText(pdf));
  expect(text).toContain('王小明 (Łukasz Żółć)');
  expect(text).toContain('Dr. Adán Ærøskøbing');
  expect(text).not.toContain('\uFFFD');
});

it('has the program header, identifiers, every question with its answer, signature, date and "Page i of N"', async () => {
  const pdf = await renderReportPdf(base);
  const pages = await pdfPageTexts(pdf);
  const text = flat(pages.join('\n'));
  for (const needle of ['Online Second Opinion Program', 'Adán Núñez', base.caseId, '2016-05-02', 'Refractory focal epilepsy', 'Summary', 'Assessment of the diagnosis', 'Treatment recommendations', 'Follow-up', 'Dr. Zoë Ångström, NPI 1234567893', 'Electronically signed on March 4, 2027']) {
    expect(text).toContain(needle);
  }
  for (const qa of base.answers) {
    expect(text).toContain(qa.question);
    expect(text).toContain(qa.answer);
  }
  pages.forEach((page, i) => expect(page).toContain(`Page ${i + 1} of ${pages.length}`));
  const doc = await PDFDocument.load(pdf);
  expect(doc.getTitle()).toBe(`Second opinion report, case ${base.caseId}, version 1`);
  expect(doc.getAuthor()).toBe('Dr. Zoë Ångström');
  expect(Buffer.from(pdf).toString('latin1')).toMatch(/\/Lang \(en-US\)/);
});

it('wraps long text (and a CJK paragraph without spaces) onto more pages, every word kept', async () => {
  const words = Array.from({ length: 1500 }, (_, i) => `word${i}`);
  const cjk = '这是一段没有空格的很长的中文文本'.repeat(40);
  const pdf = await renderReportPdf({ ...base, version: 2, status: 'amended', summary: words.join(' '), recommendations: cjk });
  const pages = await pdfPageTexts(pdf);
  expect(pages.length).toBeGreaterThan(3);
  const text = pages.join(' ');
  expect(text.split(/\s+/).filter((w) => /^word\d+$/.test(w))).toEqual(words);
  // The paragraph crosses a page break (running header and footer in between): compare its characters.
  expect(text.replace(/[^\u4e00-\u9fff]/g, '')).toBe(cjk);
  expect(text).toContain('amended (version 2, replaces version 1)');
  for (const page of pages) for (const line of page.split('\n')) expect(line.length).toBeLessThan(200);
});

it('names the variable to set when a configured font cannot be read', () => {
  expect(() => loadReportFonts({ fallback: '/nonexistent/font.ttf' })).toThrow(ReportFontError);
  expect(() => loadReportFonts({ fallback: '/nonexistent/font.ttf' })).toThrow(/REPORT_FALLBACK_FONT_PATH/);
});

it('refuses at load a configured file that is not a font, naming the variable: a PDF, text, a font cut short', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-not-a-font-'));
  try {
    const regular = fs.readFileSync(path.join(defaultFontDir() ?? '', 'DejaVuSans-subset.ttf'));
    const files = {
      'a.pdf': fs.readFileSync(path.join(SHARED_DATA, 'pdf', 'minimal-document.pdf')),
      'b.ttf': Buffer.from('not a font at all\n'),
      'c.ttf': regular.subarray(0, 4096),
    };
    for (const [name, bytes] of Object.entries(files)) {
      fs.writeFileSync(path.join(dir, name), bytes);
      expect(() => loadReportFonts({ regular: path.join(dir, name) })).toThrow(new RegExp(`${name} is not a TrueType/OpenType font; set REPORT_FONT_PATH`));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('reads the fonts at start-up without fontkit, which parses each when a character is first asked about', () => {
  jest.isolateModules(() => {
    const fonts = require('../../src/report/report-fonts') as typeof import('../../src/report/report-fonts');
    const kit = require('../../src/report/fontkit') as typeof import('../../src/report/fontkit');
    const loaded = fonts.loadReportFonts();
    expect(kit.fontkitLoaded()).toBe(false);
    expect(loaded.regular.has('A'.codePointAt(0) ?? 0)).toBe(true);
    expect(loaded.regular.has('王'.codePointAt(0) ?? 0)).toBe(false);
    expect(loaded.fallback.has('王'.codePointAt(0) ?? 0)).toBe(true);
    expect(kit.fontkitLoaded()).toBe(true);
  });
});

it('prints the case record the opinion rests on: its version, when it was assembled and from which sources', async () => {
  const records = { bundleVersion: 3, assembledAt: new Date('2027-03-02T23:30:00Z'), sources: ['Pueblo Pediatrics', '北京儿童医院', 'Family uploads'] };
  const text = flat(await pdfText(await renderReportPdf({ ...base, records })));
  // March 2 at 18:30 in New York (the program's zone), not March 3 (UTC). (Label and value run together in the extracted text.)
  expect(text).toContain('Records reviewedCase record version 3, assembled on March 2, 2027 from Pueblo Pediatrics, 北京儿童医院 and Family uploads');
  expect(flat(await pdfText(await renderReportPdf(base)))).not.toContain('Records reviewed');
});
