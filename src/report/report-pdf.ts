/**
 * The signed opinion as a PDF (pdf-lib): a header with the program name, the patient and case
 * identifiers; the sections; every family question with its answer; the specialist's name and
 * signature line with the date; "Page i of N" on every page. Fonts are embedded subsets (see
 * report-fonts.ts, embed-fonts.ts), so any name renders; title, subject, author and language are set.
 *
 * Rendering is deterministic for the same input (dates come from the input, not the clock).
 * @see https://pdf-lib.js.org/
 * @packageDocumentation
 */
import { PDFDocument, rgb, type PDFPage } from 'pdf-lib';
import type { QuestionAnswer } from '../opinion/answers';
import { embedFontFaces } from './embed-fonts';
import { loadReportFonts, type ReportFontPaths } from './report-fonts';
import { PROGRAM_NAME, reportTitle } from './report-title';
import { fitText, type FontFace, wrapText } from './text-layout';

/** What goes into one version of the report. */
export interface ReportInput {
  readonly programName?: string;
  readonly caseId: string;
  readonly version: number;
  /** `amended` for a version that replaces an earlier one. */
  readonly status: 'final' | 'amended';
  readonly patient: { readonly name: string; readonly birthDate: string; readonly sex?: string };
  readonly referringPhysician?: string;
  readonly diagnosis: string;
  readonly summary: string;
  readonly diagnosisAssessment: string;
  readonly recommendations: string;
  readonly answers: readonly QuestionAnswer[];
  readonly followUp: string;
  readonly specialist: { readonly name: string; readonly npi?: string };
  readonly signedAt: Date;
  /** IANA zone of the date printed beside the signature. */
  readonly timeZone: string;
  /** The case record the opinion rests on: the bundle version that was current at signing. */
  readonly records?: ReviewedRecords;
}

/** The case bundle version a report was written on (printed as "Records reviewed"). */
export interface ReviewedRecords {
  readonly bundleVersion: number;
  readonly assembledAt: Date;
  /** The sources with records in it (care teams, family uploads). */
  readonly sources: readonly string[];
}

