/**
 * Fonts of the receipt PDF. Names of children and parents are not always Latin-1 ("Adán" is,
 * "Łukasz", "Νίκος", "Анна" or "王小明" are not), and pdf-lib's standard fonts only encode
 * WinAnsi. So the receipt embeds TrueType fonts through fontkit: DejaVu Sans, then Droid Sans
 * Fallback for characters DejaVu lacks (CJK), character by character.
 *
 * Which files, and subset or whole (checked by rendering with poppler, not only by text
 * extraction): pdf-lib 1.17's subsetting draws glyphs of the committed `assets/fonts/*-subset.ttf`
 * files and of Droid Sans Fallback as blanks, while it subsets the machine's full DejaVu Sans
 * correctly. So DejaVu comes from the machine (Debian fonts-dejavu-core) when there, subset; else
 * from `assets/fonts/` (see `src/report/report-fonts.ts`, `assets/fonts/LICENSES.md`), embedded
 * whole. The CJK fallback is embedded whole, and only when the receipt has a character only it
 * covers. Should no font be readable, Helvetica draws the receipt, characters outside WinAnsi as `?`.
 * @packageDocumentation
 */
import fs from 'node:fs';
import * as fontkit from '@pdf-lib/fontkit';
import { StandardFonts, type PDFDocument, type PDFFont } from 'pdf-lib';
import { errorFields, logger } from '../log';
import { loadReportFonts, type LoadedFont, type ReportFonts } from '../report/report-fonts';

/** One embedded font and the characters it can draw. */
interface Face {
  readonly font: PDFFont;
  readonly covers: (codePoint: number) => boolean;
}

/** A run of text drawn with one font. */
export interface TextRun {
  readonly text: string;
  readonly font: PDFFont;
}

/** The receipt's fonts, embedded into one document. */
export interface ReceiptFonts {
  /** Splits `text` into runs, each drawn with the first font that has its characters. */
  runs(text: string, weight: 'regular' | 'bold'): TextRun[];
  /** Width of `text` at `size`, summed over its runs. */
  width(text: string, weight: 'regular' | 'bold', size: number): number;
  /** True when TrueType fonts were embedded (not the Helvetica fallback). */
  readonly embedded: boolean;
}

/** The machine's DejaVu Sans (Debian fonts-dejavu-core), which pdf-lib subsets correctly. */
export const SYSTEM_DEJAVU = {
  regular: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  bold: '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
} as const;

const WIN_ANSI_EXTRA = new Set([
  0x20ac, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x17d, 0x2018, 0x2019, 0x201c, 0x201d,
  0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x17e, 0x178,
]);
const winAnsi = (cp: number): boolean => (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff) || WIN_ANSI_EXTRA.has(cp);

function trueTypeFonts(): { files: ReportFonts; subsetLatin: boolean } | undefined {
  const system = Object.values(SYSTEM_DEJAVU).every((file) => fs.existsSync(file));
  try {
    return { files: loadReportFonts(system ? SYSTEM_DEJAVU : {}), subsetLatin: system };
  } catch (err) {
    logger.warn('receipt fonts unavailable; falling back to Helvetica', errorFields(err));
    return undefined;
  }
}

async function embed(doc: PDFDocument, loaded: LoadedFont, subset: boolean): Promise<Face> {
  return { font: await doc.embedFont(loaded.bytes, { subset }), covers: (cp) => loaded.has(cp) };
}

/**
 * Embeds the receipt's fonts into `doc` (registers fontkit).
 * @param allText - every string the receipt will draw (decides whether the CJK fallback is needed)
 */
export async function embedReceiptFonts(doc: PDFDocument, allText: string): Promise<ReceiptFonts> {
  doc.registerFontkit(fontkit);
  const found = trueTypeFonts();
  const helvetica: Face = { font: await doc.embedFont(StandardFonts.Helvetica), covers: winAnsi };
  const helveticaBold: Face = { font: await doc.embedFont(StandardFonts.HelveticaBold), covers: winAnsi };
  const regular = found ? await embed(doc, found.files.regular, found.subsetLatin) : helvetica;
  const bold = found ? await embed(doc, found.files.bold, found.subsetLatin) : helveticaBold;
  const needsFallback = found !== undefined && [...allText].some((c) => {
    const cp = c.codePointAt(0) ?? 0;
    return !found.files.regular.has(cp) && found.files.fallback.has(cp);
  });
  const fallback = found && needsFallback ? [await embed(doc, found.files.fallback, false)] : [];
  const chains = { regular: [regular, ...fallback, helvetica], bold: [bold, ...fallback, helveticaBold] };

  const runs = (text: string, weight: 'regular' | 'bold'): TextRun[] => {
    const chain = chains[weight];
    const out: { text: string; font: PDFFont }[] = [];
    for (const char of text) {
      const face = chain.find((f) => f.covers(char.codePointAt(0) ?? 0x3f));
      const font = (face ?? chain[0] ?? helvetica).font;
      const drawn = face ? char : '?';
      const previous = out[out.length - 1];
      if (previous && previous.font === font) previous.text += drawn;
      else out.push({ text: drawn, font });
    }
    return out;
  };
  return {
    runs,
    width: (text, weight, size) => runs(text, weight).reduce((sum, run) => sum + run.font.widthOfTextAtSize(run.text, size), 0),
    embedded: found !== undefined,
  };
}
