/**
 * Embeds the PDF fonts (see `report-fonts.ts`) into a pdf-lib document: the regular and bold faces,
 * each with the CJK fallback when some drawn character needs it. Shared by the opinion report and
 * the payment receipt, so both draw every script the same way.
 * @see https://pdf-lib.js.org/docs/api/classes/pdfdocument#embedfont
 * @packageDocumentation
 */
import type { PDFDocument, PDFFont } from 'pdf-lib';
import type { LoadedFont, ReportFonts } from './report-fonts';
import { fontkit } from './fontkit';
import { FontFace, needsFallback } from './text-layout';

/**
 * OpenType features switched off: fontkit's shaping made every drawText cost ~1 ms; the PDFs'
 * scripts (Latin, Greek, Cyrillic, CJK in precomposed form) need none of them.
 */
const NO_SHAPING = { kern: false, liga: false, calt: false, clig: false, rlig: false, ccmp: false, mark: false, mkmk: false, locl: false };

/** The two faces text is drawn with. */
export interface EmbeddedFaces {
  readonly regular: FontFace;
  readonly bold: FontFace;
}

function embed(doc: PDFDocument, font: LoadedFont): Promise<PDFFont> {
  return doc.embedFont(font.bytes, { subset: font.subsettable, features: NO_SHAPING });
}

/**
 * Registers fontkit on `doc` and embeds the fonts: subset to the glyphs drawn (whole for a font
 * pdf-lib cannot subset correctly), the fallback only when `allText` has a character the regular
 * font lacks.
 * @param allText - every string the document will draw
 */
export async function embedFontFaces(doc: PDFDocument, fonts: ReportFonts, allText: string): Promise<EmbeddedFaces> {
  doc.registerFontkit(fontkit());
  const [regular, bold] = await Promise.all([embed(doc, fonts.regular), embed(doc, fonts.bold)]);
  const fallback = needsFallback(allText, fonts.regular) ? await embed(doc, fonts.fallback) : undefined;
  const fallbackCoverage = fallback ? fonts.fallback : undefined;
  return {
    regular: new FontFace(regular, fonts.regular, fallback, fallbackCoverage),
    bold: new FontFace(bold, fonts.bold, fallback, fallbackCoverage),
  };
}