/** "A", "A and B", "A, B and C". */
function listed(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1] ?? ''}`;
}

/** The "Records reviewed" line: which version of the case record, when assembled, from where. */
function recordsText(records: ReviewedRecords, timeZone: string): string {
  const from = records.sources.length > 0 ? ` from ${listed(records.sources)}` : '';
  return `Case record version ${records.bundleVersion}, assembled on ${printedDate(records.assembledAt, timeZone)}${from}`;
}

const PAGE = { width: 612, height: 792 }; // US Letter
const MARGIN = 56;
const BODY = 10.5;
const LEADING = 14;
/** An answer's indent under its question. */
const ANSWER_INDENT = 14;
/** Lines of an answer kept on the page of its question (the rest may follow on the next). */
const ANSWER_LINES_KEPT = 2;
const LABEL_WIDTH = 140;
const HEADING = 12.5;
const TEXT_WIDTH = PAGE.width - 2 * MARGIN;
const FOOTER_Y = 32;
const RUNNING = 8.5;
const GREY = rgb(0.35, 0.35, 0.35);
const RULE = rgb(0.6, 0.6, 0.6);

/** A printed date, e.g. "March 4, 2027", in the program's time zone. */
function printedDate(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'long', day: 'numeric' }).format(at);
}

/** What every page but the first names at its top, and every page at its foot. */
interface RunningHeader {
  /** The program and the patient: shortened ("…") when the line would not fit. */
  readonly lead: string;
  /** The case and version: always printed whole. */
  readonly ids: string;
}

class Writer {
  private page: PDFPage;
  private y = 0;
  readonly pages: PDFPage[] = [];

  constructor(
    private readonly doc: PDFDocument,
    private readonly regular: FontFace,
    private readonly bold: FontFace,
    private readonly header: RunningHeader,
  ) {
    this.page = this.newPage(true);
  }

  /** The running header fitted to `width` points: the lead shortened first, the case and version kept. */
  private runningHeader(width: number): string {
    const ids = ` · ${this.header.ids}`;
    const room = width - this.regular.width(ids, RUNNING);
    const lead = fitText(this.header.lead, this.regular, RUNNING, room);
    return room > 0 && this.regular.width(lead, RUNNING) <= room ? `${lead}${ids}` : fitText(`${this.header.lead}${ids}`, this.regular, RUNNING, width);
  }

  private newPage(first: boolean): PDFPage {
    const page = this.doc.addPage([PAGE.width, PAGE.height]);
    this.pages.push(page);
    this.page = page;
    this.y = PAGE.height - MARGIN;
    if (!first) {
      this.draw(this.runningHeader(TEXT_WIDTH), MARGIN, this.y, RUNNING, this.regular, GREY);
      this.y -= 10;
      page.drawLine({ start: { x: MARGIN, y: this.y }, end: { x: PAGE.width - MARGIN, y: this.y }, thickness: 0.5, color: RULE });
      this.y -= 18;
    }
    return page;
  }

  /** Draws `text` at (x, y) run by run (each run in the font that has its glyphs). */
  draw(text: string, x: number, y: number, size: number, face: FontFace, color = rgb(0, 0, 0)): void {
    let cursor = x;
    for (const run of face.runs(text)) {
      this.page.drawText(run.text, { x: cursor, y, size, font: run.font, color });
      cursor += run.font.widthOfTextAtSize(run.text, size);
    }
  }

  ensure(height: number): void {
    if (this.y - height < MARGIN + 10) this.newPage(false);
  }

  space(points: number): void {
    this.y -= points;
  }

  line(text: string, size: number, face: FontFace, indent = 0, color = rgb(0, 0, 0)): void {
    const leading = size * 1.35;
    this.ensure(leading);
    this.y -= leading;
    if (text !== '') this.draw(text, MARGIN + indent, this.y, size, face, color);
  }

  paragraph(text: string, size = BODY, face: FontFace = this.regular, indent = 0): void {
    for (const l of wrapText(text, face, size, TEXT_WIDTH - indent)) this.line(l, size, face, indent);
  }

  /** A bold label and its value beside it (wrapped in the value column). */
  labelled(label: string, value: string): void {
    wrapText(value, this.regular, BODY, TEXT_WIDTH - LABEL_WIDTH).forEach((l, i) => {
      this.line('', BODY, this.regular);
      if (i === 0) this.draw(label, MARGIN, this.y, BODY, this.bold);
      this.draw(l, MARGIN + LABEL_WIDTH, this.y, BODY, this.regular);
    });
  }

  heading(text: string): void {
    this.ensure(HEADING * 1.35 + LEADING * 2);
    this.space(8);
    this.line(text, HEADING, this.bold);
    this.space(2);
  }

  rule(): void {
    this.space(6);
    this.page.drawLine({ start: { x: MARGIN, y: this.y }, end: { x: PAGE.width - MARGIN, y: this.y }, thickness: 0.75, color: RULE });
    this.space(4);
  }

  /**
   * The signature line with the signer (bold, wrapped) and the date of signing under it, all on one
   * page: a signature line must not end a page whose next page names who signed.
   */
  signature(signer: string, signedOn: string): void {
    const signerLines = wrapText(signer, this.bold, BODY, TEXT_WIDTH);
    this.ensure(30 + BODY * 1.35 * (signerLines.length + 1));
    this.space(30);
    this.page.drawLine({ start: { x: MARGIN, y: this.y }, end: { x: MARGIN + 240, y: this.y }, thickness: 0.75 });
    for (const l of signerLines) this.line(l, BODY, this.bold);
    this.line(signedOn, BODY, this.regular);
  }

  /** "Page i of N" at the right of every page's foot, the running header left of it (never under it). */
  footers(): void {
    const total = this.pages.length;
    this.pages.forEach((page, i) => {
      this.page = page;
      const label = `Page ${i + 1} of ${total}`;
      const labelWidth = this.regular.width(label, RUNNING);
      this.draw(label, PAGE.width - MARGIN - labelWidth, FOOTER_Y, RUNNING, this.regular, GREY);
      this.draw(this.runningHeader(TEXT_WIDTH - labelWidth - 12), MARGIN, FOOTER_Y, RUNNING, this.regular, GREY);
    });
  }
}

/**
 * Renders one report version.
 * @throws ReportFontError when the fonts cannot be read (configuration)
 */
export async function renderReportPdf(input: ReportInput, fontPaths: ReportFontPaths = {}): Promise<Uint8Array> {
  const fonts = loadReportFonts(fontPaths);
  const doc = await PDFDocument.create();
  const programName = input.programName ?? PROGRAM_NAME;
  const allText = [
    programName, input.patient.name, input.referringPhysician ?? '', input.diagnosis, input.summary, input.diagnosisAssessment,
    input.recommendations, input.followUp, input.specialist.name, ...input.answers.flatMap((a) => [a.question, a.answer]),
    ...(input.records?.sources ?? []),
  ].join('\n');
  const { regular: face, bold: boldFace } = await embedFontFaces(doc, fonts, allText);

  const title = reportTitle(input);
  doc.setTitle(title, { showInWindowTitleBar: true });
  doc.setSubject('Second opinion consult note (LOINC 11488-4)');
  doc.setAuthor(input.specialist.name);
  doc.setLanguage('en-US');
  doc.setCreator(programName);
  doc.setProducer('Second Opinion Bridge');
  doc.setKeywords(['second opinion', 'consult note', `case ${input.caseId}`, `version ${input.version}`]);
  doc.setCreationDate(input.signedAt);
  doc.setModificationDate(input.signedAt);

  const w = new Writer(doc, face, boldFace, { lead: `${programName} · ${input.patient.name}`, ids: `case ${input.caseId} · version ${input.version}` });
  w.line(programName, 16, boldFace);
  w.line(`Second opinion report${input.status === 'amended' ? ` — amended (version ${input.version}, replaces version ${input.version - 1})` : ''}`, 12, face, 0, GREY);
  w.rule();
  const facts: [string, string][] = [
    ['Patient', input.patient.name],
    ['Date of birth', input.patient.birthDate + (input.patient.sex ? ` · ${input.patient.sex}` : '')],
    ['Case', input.caseId],
    ['Report version', `${input.version} (${input.status})`],
    ...(input.referringPhysician ? ([['Referring physician', input.referringPhysician]] as [string, string][]) : []),
    ['Diagnosis in question', input.diagnosis],
    ...(input.records ? ([['Records reviewed', recordsText(input.records, input.timeZone)]] as [string, string][]) : []),
  ];
  for (const [label, value] of facts) w.labelled(label, value);
  w.rule();
  w.heading('Summary');
  w.paragraph(input.summary);
  w.heading('Assessment of the diagnosis');
  w.paragraph(input.diagnosisAssessment);
  w.heading('Treatment recommendations');
  w.paragraph(input.recommendations);
  w.heading("The family's questions");
  input.answers.forEach((qa, i) => {
    const question = `${i + 1}. ${qa.question}`;
    // A question never ends a page whose next one starts its answer: with it, its first lines.
    const answerStart = Math.min(ANSWER_LINES_KEPT, wrapText(qa.answer, face, BODY, TEXT_WIDTH - ANSWER_INDENT).length);
    w.ensure(4 + BODY * 1.35 * (wrapText(question, boldFace, BODY, TEXT_WIDTH).length + answerStart));
    w.space(4);
    w.paragraph(question, BODY, boldFace);
    w.paragraph(qa.answer, BODY, face, ANSWER_INDENT);
  });
  w.heading('Follow-up');
  w.paragraph(input.followUp);
  w.space(12);
  w.signature(`${input.specialist.name}${input.specialist.npi ? `, NPI ${input.specialist.npi}` : ''}`, `Electronically signed on ${printedDate(input.signedAt, input.timeZone)}`);
  w.footers();
  return doc.save({ useObjectStreams: false });
}
