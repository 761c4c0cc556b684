/**
 * Embeds the PDF fonts (see `report-fonts.ts`) into a pdf-lib document: the regular and bold faces,
 * each with the fallbacks (CJK, then Hangul) that some drawn character needs. Shared by the opinion report and
 * the payment receipt, so both draw every script the same way.
 * @see https://pdf-lib.js.org/docs/api/classes/pdfdocument#embedfont
 * @packageDocumentation
 */
import type { PDFDocument, PDFFont } from 'pdf-lib';
import { fallbackChain, type LoadedFont, type ReportFonts } from './report-fonts';
import { fontkit } from './fontkit';
import { FontFace, missingFrom, type EmbeddedFallback } from './text-layout';

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
 * pdf-lib cannot subset correctly), a fallback only when `allText` has a character the regular or
 * bold font lacks that it is the first fallback to have.
 * @param allText - every string the document will draw
 */
export async function embedFontFaces(doc: PDFDocument, fonts: ReportFonts, allText: string): Promise<EmbeddedFaces> {
  doc.registerFontkit(fontkit());
  const [regular, bold] = await Promise.all([embed(doc, fonts.regular), embed(doc, fonts.bold)]);
  const rest = missingFrom(allText, [fonts.regular, fonts.bold]);
  const fallbacks: EmbeddedFallback[] = [];
  for (const coverage of fallbackChain(fonts)) {
    if (rest.size === 0) break;
    const drawn = [...rest].filter((cp) => coverage.has(cp));
    if (drawn.length === 0) continue;
    for (const cp of drawn) rest.delete(cp);
    fallbacks.push({ font: await embed(doc, coverage), coverage });
  }
  return {
    regular: new FontFace(regular, fonts.regular, fallbacks),
    bold: new FontFace(bold, fonts.bold, fallbacks),
  };
}
